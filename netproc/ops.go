package netproc

import (
	"net/netip"
	"syscall"
	"time"

	"saturn/netproc/backend"
	"saturn/proto"
)

// The operations. Each checks everything it reads from the entry (the
// loop has checked the opcode, flags and reserved bits, and Submit the
// buffer) and either completes o now or leaves it waiting on a socket.
// The preambles they share are at the end of the file: each helper that
// reports false has failed o already, and the operation just returns.

func (h *Handler) listen(o *op) {
	if len(o.buf) < proto.SockAddrSize {
		h.fail(o, syscall.EINVAL)
		return
	}
	addr, err := proto.DecodeSockAddr(o.buf)
	backlog, flags := o.sub.Args[0], proto.ListenFlag(o.sub.Args[1])
	if err != nil || backlog > proto.MaxBacklog || flags&^proto.KnownListenFlags != 0 {
		h.fail(o, syscall.EINVAL)
		return
	}
	if s := h.replayed(o); s != nil && s.ln != nil {
		// The dead incarnation made it for this very call, and its
		// answer died with it.
		proto.EncodeSockAddr(o.buf, s.localAddr())
		h.complete(o, int64(s.handle), 0)
		return
	}
	if !h.permitted(o, addr) {
		return
	}
	app := o.app
	if !app.grants.MayListen(addr) {
		// As the kernel refuses a privileged port to a process without
		// CAP_NET_BIND_SERVICE: the app's grants do not name it.
		h.notGranted(app, addr)
		h.fail(o, syscall.EACCES)
		return
	}
	if !h.underSocketLimit(o) {
		return
	}
	key := orphanKey{app: app.name, uid: app.uid, addr: addr, flags: flags}
	var aux uint64
	s := h.adopt(app, key)
	if s != nil {
		aux = proto.ListenAdopted
	} else {
		if !h.admitSocket(app, o) {
			return
		}
		s = &sock{h: h, app: app}
		opts := backend.ListenOptions{Backlog: int(backlog), V6Only: flags&proto.ListenV6Only != 0, ReusePort: flags&proto.ListenReusePort != 0}
		ln, err := h.be.Listen(addr, opts, s.notify)
		if err != nil {
			h.fail(o, err)
			return
		}
		s.ln = ln
		h.register(s)
		// Kept under the port it got, so that a next incarnation that
		// asked for port 0 and learned the port can ask for it again.
		key.addr = netip.AddrPortFrom(addr.Addr(), s.localAddr().Port())
		s.key = key
	}
	h.owned(s, o.sub.UserData)
	proto.EncodeSockAddr(o.buf, s.localAddr())
	h.complete(o, int64(s.handle), aux)
}

func (h *Handler) accept(o *op) {
	s, ok := h.sockOf(o)
	if !ok {
		return
	}
	switch {
	case s.ln == nil:
		h.fail(o, syscall.EINVAL) // accept on a connection, as accept(2) says
		return
	case o.buf != nil && len(o.buf) < proto.AddrPairSize, o.selecting() && o.sub.Len < proto.AddrPairSize:
		h.fail(o, syscall.EINVAL)
		return
	}
	h.readOrWait(o, s, &s.accepts, (*sock).tryAccept)
}

func (h *Handler) connect(o *op) {
	var addr netip.AddrPort
	var err error
	switch {
	case o.selecting():
		addr, err = proto.InlineAddr(&o.sub) // no buffer while connecting
	case len(o.buf) < proto.SockAddrSize:
		h.fail(o, syscall.EINVAL)
		return
	default:
		addr, err = proto.DecodeSockAddr(o.buf)
	}
	if err != nil || addr.Port() == 0 || o.sub.Args[0] > uint64(24*time.Hour) {
		h.fail(o, syscall.EINVAL)
		return
	}
	app := o.app
	if s := h.replayed(o); s != nil && s.conn != nil {
		// The dead incarnation began it for this very call: it goes on
		// connecting (or has connected), and this call gets its answer.
		if !h.admit(o) {
			return
		}
		o.sock = s
		s.connecting = o
		h.connectTimeout(o, s)
		s.pump()
		return
	}
	if !h.permitted(o, addr) || !h.underSocketLimit(o) {
		return
	}
	if !h.admitSocket(app, o) || !h.admitConnection(app, o) || !h.admit(o) {
		return
	}
	s := &sock{h: h, app: app}
	c, err := h.be.Connect(addr, s.notify)
	if err != nil {
		h.fail(o, err)
		return
	}
	s.conn = c
	h.register(s)
	h.owned(s, o.sub.UserData) // a death from here on leaves it connecting, for the app's replay
	o.sock = s
	s.connecting = o
	h.connectTimeout(o, s)
	s.pump()
}

// connectTimeout arms o's timeout (Args[0]), which closes s, the socket it
// connects, if it has not connected by then.
func (h *Handler) connectTimeout(o *op, s *sock) {
	if d := time.Duration(o.sub.Args[0]); d > 0 {
		o.tmr = h.timers.AfterFunc(d, func() {
			if s.connecting == o {
				o.tmr = nil // it is running: do not stop it in complete
				s.close(syscall.ETIMEDOUT)
			}
		})
	}
}

func (h *Handler) send(o *op) {
	s, ok := h.connOf(o)
	if !ok {
		return
	}
	switch {
	case o.sub.Len == 0:
		h.complete(o, 0, 0)
		return
	case o.buf == nil:
		h.fail(o, syscall.EFAULT)
		return
	}
	if len(s.sends) == 0 && s.ready&backend.Writable != 0 && s.trySend(o) {
		if s.awaitEnd != 0 {
			s.pump() // the close may be due now
		}
		return
	}
	if h.waitOn(o, s) {
		s.queueSend(o)
	}
}

func (h *Handler) recv(o *op) {
	s, ok := h.connOf(o)
	if !ok {
		return
	}
	flags := proto.RecvFlag(o.sub.Args[0])
	switch {
	case flags&^proto.KnownRecvFlags != 0:
		h.fail(o, syscall.EINVAL)
		return
	case flags&proto.RecvPoll != 0 && (o.buf != nil || o.selecting()):
		h.fail(o, syscall.EINVAL)
		return
	case flags&proto.RecvPoll == 0 && len(o.buf) == 0 && !(o.selecting() && o.sub.Len > 0):
		h.fail(o, syscall.EINVAL)
		return
	}
	if o.sub.Flags&proto.FlagStream != 0 && s.stream != nil && len(s.recvs) == 0 {
		// What the app shows it has leaves the socket now, not when the
		// receive is tried: those bytes may be all the receive window
		// held, and a peer whose window is shut sends nothing that
		// would make the socket readable again (the kernel backend).
		s.stream.Release(o.sub.Offset)
	}
	h.readOrWait(o, s, &s.recvs, (*sock).tryRecv)
}

func (h *Handler) shutdown(o *op) {
	s, ok := h.connOf(o)
	if !ok {
		return
	}
	if o.sub.Args[0] > proto.ShutBoth {
		h.fail(o, syscall.EINVAL)
		return
	}
	if o.sub.Args[0] != proto.ShutRead && (len(s.sends) > 0 || s.streamBehind(o)) {
		// Sends go out before the end of the stream: wait behind them
		// (and behind the replays of those the dead incarnation took).
		if h.waitOn(o, s) {
			s.queueSend(o)
		}
		return
	}
	s.shutdownNow(o)
}

func (h *Handler) closeOp(o *op) {
	s, ok := h.sockOf(o)
	if !ok {
		return
	}
	if o.sub.Flags&proto.FlagStream != 0 && s.stream != nil {
		s.stream.Release(o.sub.Offset) // what the app received is not unread
		if end := o.sub.Args[0]; s.stream.Sent(end) < end {
			// Sends before the close have not all arrived: the dead
			// incarnation took them, and the app replays them behind
			// this close (or they wait for room). The handle stays
			// until they are in, and a next incarnation knows it.
			s.stream.Closing(end)
			s.closeAfterReplays(end)
			h.complete(o, 0, 0)
			return
		}
	}
	if s.ln != nil && o.sub.Args[0]&proto.CloseKeep != 0 && h.opts.Linger > 0 && h.keptBy(s.key) < maxKeptPerApp {
		// Left to the app's next incarnation (graceful restart).
		delete(o.app.socks, s.handle)
		h.orphan(s)
		h.log.Info("listener kept for the app's next incarnation", "app", o.app.name, "addr", s.key.addr)
		h.complete(o, 0, 0)
		return
	}
	if len(s.sends) > 0 {
		s.closeAfterSends()
	} else {
		s.close(syscall.ECANCELED)
	}
	h.complete(o, 0, 0)
}

func (h *Handler) setsockopt(o *op) {
	s, ok := h.sockOf(o)
	if !ok {
		return
	}
	opt, v := proto.SockOpt(o.sub.Args[0]), int64(o.sub.Args[1])
	switch {
	case !opt.Valid():
		h.fail(o, syscall.ENOPROTOOPT)
		return
	case (opt == proto.OptRecvBuffer || opt == proto.OptSendBuffer) && v > int64(o.app.limits.SockBuf):
		h.fail(o, syscall.ENOBUFS)
		return
	case opt != proto.OptLinger && v < 0, v > 1<<31-1, v < -1:
		h.fail(o, syscall.EINVAL)
		return
	}
	var sk backend.Socket = s.conn
	if s.ln != nil {
		sk = s.ln
	}
	if err := sk.SetOption(opt, v); err != nil {
		h.fail(o, err)
		return
	}
	h.complete(o, 0, 0)
}

func (h *Handler) sockname(o *op) {
	s, ok := h.sockOf(o)
	if !ok {
		return
	}
	if len(o.buf) < proto.SockAddrSize {
		h.fail(o, syscall.EINVAL)
		return
	}
	if o.sub.Op == proto.OpGetsockname {
		proto.EncodeSockAddr(o.buf, s.localAddr())
		h.complete(o, proto.SockAddrSize, 0)
		return
	}
	if !h.connected(o, s) {
		return
	}
	peer, err := s.conn.PeerAddr()
	if err != nil {
		h.fail(o, err)
		return
	}
	proto.EncodeSockAddr(o.buf, peer)
	h.complete(o, proto.SockAddrSize, 0)
}

// cancel ends the waiting operation whose user_data is Args[0]: with
// ECANCELED, or with its count if it is a send that got bytes out. A
// connect that is cancelled closes its socket.
func (h *Handler) cancel(o *op) {
	target := o.app.pending[o.sub.Args[0]]
	if target == nil {
		h.fail(o, syscall.ENOENT)
		return
	}
	s := target.sock
	switch {
	case s != nil && s.connecting == target:
		s.close(syscall.ECANCELED)
	case s != nil && s.remove(target):
		h.endWaiting(target, syscall.ECANCELED)
		s.pump() // a closing socket may have nothing left to send
	default:
		h.endWaiting(target, syscall.ECANCELED)
	}
	h.complete(o, 0, 0)
}

// sockOf looks up the socket o names (EBADF, or ECONNRESET for a handle
// of a dead incarnation).
func (h *Handler) sockOf(o *op) (*sock, bool) {
	s, errno := o.app.lookup(o.sub.Handle)
	if errno != 0 {
		h.fail(o, errno)
		return nil, false
	}
	return s, true
}

// connOf is sockOf for the operations of a connection: a listener, or a
// socket still connecting, is ENOTCONN.
func (h *Handler) connOf(o *op) (*sock, bool) {
	s, ok := h.sockOf(o)
	return s, ok && h.connected(o, s)
}

// connected fails o with ENOTCONN unless s is a connection, connected.
func (h *Handler) connected(o *op, s *sock) bool {
	if s.conn == nil || s.connecting != nil {
		h.fail(o, syscall.ENOTCONN)
		return false
	}
	return true
}

// register gives s a new handle and enters it in its app's sockets.
func (h *Handler) register(s *sock) {
	s.handle = h.newHandle(s.app)
	s.app.socks[s.handle] = s
}

// waitOn admits o as waiting on s (see admit); the caller then queues it
// where s keeps operations of its kind.
func (h *Handler) waitOn(o *op, s *sock) bool {
	if !h.admit(o) {
		return false
	}
	o.sock = s
	return true
}

// readOrWait tries o (an accept or a recv) at once if nothing waits before
// it in queue and s may be readable, and otherwise leaves it waiting there.
func (h *Handler) readOrWait(o *op, s *sock, queue *[]*op, try func(*sock, *op) bool) {
	if len(*queue) == 0 && s.ready&backend.Readable != 0 && try(s, o) {
		return
	}
	if h.waitOn(o, s) {
		*queue = append(*queue, o)
	}
}

// underSocketLimit fails o with EMFILE if its app holds as many sockets as
// its limit allows.
func (h *Handler) underSocketLimit(o *op) bool {
	app := o.app
	if app.sockets() >= app.limits.Sockets {
		h.overLimit(app, "sockets", int64(app.limits.Sockets))
		h.fail(o, syscall.EMFILE)
		return false
	}
	return true
}

// permitted asks Options.Permit about o's address.
func (h *Handler) permitted(o *op, addr netip.AddrPort) bool {
	if h.opts.Permit == nil {
		return true
	}
	if err := h.opts.Permit(o.sub.Op, addr); err != nil {
		h.fail(o, err)
		return false
	}
	return true
}
