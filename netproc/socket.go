package netproc

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"saturn/netproc/backend"
	"saturn/proto"
)

// sock is one socket an app holds (or, orphaned, a listener waiting for
// its app to come back): the backend's socket, what we know of its
// readiness, and the operations waiting on it, in order.
type sock struct {
	h      *Handler
	app    *appState // nil while orphaned
	handle uint64
	ln     backend.Listener // exactly one of ln and conn is set
	conn   backend.Conn
	stream backend.StreamConn // conn, when it serves proto.FlagStream (see Handler.owned)
	key    orphanKey          // listeners: the address asked for, for adoption
	call   uint64             // resumed: the app's call that made it, in app.replays (0: not there)

	// ready is what may succeed without EAGAIN: set by the backend's
	// notifications, cleared when an attempt finds the socket not ready
	// (see package backend). A connection starts writable only: readable
	// data is reported by the backend.
	ready backend.Events

	connecting     *op // the OpConnect that made the socket, until it ends
	accepts, recvs []*op
	sends          []*op

	pumping, again bool // pump is running; a notification came meanwhile
	starved        bool // on its app's starved list (see provide.go)
	buffered       int  // what the backend held for it when last counted (see account)
	closed         bool
	closing        bool   // the app closed it; it closes once its sends are out
	awaitEnd       uint64 // the app closed it at this stream end; it closes once the sends up to it are in (see closeAfterReplays)
	lingering      *timer // an orphaned listener's end, or a closing socket's
}

// notify is the backend's Notify for s.
func (s *sock) notify(ev backend.Events) {
	if ev&backend.Failed != 0 {
		ev |= backend.Readable | backend.Writable
	}
	if ev&backend.Hangup != 0 {
		ev |= backend.Readable
	}
	s.ready |= ev
	s.pump()
}

// notReadable records that a read found nothing. Once the peer has hung up
// a read always finds something (data, or the end of the stream), and no
// further notification would come, so the socket stays readable.
func (s *sock) notReadable() {
	if s.ready&backend.Hangup == 0 {
		s.ready &^= backend.Readable
	}
}

// readBlocked is a recv's or an accept's EAGAIN: o gives back the buffer it
// selected, if any, and waits on for the socket's next edge. It reports
// false: o did not complete.
func (s *sock) readBlocked(o *op) bool {
	o.unselect()
	s.notReadable()
	return false
}

// pump moves every waiting operation on as far as readiness allows. A
// notification that arrives while it runs (a backend may notify from
// inside a call) makes it go round again instead of recursing. Each queue
// ends when it is empty or the socket stops being ready, so the work is
// bounded by what the app has waiting.
func (s *sock) pump() {
	if s.pumping {
		s.again = true
		return
	}
	s.pumping = true
	for {
		s.again = false
		if s.connecting != nil && s.ready&(backend.Writable|backend.Failed) != 0 {
			s.finishConnect()
		}
		for len(s.accepts) > 0 && s.ready&backend.Readable != 0 && !s.closed {
			if !s.tryAccept(s.accepts[0]) {
				break
			}
			s.accepts = popFront(s.accepts)
		}
		for len(s.recvs) > 0 && s.ready&backend.Readable != 0 && !s.closed {
			if !s.tryRecv(s.recvs[0]) {
				break
			}
			s.recvs = popFront(s.recvs)
		}
		for len(s.sends) > 0 && (s.ready&backend.Writable != 0 || s.sends[0].sub.Op == proto.OpShutdown) && !s.closed {
			if !s.trySend(s.sends[0]) {
				break
			}
			s.sends = popFront(s.sends)
		}
		if s.closing && len(s.sends) == 0 && !s.closed {
			s.close(syscall.ECANCELED) // closed by the app, and all sent
		}
		if s.awaitEnd != 0 && len(s.sends) == 0 && !s.closed && s.stream.Sent(s.awaitEnd) >= s.awaitEnd {
			s.close(syscall.ECANCELED) // closed by the app, and its replayed sends are in
		}
		if !s.again || s.closed {
			break
		}
	}
	s.pumping = false
	s.account()
}

// account brings its app's count of buffered bytes (Limits.Memory) up to
// date with what the backend holds for s now. Every change to that passes
// through pump: a notification, or an operation on the socket.
func (s *sock) account() {
	b, ok := s.conn.(backend.Buffered)
	if !ok || s.app == nil {
		return
	}
	n := 0
	if !s.closed {
		n = b.Buffered()
	}
	s.app.buffered += int64(n - s.buffered)
	s.buffered = n
}

func popFront[T any](q []*T) []*T {
	q[0] = nil
	q = q[1:]
	if len(q) == 0 {
		return q[:0:0] // let the backing array go rather than creep forward
	}
	return q
}

// tryRecv attempts o (an OpRecv); false if the socket had nothing yet.
func (s *sock) tryRecv(o *op) bool {
	if proto.RecvFlag(o.sub.Args[0])&proto.RecvPoll != 0 {
		s.h.complete(o, 0, 0)
		return true
	}
	if o.selecting() && !s.selectBuf(o) {
		return false // starved: pumped again when the app provides a buffer
	}
	var n int
	var err error
	if o.sub.Flags&proto.FlagStream != 0 && s.stream != nil {
		n, err = s.stream.ReadAt(o.buf, o.sub.Offset)
	} else {
		n, err = s.conn.Read(o.buf)
	}
	switch {
	case err == syscall.EAGAIN:
		return s.readBlocked(o)
	case err != nil:
		s.h.fail(o, err)
	default:
		if n > 0 && n < len(o.buf) {
			s.notReadable() // drained: the next data is an edge
		}
		s.h.complete(o, int64(n), 0)
	}
	return true
}

// trySend attempts o (an OpSend): it completes once all its bytes are
// sent; false while some wait for room.
func (s *sock) trySend(o *op) bool {
	if o.sub.Op == proto.OpShutdown {
		if s.streamBehind(o) {
			return false // a send before it is still to be replayed
		}
		s.shutdownNow(o) // queued behind the sends that came before it
		return true
	}
	for o.sent < len(o.buf) {
		if o.sub.Flags&proto.FlagStream != 0 && s.stream != nil {
			// Skip what the connection has queued already (a send the
			// dead incarnation took, replayed); wait for a send before
			// this one that has not arrived yet (replays come after the
			// entries the dead one never took).
			want := o.sub.Offset + uint64(o.sent)
			have := s.stream.Sent(want)
			if have < want {
				return false
			}
			o.sent += int(min(have-want, uint64(len(o.buf)-o.sent)))
			if o.sent == len(o.buf) {
				break
			}
		}
		n, err := s.conn.Write(o.buf[o.sent:])
		switch {
		case err == syscall.EAGAIN:
			s.ready &^= backend.Writable
			return false
		case err != nil:
			if o.sent > 0 {
				s.h.complete(o, int64(o.sent), 0) // the error waits for the next send
			} else {
				s.h.fail(o, err)
			}
			return true
		}
		o.sent += n
		if o.sent < len(o.buf) {
			s.ready &^= backend.Writable // full: room freed is an edge
			return false
		}
	}
	s.h.complete(o, int64(o.sent), 0)
	return true
}

// tryAccept attempts o (an OpAccept); false if no connection is queued.
func (s *sock) tryAccept(o *op) bool {
	app := s.app
	if app == nil {
		return false // orphaned: nobody to accept for (orphan empties the queue)
	}
	if app.sockets() >= app.limits.Sockets {
		s.h.overLimit(app, "sockets", int64(app.limits.Sockets))
		s.h.fail(o, syscall.EMFILE) // the connection stays queued
		return true
	}
	if !s.h.admitSocket(app, o) || !s.h.admitConnection(app, o) {
		return true // EMFILE or ENOBUFS; the connection stays queued
	}
	if o.selecting() && !s.selectBuf(o) {
		return false // starved: pumped again when the app provides a buffer
	}
	if rs := s.h.replayed(o); rs != nil && rs.conn != nil {
		// The dead incarnation accepted it for this very call, and its
		// answer died with it.
		if len(o.buf) >= proto.AddrPairSize {
			local, _ := rs.conn.LocalAddr()
			peer, _ := rs.conn.PeerAddr()
			proto.EncodeAddrPair(o.buf, local, peer)
		}
		s.h.complete(o, int64(rs.handle), 0)
		return true
	}
	ns := &sock{h: s.h, app: app, ready: backend.Writable}
	c, peer, err := s.ln.Accept(ns.notify)
	switch {
	case err == syscall.EAGAIN:
		return s.readBlocked(o)
	case err != nil:
		s.h.fail(o, err)
		return true
	}
	ns.conn = c
	ns.handle = s.h.newHandle(app)
	app.socks[ns.handle] = ns
	s.h.owned(ns, o.sub.UserData)
	if len(o.buf) >= proto.AddrPairSize {
		local, _ := c.LocalAddr()
		proto.EncodeAddrPair(o.buf, local, peer)
	}
	s.h.complete(o, int64(ns.handle), 0)
	return true
}

// finishConnect ends the OpConnect that made s, if its outcome is known.
func (s *sock) finishConnect() {
	o := s.connecting
	err := s.conn.ConnectResult()
	if errors.Is(err, syscall.EINPROGRESS) {
		s.ready &^= backend.Writable | backend.Failed
		return
	}
	if err == nil && o.selecting() && !s.selectBuf(o) {
		return // connected: the completion waits for a buffer for the addresses
	}
	s.connecting = nil
	if err != nil {
		s.close(syscall.ECANCELED)
		s.h.fail(o, err)
		return
	}
	if len(o.buf) >= proto.AddrPairSize {
		local, _ := s.conn.LocalAddr()
		peer, _ := s.conn.PeerAddr()
		proto.EncodeAddrPair(o.buf, local, peer)
	}
	s.h.owned(s, 0) // its connect was recorded when it began
	s.h.complete(o, int64(s.handle), 0)
}

// shutdownNow carries out o, an OpShutdown.
func (s *sock) shutdownNow(o *op) {
	if err := s.conn.Shutdown(int(o.sub.Args[0])); err != nil {
		s.h.fail(o, err)
		return
	}
	s.h.complete(o, 0, 0)
	// Reads now end at once, and a shut-down sender fails: let whatever
	// waits find out.
	s.ready |= backend.Readable | backend.Writable
	s.pump()
}

// closeAfterSends is OpClose on a socket with sends still queued: as with
// close(2) on a kernel socket, what the app sent still goes out. The handle
// goes at once (and with it what waits to receive or accept), the socket
// once the sends are done, or after closeLinger if they never get out.
func (s *sock) closeAfterSends() {
	for _, q := range [][]*op{s.accepts, s.recvs} {
		for _, o := range q {
			s.h.endWaiting(o, syscall.ECANCELED)
		}
	}
	s.accepts, s.recvs = nil, nil
	app := s.app
	delete(app.socks, s.handle)
	app.closing[s] = true
	s.closing = true
	s.lingering = s.h.timers.AfterFunc(closeLinger, func() {
		s.lingering = nil
		s.close(syscall.ECANCELED)
	})
}

// closeAfterReplays is OpClose (with proto.FlagStream) on a socket whose
// stream has not reached end, the bytes the app had sent when it closed:
// sends the dead incarnation of netproc took are replayed behind the
// close. What waits to receive goes at once; the handle stays, for the
// replays, and the socket closes once its stream reaches end (in pump), or
// after closeLinger.
func (s *sock) closeAfterReplays(end uint64) {
	for _, o := range s.recvs {
		s.h.endWaiting(o, syscall.ECANCELED)
	}
	s.recvs = nil
	s.awaitEnd = end
	s.lingering = s.h.timers.AfterFunc(closeLinger, func() {
		s.lingering = nil
		s.close(syscall.ECANCELED)
	})
}

// closeLinger bounds how long a closed socket keeps trying to send what
// its app queued before closing it.
const closeLinger = 10 * time.Second

// close closes s and ends everything waiting on it with why, and forgets
// its handle.
func (s *sock) close(why syscall.Errno) {
	if s.closed {
		return
	}
	s.closed = true
	if s.connecting != nil {
		o := s.connecting
		s.connecting = nil
		s.h.fail(o, why)
	}
	for _, q := range [][]*op{s.accepts, s.recvs, s.sends} {
		for _, o := range q {
			s.h.endWaiting(o, why)
		}
	}
	s.accepts, s.recvs, s.sends = nil, nil, nil
	if s.app != nil {
		if s.call != 0 {
			delete(s.app.replays, s.call)
		}
		if s.closing {
			delete(s.app.closing, s)
		} else {
			delete(s.app.socks, s.handle)
		}
	}
	if s.lingering != nil {
		s.lingering.Stop()
		s.lingering = nil
	}
	s.account() // closed: it holds nothing more
	s.closeBackend()
}

// leave lets go of s as netproc stops: a socket the backend keeps across
// netproc's death (backend.Leaver) stays for the next incarnation; any
// other closes. Nothing is completed: the apps learn of the stop from the
// region, as of a death.
func (s *sock) leave() {
	var sk backend.Socket
	if s.ln != nil {
		sk = s.ln
	} else if s.conn != nil {
		sk = s.conn
	}
	l, ok := sk.(backend.Leaver)
	if !ok || s.closed {
		s.closeBackend()
		return
	}
	s.closed = true
	if s.lingering != nil {
		s.lingering.Stop()
		s.lingering = nil
	}
	l.Leave()
}

func (s *sock) closeBackend() {
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	} else if s.conn != nil {
		s.conn.Close()
	}
}

// streamBehind reports whether o, an OpShutdown with a stream offset (the
// bytes the app had sent before it), must wait for sends before it that
// have not arrived (the dead incarnation took them; they are replayed).
func (s *sock) streamBehind(o *op) bool {
	return o.sub.Flags&proto.FlagStream != 0 && s.stream != nil && s.stream.Sent(o.sub.Offset) < o.sub.Offset
}

// queueSend queues o (an OpSend or OpShutdown) behind the sends waiting.
// A send with a stream offset goes before the first send with a later
// offset, or shutdown with a later end (a replayed send arrives after the
// entries that follow it in the stream), and the socket is pumped if it
// went first.
func (s *sock) queueSend(o *op) {
	if o.sub.Op == proto.OpSend && o.sub.Flags&proto.FlagStream != 0 && s.stream != nil {
		for i, q := range s.sends {
			if q.sub.Flags&proto.FlagStream != 0 && q.sub.Offset > o.sub.Offset {
				s.sends = slices.Insert(s.sends, i, o)
				if i == 0 {
					s.pump()
				}
				return
			}
		}
	}
	s.sends = append(s.sends, o)
}

// remove takes o out of s's queues; false if it was in none.
func (s *sock) remove(o *op) bool {
	for _, q := range []*[]*op{&s.accepts, &s.recvs, &s.sends} {
		if i := slices.Index(*q, o); i >= 0 {
			*q = slices.Delete(*q, i, i+1)
			return true
		}
	}
	return false
}

// endWaiting completes a waiting operation that will not run: with why,
// or with its count if it is a send that got some bytes out.
func (h *Handler) endWaiting(o *op, why syscall.Errno) {
	if o.sub.Op == proto.OpSend && o.sent > 0 {
		h.complete(o, int64(o.sent), 0)
		return
	}
	h.fail(o, why)
}

// localAddr is s's bound address, or the zero AddrPort.
func (s *sock) localAddr() netip.AddrPort {
	var a netip.AddrPort
	if s.ln != nil {
		a, _ = s.ln.LocalAddr()
	} else {
		a, _ = s.conn.LocalAddr()
	}
	return a
}
