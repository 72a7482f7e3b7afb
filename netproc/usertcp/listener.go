package usertcp

import (
	"net/netip"
	"slices"
	"syscall"
	"time"

	"saturn/netproc/backend"
	"saturn/netproc/header"
	"saturn/netproc/tcp"
	"saturn/proto"
)

// listener is a listening socket: the core's tcp.Listener (plain data,
// kept here), its children and its accept queue (the caller's duty 6 of
// package tcp). Loop only.
type listener struct {
	waker
	s         *Stack
	port      uint16
	laddr     header.IPv4Addr // zero: every local address
	asked     netip.AddrPort  // what the app asked for, for LocalAddr
	backlog   int             // accept-queue bound
	v6only    bool            // what Listen was asked (kept for the handler, see listenrec.go)
	reusePort bool
	slot      int32 // its record in the table (listenrec.go); -1: none
	sndBuf    int
	rcvBuf    int
	connCfg   tcp.Config
	tl        tcp.Listener

	halfOpen int                // children in SYN-RECEIVED
	acceptQ  []*conn            // established children, oldest first
	children map[*conn]struct{} // every child not yet accepted
	closed   bool
}

var _ backend.Listener = (*listener)(nil)

// remake builds the core's listener from the current settings.
func (l *listener) remake() {
	l.tl = tcp.NewListener(tcp.ListenerConfig{
		Conn: l.connCfg, SendBuf: uint32(l.sndBuf), RecvBuf: uint32(l.rcvBuf),
		Backlog: uint32(max(l.s.cfg.SynBacklog, l.backlog)), Cookies: tcp.CookiesWhenFull, Secret: l.s.secret,
	})
}

// matches reports whether the listener takes connections to laddr.
func (l *listener) matches(laddr header.IPv4Addr) bool {
	return l.laddr == (header.IPv4Addr{}) || l.laddr == laddr
}

// listenerFor finds the listener for a segment that matched no connection.
// Among listeners sharing a port (SO_REUSEPORT), the tuple's hash chooses.
func (s *Stack) listenerFor(k tupleKey) *listener {
	ls := s.listeners[k.lport]
	switch len(ls) {
	case 0:
		return nil
	case 1:
		if ls[0].matches(k.laddr) {
			return ls[0]
		}
		return nil
	}
	h := uint32(k.raddr[0])<<24 | uint32(k.raddr[1])<<16 | uint32(k.raddr[2])<<8 | uint32(k.raddr[3])
	h ^= uint32(k.rport) * 2654435761
	for i := range ls {
		l := ls[(int(h)+i)%len(ls)]
		if l.matches(k.laddr) {
			return l
		}
	}
	return nil
}

// listenIn runs the listener on a segment for it (duty 6): a new child
// joins the table, in SYN-RECEIVED or, after a valid cookie, already on
// the accept queue.
func (s *Stack) listenIn(l *listener, k tupleKey, seg *tcp.Segment) {
	f := seg.Flags
	var slot int32 = -1
	if f&tcp.FlagRST == 0 && (f&tcp.FlagSYN != 0) != (f&tcp.FlagACK != 0) {
		// A SYN, or a bare ACK that may complete a cookie handshake: a
		// child may be made.
		if i, ok := s.tab.alloc(l.sndBuf, l.rcvBuf, l.port); ok {
			slot = i
		} else {
			s.shell.TableFull++
		}
	}
	in := tcp.ListenInput{Seg: *seg, Tuple: k.tuple(), HalfOpen: l.halfOpen, AcceptQueueFull: len(l.acceptQ) >= l.backlog}
	var child *tcp.Conn
	var mem tcp.Mem
	if slot >= 0 {
		child = s.tab.conn(slot)
		snd, rcv := s.tab.bufs(slot, l.sndBuf, l.rcvBuf)
		mem = tcp.Mem{Send: snd, Recv: rcv}
	}
	mem.Stats = &s.stats
	s.out.Reset()
	res := l.tl.Step(&in, s.now, child, mem, &s.out)
	if len(s.out.Segments) > 0 {
		s.emit(k, s.out.Segments)
	}
	if res != tcp.ListenNewConn {
		if slot >= 0 {
			s.tab.release(slot)
		}
		return
	}
	c := s.newConn(slot, k, l.sndBuf, l.rcvBuf)
	c.ln = l
	l.children[c] = struct{}{}
	s.link(c)
	c.markBuffers()
	if s.out.Wake&tcp.WakeReadable != 0 {
		s.touched(c)
	}
	tc := s.tab.conn(slot)
	switch st := tc.State(); {
	case tc.Done():
		s.free(c)
		return
	case st == tcp.StateSynReceived:
		c.inSynQ = true
		l.halfOpen++
	case st == tcp.StateClosed:
		// A cookie child that died at once (it was reset): nobody will
		// accept it.
		s.unlink(c)
	default:
		l.enqueue(c)
	}
	s.schedule(c, s.out.Timer)
}

// childConnected moves a child whose handshake completed to the accept
// queue.
func (l *listener) childConnected(c *conn) {
	if c.inSynQ {
		c.inSynQ = false
		l.halfOpen--
	}
	l.enqueue(c)
}

func (l *listener) enqueue(c *conn) {
	c.inAcceptQ = true
	l.acceptQ = append(l.acceptQ, c)
	l.s.wake(&l.waker, backend.Readable)
}

// forget takes c out of the listener's books: it was accepted, or died.
func (l *listener) forget(c *conn) {
	if c.inSynQ {
		c.inSynQ = false
		l.halfOpen--
	}
	if c.inAcceptQ {
		c.inAcceptQ = false
		if i := slices.Index(l.acceptQ, c); i >= 0 {
			l.acceptQ = slices.Delete(l.acceptQ, i, i+1)
		}
	}
	delete(l.children, c)
	c.ln = nil
}

// Accept implements backend.Listener. A connection with data (or an end)
// already waiting is notified readable at once, since the handler assumes
// a new connection is writable only.
func (l *listener) Accept(notify backend.Notify) (backend.Conn, netip.AddrPort, error) {
	s := l.s
	if l.closed {
		return nil, netip.AddrPort{}, syscall.EBADF
	}
	if len(l.acceptQ) == 0 {
		return nil, netip.AddrPort{}, syscall.EAGAIN
	}
	s.enter(true)
	defer s.exit()
	c := l.acceptQ[0]
	l.forget(c)
	if !s.cfg.Resume {
		s.tab.setListen(c.slot, 0)
	} // else SetOwner clears it: until the app has a handle, a death puts it back in the accept queue
	c.notify = notify
	tc := c.tcp()
	var ev backend.Events
	if tc.Readable() > 0 {
		ev |= backend.Readable
	}
	if tc.PeerClosed() {
		ev |= backend.Hangup | backend.Readable
	}
	if tc.State() == tcp.StateClosed {
		ev |= backend.Failed | backend.Hangup | backend.Readable
	}
	s.wake(&c.waker, ev)
	return c, c.key.remote(), nil
}

// LocalAddr implements backend.Socket.
func (l *listener) LocalAddr() (netip.AddrPort, error) {
	return netip.AddrPortFrom(l.asked.Addr(), l.port), nil
}

// SetOption implements backend.Socket: settings for the connections the
// listener will make.
func (l *listener) SetOption(opt proto.SockOpt, v int64) error {
	if l.closed {
		return syscall.EBADF
	}
	c := &l.connCfg
	switch opt {
	case proto.OptNoDelay:
		c.NoDelay = v != 0
	case proto.OptKeepAlive:
		c.KeepAlive = v != 0
	case proto.OptKeepAliveIdle:
		c.KeepIdle = time.Duration(v) * time.Second
	case proto.OptKeepAliveInterval:
		c.KeepInterval = time.Duration(v) * time.Second
	case proto.OptKeepAliveCount:
		c.KeepCount = uint8(min(v, 255))
	case proto.OptRecvBuffer:
		l.rcvBuf = clampBuf(v, l.s.cfg.RecvBuf)
	case proto.OptSendBuffer:
		l.sndBuf = clampBuf(v, l.s.cfg.SendBuf)
	case proto.OptLinger:
		return nil
	default:
		return syscall.ENOPROTOOPT
	}
	l.remake()
	l.persist()
	return nil
}

// clampBuf turns a requested buffer size into one the table's slot holds:
// whole pages, at least minBufSize, at most the slot.
func clampBuf(v int64, slot int) int {
	return min(max(alignUp(int(min(v, int64(slot))), pageSize), minBufSize), slot)
}

// Close implements backend.Socket: the port is free again, and every child
// not yet accepted is reset.
func (l *listener) Close() error {
	if l.closed {
		return nil
	}
	s := l.s
	s.enter(true)
	defer s.exit()
	l.closed = true
	l.notify = nil
	ls := s.listeners[l.port]
	if i := slices.Index(ls, l); i >= 0 {
		ls = slices.Delete(ls, i, i+1)
	}
	if len(ls) == 0 {
		delete(s.listeners, l.port)
	} else {
		s.listeners[l.port] = ls
	}
	for c := range l.children {
		l.forget(c)
		c.closed = true
		s.orphans++
		s.step(c, tcp.Input{Kind: tcp.InAbort})
		if !c.freed {
			s.tab.setState(c.slot, recOrphan)
		}
	}
	l.unpersist()
	return nil
}
