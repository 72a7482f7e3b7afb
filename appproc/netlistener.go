package appproc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"saturn/proto"
)

// TCPListener is a listening socket in netproc. It implements net.Listener
// in the manner of *net.TCPListener.
//
// A listener belongs to the app's name and address, not to the process:
// if this app is restarted, netproc keeps the socket open and its queue
// filling, and the next incarnation's Listen on the same address takes it
// over (Adopted reports so) and accepts what queued meanwhile.
//
// If netproc itself dies, on usertcp with resume on (ring.CapResume) the
// socket survives, with its queue: the listen, accept or close the dead
// incarnation took is replayed to the next one (Request.Resume), which
// answers it on the same socket, and Accept goes on as if nothing had
// happened. Otherwise the socket dies with netproc; the listener notices
// (its Accept fails with ECONNRESET under a new netproc incarnation) and
// listens again on the same address, so Accept goes on, and connections
// that arrive meanwhile fail (the kernel backend refuses them). See
// docs/restart.md.
type TCPListener struct {
	ch      *Channel
	addr    *net.TCPAddr
	bound   netip.AddrPort // with the port the kernel chose
	flags   proto.ListenFlag
	backlog int
	adopted bool

	mu     sync.Mutex
	h      uint64 // the socket; replaced when listening again after a netproc restart
	epoch  uint32 // the netproc incarnation that made h
	closed bool
	left   bool // closed by Leave
	// parked: a stop left the socket (park); Accept waits until Close,
	// which closes parked (unparked) and returns nil.
	parked   chan struct{}
	unparked bool
	closing  chan struct{}
	dl       deadline
}

var _ net.Listener = (*TCPListener)(nil)

func listenTCP(ch *Channel, network, address string, opts ListenOptions) (*TCPListener, error) {
	addrs, err := resolve(context.Background(), network, address, true)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ap := addrs[0]
	for _, a := range addrs { // a name: listen on its first IPv4 address, as package net does
		if a.Addr().Is4() {
			ap = a
			break
		}
	}
	var flags proto.ListenFlag
	switch {
	case ap.Addr() == netip.IPv4Unspecified() && network == "tcp":
		ap = netip.AddrPortFrom(netip.IPv6Unspecified(), ap.Port()) // dual stack, as package net
	case ap.Addr() == netip.IPv6Unspecified() && network == "tcp6":
		flags |= proto.ListenV6Only
	}
	if opts.ReusePort {
		flags |= proto.ListenReusePort
	}
	l := &TCPListener{ch: ch, flags: flags, backlog: min(max(opts.Backlog, 0), proto.MaxBacklog), closing: make(chan struct{}), dl: newDeadline(nil)}
	h, bound, adopted, err := l.listen(ap)
	if err != nil {
		return nil, opError("listen", network, nil, tcpAddr(ap), err)
	}
	l.h, l.bound, l.adopted, l.addr = h, bound, adopted, tcpAddr(bound)
	l.epoch = ch.serverEpoch()
	registerListener(l)
	return l, nil
}

// listen asks netproc for a listener on ap.
func (l *TCPListener) listen(ap netip.AddrPort) (h uint64, bound netip.AddrPort, adopted bool, err error) {
	in, err := encodeAddr(ap)
	if err != nil {
		return 0, bound, false, err
	}
	var data [proto.SockAddrSize]byte
	res := make(chan error, 1)
	var r Response
	_, err = l.ch.start(&Request{Op: proto.OpListen, In: in, Args: [3]uint64{uint64(l.backlog), uint64(l.flags)}, Resume: true},
		func(resp Response, d []byte, err error) {
			r = resp
			copy(data[:], d)
			res <- err
		}, nil, nil)
	if err == nil {
		err = <-res
	}
	if err != nil {
		return 0, bound, false, err
	}
	bound, err = proto.DecodeSockAddr(data[:])
	return uint64(r.Result), bound, r.Aux == proto.ListenAdopted, err
}

// Addr implements net.Listener: the bound address, with the port chosen.
func (l *TCPListener) Addr() net.Addr { return l.addr }

// Adopted reports whether this listener was taken over from the app's
// previous incarnation.
func (l *TCPListener) Adopted() bool { return l.adopted }

// SetDeadline sets the deadline for Accept; the zero time means none.
func (l *TCPListener) SetDeadline(t time.Time) error {
	l.dl.set(t)
	return nil
}

// Accept implements net.Listener.
func (l *TCPListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// acceptResult is a new connection, accepted or connected, or why not.
type acceptResult struct {
	h           uint64
	local, peer netip.AddrPort
	err         error
}

// sendAccepted is the callback of an accept or a connect, which answer
// alike (the new handle, the address pair in the buffer): it sends the
// result to res.
func sendAccepted(res chan<- acceptResult) func(Response, []byte, error) {
	return func(resp Response, data []byte, err error) {
		r := acceptResult{err: err}
		if err == nil {
			r.h = uint64(resp.Result)
			r.local, r.peer, r.err = proto.DecodeAddrPair(data)
		}
		res <- r
	}
}

// AcceptTCP is Accept returning the concrete type.
func (l *TCPListener) AcceptTCP() (*TCPConn, error) {
	for {
		l.mu.Lock()
		closed, h, epoch := l.closed, l.h, l.epoch
		l.mu.Unlock()
		switch {
		case closed:
			if err := l.waitUnpark(); err != nil {
				return nil, l.opErr(err)
			}
			return nil, l.opErr(net.ErrClosed)
		case l.dl.expired():
			return nil, l.opErr(os.ErrDeadlineExceeded)
		}
		res := make(chan acceptResult, 1)
		id, err := l.ch.start(&Request{Op: proto.OpAccept, Handle: h, Room: proto.AddrPairSize, Flags: proto.FlagSelect, Resume: true}, sendAccepted(res), l.closing, l.dl.wait())
		if err == errAborted {
			continue
		}
		if err != nil {
			return nil, l.opErr(err)
		}
		var r acceptResult
		select {
		case r = <-res:
		case <-l.closing:
			r = <-res // Close's OpClose cancels it
		case <-l.dl.wait():
			l.ch.Cancel(id)
			r = <-res
		}
		switch {
		case r.err == nil && l.isClosed():
			if l.hasLeft() {
				// Accepted before the leave reached netproc: a client
				// like any other, which the app serves as it goes.
				return accepted(newTCPConn(l.ch, r.h, r.local, r.peer)), nil
			}
			netOp(l.ch, &Request{Op: proto.OpClose, Handle: r.h}) // raced with Close
			return nil, l.opErr(net.ErrClosed)
		case r.err == nil:
			return accepted(newTCPConn(l.ch, r.h, r.local, r.peer)), nil
		case errors.Is(r.err, syscall.ECONNRESET) && l.ch.serverEpoch() != epoch:
			if err := l.relisten(epoch); err != nil {
				return nil, l.opErr(err)
			}
		case errors.Is(r.err, syscall.ECANCELED) && (l.isClosed() || l.dl.expired()),
			r.err != nil && l.isClosed():
			// The top of the loop says which. An accept that reached
			// netproc after the close (or a stop's leave) finds the
			// handle gone (EBADF): the listener is closed all the same.
		default:
			return nil, l.opErr(r.err)
		}
	}
}

// relisten replaces a listener that died with netproc's incarnation epoch
// by a new one on the same address.
func (l *TCPListener) relisten(epoch uint32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch != epoch || l.closed {
		return nil // done already, or not wanted any more
	}
	var err error
	for try := 0; try < 50; try++ {
		now := l.ch.serverEpoch()
		var h uint64
		h, _, _, err = l.listen(l.bound)
		if err == nil {
			l.h, l.epoch = h, now
			return nil
		}
		if !errors.Is(err, syscall.ECONNRESET) {
			break
		}
		time.Sleep(10 * time.Millisecond) // netproc died again meanwhile
	}
	return err
}

func (l *TCPListener) hasLeft() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.left
}

func (l *TCPListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *TCPListener) opErr(err error) error {
	oe := opError("accept", "tcp", nil, l.addr, err)
	if se, ok := oe.(*net.OpError).Err.(*os.SyscallError); ok && (se.Err == syscall.ENOBUFS || se.Err == syscall.ENOMEM) {
		// A limit of the app's in netproc (its memory, its waits): like
		// EMFILE, which package net reports as temporary, it passes once
		// the app lets go of something, and servers (net/http's, saturn's)
		// retry an accept that fails with a temporary error rather than
		// give up listening.
		se.Err = temporary{se.Err}
	}
	return oe
}

// temporary marks an error that passes by itself (net.Error's Temporary,
// which net/http's Serve and saturn's web server consult on accept).
type temporary struct{ error }

func (t temporary) Temporary() bool { return true }
func (t temporary) Unwrap() error   { return t.error }

// Close implements net.Listener: a pending Accept returns net.ErrClosed,
// and netproc closes the socket. Once the app is stopping (see Stopping:
// the supervisor sent SIGTERM, or the app called Stop), Close leaves the
// socket to the app's next incarnation instead, as Leave does, so that a
// server's graceful shutdown (net/http's Server.Shutdown closes its
// listeners) refuses no client across a restart.
func (l *TCPListener) Close() error {
	if l.unpark() {
		return nil // left already, by the stop
	}
	if IsStopping() {
		return l.Leave()
	}
	return l.close(0)
}

// Leave closes the listener for this process but leaves the listening
// socket to the app's next incarnation: netproc keeps it, still queueing
// connections, and the next incarnation's ListenTCP on the same address
// adopts it (Adopted reports true), with what queued meanwhile; if no
// incarnation comes within netproc's linger (30 s), it is closed. An app
// that stops gracefully because the supervisor restarts it calls Leave
// rather than Close, so that no client is refused while it is gone. An
// Accept that was waiting may still return a connection netproc handed
// over before the leave reached it: serve it like any other.
func (l *TCPListener) Leave() error {
	if l.unpark() {
		return nil // left already, by a stop
	}
	return l.close(proto.CloseKeep)
}

func (l *TCPListener) close(how uint64) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return opError("close", "tcp", nil, l.addr, net.ErrClosed)
	}
	l.closed, l.left = true, how == proto.CloseKeep
	h := l.h
	l.mu.Unlock()
	unregisterListener(l)
	close(l.closing)
	_, err := netOp(l.ch, &Request{Op: proto.OpClose, Handle: h, Args: [3]uint64{how}, Resume: true})
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil
	}
	return opError("close", "tcp", nil, l.addr, err)
}
