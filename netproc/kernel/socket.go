package kernel

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"saturn/netproc/backend"
	"saturn/proto"
)

// socket is one kernel socket: a listener or a connection.
type socket struct {
	b          *Backend
	fd         int
	notify     backend.Notify
	connecting bool
	listener   bool
	abortive   bool           // SO_LINGER 0: a close resets
	peer       netip.AddrPort // known once connected or accepted
	closed     bool

	// What outlives netproc (resume.go), when the backend keeps sockets:
	// the record (-1: none yet) and the store's key, and what the record
	// holds.
	rec            int
	key            uint64
	kind, flags    uint32
	backlog        uint32
	owner, handle  uint64
	call           uint64
	sent, consumed uint64
	closeAt        uint64

	// Receiving (receive.go): the stream offset up to which the app has
	// shown it has the bytes (released, from consumed on still in the
	// socket, held for held receives), where the kernel's peek offset
	// stands when it is on (peekAt; otherwise the end of what was
	// peeked), and whether it is.
	released, peekAt uint64
	held             int
	peek             peekMode
	releasedOnce     bool // released once before: a connection that lives on
	smallBuffer      bool // SO_RCVBUF set below minHoldBuffer: hold nothing
	streaming        bool // a receive filled its buffer: hold nothing
}

var (
	_ backend.Listener = (*socket)(nil)
	_ backend.Conn     = (*socket)(nil)
)

// event turns what epoll saw into readiness for the handler.
func (s *socket) event(ev uint32) {
	if s.closed {
		return
	}
	var e backend.Events
	if ev&unix.EPOLLIN != 0 {
		e |= backend.Readable
	}
	if ev&unix.EPOLLOUT != 0 {
		e |= backend.Writable
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		e |= backend.Hangup | backend.Readable
	}
	if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		e |= backend.Failed | backend.Readable | backend.Writable
	}
	if e != 0 {
		s.notify(e)
	}
}

// Accept implements backend.Listener.
func (s *socket) Accept(notify backend.Notify) (backend.Conn, netip.AddrPort, error) {
	for {
		fd, sa, err := unix.Accept4(s.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
		case unix.EINTR:
			continue
		case unix.ECONNABORTED:
			continue // the peer gave up while queued; take the next one
		default:
			return nil, netip.AddrPort{}, errno(err)
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &socket{b: s.b, fd: fd, notify: notify, peer: addrPort(sa), rec: -1, kind: kindAccepted}
		if err := s.b.env.AddFD(fd, connEvents, c.event); err != nil {
			unix.Close(fd)
			return nil, netip.AddrPort{}, errno(err)
		}
		return c, c.peer, nil
	}
}

// ConnectResult implements backend.Conn, as Go's net does after a
// non-blocking connect: SO_ERROR first, then getpeername to tell a finished
// connect from a spurious wake-up.
func (s *socket) ConnectResult() error {
	if !s.connecting {
		return nil
	}
	soerr, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return errno(err)
	}
	switch e := syscall.Errno(soerr); e {
	case 0, unix.EISCONN:
	case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
		return unix.EINPROGRESS
	default:
		return e
	}
	sa, err := unix.Getpeername(s.fd)
	if err == unix.ENOTCONN {
		return unix.EINPROGRESS
	}
	if err != nil {
		return errno(err)
	}
	s.connecting = false
	s.peer = addrPort(sa)
	s.setFlag(flagConnected)
	return nil
}

// Read implements backend.Conn. A socket with a record counts what it
// consumes there (see discard).
func (s *socket) Read(b []byte) (int, error) {
	if err := s.letGo(); err != nil {
		return 0, err
	}
	defer func() { s.released, s.peekAt = s.consumed, max(s.peekAt, s.consumed) }()
	if s.rec >= 0 {
		s.b.tab.u64(s.rec, rDiscarding).Store(uint64(len(b)))
	}
	for {
		n, err := unix.Read(s.fd, b)
		if err == unix.EINTR {
			continue
		}
		if s.rec >= 0 {
			if n > 0 {
				s.consumed += uint64(n)
				s.b.tab.u64(s.rec, rConsumed).Store(s.consumed)
			}
			s.b.tab.u64(s.rec, rDiscarding).Store(0)
		} else if n > 0 {
			s.consumed += uint64(n)
		}
		if err != nil {
			return 0, errno(err)
		}
		return n, nil
	}
}

// Write implements backend.Conn. MSG_NOSIGNAL: a peer that went away is
// EPIPE for the app, never a signal for netproc.
func (s *socket) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if s.rec >= 0 {
		// The intent first: a death between the kernel taking the bytes
		// and the count below leaves it, for the next incarnation to
		// settle from the kernel's counts.
		s.b.tab.u64(s.rec, rWriting).Store(uint64(len(b)))
	}
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_NOSIGNAL, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e == 0 {
			s.sent += uint64(r)
		}
		if s.rec >= 0 {
			s.b.tab.u64(s.rec, rSent).Store(s.sent)
			s.b.tab.u64(s.rec, rWriting).Store(0)
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// Shutdown implements backend.Conn.
func (s *socket) Shutdown(how int) error {
	var h int
	switch how {
	case proto.ShutRead:
		h = unix.SHUT_RD
	case proto.ShutWrite:
		h = unix.SHUT_WR
	case proto.ShutBoth:
		h = unix.SHUT_RDWR
	default:
		return unix.EINVAL
	}
	if h != unix.SHUT_RD {
		s.setFlag(flagShutWrite)
	}
	return errno(unix.Shutdown(s.fd, h))
}

// LocalAddr implements backend.Socket.
func (s *socket) LocalAddr() (netip.AddrPort, error) {
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return netip.AddrPort{}, errno(err)
	}
	return addrPort(sa), nil
}

// PeerAddr implements backend.Conn.
func (s *socket) PeerAddr() (netip.AddrPort, error) {
	if s.peer.IsValid() {
		return s.peer, nil
	}
	sa, err := unix.Getpeername(s.fd)
	if err != nil {
		return netip.AddrPort{}, errno(err)
	}
	s.peer = addrPort(sa)
	return s.peer, nil
}

// SetOption implements backend.Socket.
func (s *socket) SetOption(opt proto.SockOpt, v int64) error {
	if v < -1<<31 || v > 1<<31-1 {
		return unix.EINVAL
	}
	var err error
	switch opt {
	case proto.OptNoDelay:
		err = unix.SetsockoptInt(s.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, boolInt(v != 0))
	case proto.OptKeepAlive:
		err = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolInt(v != 0))
	case proto.OptKeepAliveIdle:
		err = unix.SetsockoptInt(s.fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(v))
	case proto.OptKeepAliveInterval:
		err = unix.SetsockoptInt(s.fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(v))
	case proto.OptKeepAliveCount:
		err = unix.SetsockoptInt(s.fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, int(v))
	case proto.OptRecvBuffer:
		err = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, int(v))
		if err == nil && 2*v < minHoldBuffer { // the kernel doubles it
			s.smallBuffer = true
			s.letGo()
		}
	case proto.OptSendBuffer:
		err = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, int(v))
	case proto.OptLinger:
		l := unix.Linger{}
		if v >= 0 {
			l.Onoff, l.Linger = 1, int32(v)
		}
		err = unix.SetsockoptLinger(s.fd, unix.SOL_SOCKET, unix.SO_LINGER, &l)
		s.abortive = err == nil && v == 0
	default:
		return unix.ENOPROTOOPT
	}
	return errno(err)
}

// Close implements backend.Socket. The descriptor leaves the epoll set
// first, so that a later socket given the same number is not confused with
// this one (the store's copy keeps the open file, and with it the epoll
// registration, until the store drops it). A kept socket's record is
// freed before the close and the store's copy dropped after it, so that
// a death anywhere in between leaves nothing the next incarnation would
// take for a live socket.
func (s *socket) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.b.env.DelFD(s.fd)
	s.letGo() // the app has them: not unread bytes, which would reset
	if s.rec >= 0 {
		s.b.tab.release(s.rec)
		if s.kind != kindListener && !s.abortive {
			// The store's copy keeps the socket open until the drop
			// reaches the supervisor: the FIN goes now, as close(2)'s
			// would. (A socket holding unread bytes, or set to linger 0,
			// is reset by the store's close, as by ours.)
			unix.Shutdown(s.fd, unix.SHUT_WR)
		}
	}
	err := errno(unix.Close(s.fd))
	if s.rec >= 0 {
		s.b.store.drop(s.key)
		s.rec = -1
	}
	return err
}
