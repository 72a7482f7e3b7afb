package usertcp

import (
	"errors"
	"io"
	"net/netip"
	"syscall"
	"time"

	"saturn/netproc/backend"
	"saturn/netproc/tcp"
	"saturn/netproc/tcp/seqnum"
	"saturn/proto"
)

// conn is the shell's side of one connection: where its state lives (a
// record of the table; the core's tcp.Conn is stepped in place there), its
// timer, and what the handler knows of it. The bytes are in the record's
// buffer slot. Loop only.
type conn struct {
	waker
	s                *Stack
	slot             int32
	gen              uint32
	key              tupleKey
	sndSize, rcvSize uint32

	deadline tcp.Time // the core's current deadline (0: none)
	queuedAt tcp.Time // the deadline of the heap entry it has queued (0: none)

	ln        *listener // the listener, until the app accepts it
	inSynQ    bool      // a listener's child in SYN-RECEIVED
	inAcceptQ bool      // a listener's child waiting for Accept

	connecting bool // made by Connect; ConnectResult not yet nil
	rdShut     bool // shut down for reading: reads find the end
	lingerZero bool // SO_LINGER 0: Close resets
	closed     bool // the app closed it (an orphan from then on)
	linked     bool // in the demultiplexing table
	freed      bool

	// Page reclaim (see reclaim.go).
	dirty         bool     // data passed through its buffers since the last reclaim
	reclaimQueued bool     // in the stack's reclaim queue
	lastActive    tcp.Time // when data last passed
	sndMarkSeq    seqnum.Value
	rcvMarkSeq    seqnum.Value
	sndMarkOff    uint32
	rcvMarkOff    uint32
}

var _ backend.Conn = (*conn)(nil)

func (c *conn) tcp() *tcp.Conn { return c.s.tab.conn(c.slot) }

// Buffered implements backend.Buffered: what the connection's send and
// receive buffers hold.
func (c *conn) Buffered() int {
	if c.freed {
		return 0
	}
	tc := c.tcp()
	return tc.Unsent() + tc.Readable()
}

// ConnectResult implements backend.Conn.
func (c *conn) ConnectResult() error {
	if !c.connecting {
		return nil
	}
	if c.freed || c.closed {
		return syscall.EBADF
	}
	tc := c.tcp()
	switch tc.State() {
	case tcp.StateSynSent, tcp.StateSynReceived:
		return syscall.EINPROGRESS
	case tcp.StateClosed:
		if err := tc.Err(); err != nil {
			return errnoOf(err)
		}
		return syscall.ECONNREFUSED
	}
	c.connecting = false
	return nil
}

// Read implements backend.Conn: it copies readable bytes into b (the app's
// buffer) and frees their room in the receive buffer.
func (c *conn) Read(b []byte) (int, error) {
	if c.freed || c.closed {
		return 0, syscall.EBADF
	}
	if c.rdShut {
		return 0, nil
	}
	s := c.s
	s.enter(true)
	defer s.exit()
	n, err := s.step(c, tcp.Input{Kind: tcp.InRead, Data: b})
	switch {
	case n > 0:
		return n, nil
	case errors.Is(err, io.EOF):
		return 0, nil
	case err != nil:
		return 0, errnoOf(err)
	}
	return 0, syscall.EAGAIN
}

// Write implements backend.Conn: it copies from b (the app's buffer, which
// the app may rewrite at any moment: it is read once) into the send buffer
// what fits, and sends what the windows allow.
func (c *conn) Write(b []byte) (int, error) {
	if c.freed || c.closed {
		return 0, syscall.EBADF
	}
	if len(b) == 0 {
		return 0, nil
	}
	s := c.s
	s.enter(true)
	defer s.exit()
	n, err := s.step(c, tcp.Input{Kind: tcp.InSend, Data: b})
	switch {
	case err != nil:
		return 0, errnoOf(err)
	case n == 0:
		return 0, syscall.EAGAIN
	}
	s.touched(c)
	return n, nil
}

// Shutdown implements backend.Conn.
func (c *conn) Shutdown(how int) error {
	if c.freed || c.closed {
		return syscall.EBADF
	}
	s := c.s
	s.enter(true)
	defer s.exit()
	switch how {
	case proto.ShutRead:
		c.rdShut = true
		return nil
	case proto.ShutWrite, proto.ShutBoth:
		if how == proto.ShutBoth {
			c.rdShut = true
		}
		_, err := s.step(c, tcp.Input{Kind: tcp.InShutdown})
		return errnoOf(err)
	}
	return syscall.EINVAL
}

// Close implements backend.Socket: the app is done with the connection. It
// closes gracefully (FIN after the queued bytes) and lives on, orphaned,
// through FIN-WAIT and TIME-WAIT; with unread data or SO_LINGER 0 it is
// reset instead.
func (c *conn) Close() error {
	if c.freed || c.closed {
		return nil
	}
	s := c.s
	s.enter(true)
	defer s.exit()
	c.closed = true
	c.notify = nil
	s.orphans++
	if c.ln != nil {
		c.ln.forget(c)
	}
	in := tcp.InClose
	if c.lingerZero {
		in = tcp.InAbort
	}
	s.step(c, tcp.Input{Kind: in})
	if !c.freed {
		s.tab.setState(c.slot, recOrphan)
	}
	return nil
}

// LocalAddr implements backend.Socket.
func (c *conn) LocalAddr() (netip.AddrPort, error) { return c.key.local(), nil }

// PeerAddr implements backend.Conn.
func (c *conn) PeerAddr() (netip.AddrPort, error) { return c.key.remote(), nil }

// SetOption implements backend.Socket. Buffer sizes are fixed when a
// connection opens (the core's buffers cannot change size): set them on
// the listener, before connections arrive; on a connection they are
// accepted and have no effect.
func (c *conn) SetOption(opt proto.SockOpt, v int64) error {
	if c.freed || c.closed {
		return syscall.EBADF
	}
	s := c.s
	s.enter(true)
	defer s.exit()
	var o tcp.Option
	switch opt {
	case proto.OptNoDelay:
		o = tcp.OptNoDelay
	case proto.OptKeepAlive:
		o = tcp.OptKeepAlive
	case proto.OptKeepAliveIdle:
		o, v = tcp.OptKeepIdle, v*int64(time.Second)
	case proto.OptKeepAliveInterval:
		o, v = tcp.OptKeepInterval, v*int64(time.Second)
	case proto.OptKeepAliveCount:
		o = tcp.OptKeepCount
	case proto.OptRecvBuffer, proto.OptSendBuffer:
		return nil
	case proto.OptLinger:
		c.lingerZero = v == 0
		return nil
	default:
		return syscall.ENOPROTOOPT
	}
	_, err := s.step(c, tcp.Input{Kind: tcp.InSetOption, Opt: o, Value: v})
	return errnoOf(err)
}
