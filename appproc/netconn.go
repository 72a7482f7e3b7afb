package appproc

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"saturn/proto"
)

// TCPConn is a TCP connection through netproc. It implements net.Conn
// completely, in the manner of *net.TCPConn: it is safe for concurrent
// use (Reads are serialised among themselves, and so are Writes);
// deadlines are absolute, expire with an error that is
// os.ErrDeadlineExceeded and a net.Error whose Timeout is true, and may be
// moved while a call waits; Close unblocks every pending call, and later
// calls fail with net.ErrClosed; errors are *net.OpError wrapping the
// errno netproc answered, except io.EOF at the end of the stream.
//
// How it maps onto netproc: a Read that finds nothing buffered starts one
// recv and waits for it, its deadline, or Close. The recv is a wait
// (proto.Op.Waits) that chooses its buffer only when data has come
// (proto.FlagSelect): while the connection is idle it holds no call slot
// and no buffer, so that any number of idle connections leave the
// channel to the busy ones. A recv outlives a Read that gave up
// (deadline): what it brings is kept for the next Read, so no byte is
// ever lost, and the caller's slice is never written after Read
// returned. A Write copies its bytes into the channel's buffers, in chunks
// of the buffer size, and returns once they are queued in netproc, in
// order, like bytes in a kernel socket's send buffer: up to
// maxWriteBehind chunks per connection are in flight, and a Write waits
// (and its deadline applies) only for room among them. A send that fails
// later fails the next Write (or Close), as an asynchronous socket error
// does; Close lets what is queued go out first.
//
// After netproc dies, the connection is gone with it, on either backend:
// calls fail with ECONNRESET, as on a reset connection, at once (the
// supervisor ends the dead incarnation without waiting for the next), and
// so does every later call. A TCPListener, by contrast, listens again by
// itself. The exception is netproc on usertcp with resume on
// (ring.CapResume): the connection survives, and the calls the dead
// incarnation took are replayed to the next one (Request.Resume), each
// send, receive and close carrying the stream offsets that let netproc
// carry it out exactly once (proto.FlagStream), so that they see only a
// pause; see docs/restart.md.
type TCPConn struct {
	ch           *Channel
	h            uint64
	laddr, raddr *net.TCPAddr

	rmu, wmu sync.Mutex // one Read at a time; one Write at a time

	// mu guards what follows. The channel's dispatcher takes it in the
	// completion callbacks, with the channel locked: the lock order is
	// Channel.mu, then TCPConn.mu, so nothing calls the channel while
	// holding mu.
	mu      sync.Mutex
	closed  bool
	recving bool   // a recv is in flight
	stash   []byte // received and not yet read
	store   []byte // stash's reusable backing array (at most keptStash)
	rerr    error  // what ended reading (io.EOF or an errno); sticky
	rfail   error  // a recv refused for now (ENOBUFS: a limit); the next Read reports it once
	parked  func() // WaitRead's callback, until a Read would not block
	reader  []byte // the Read waiting for the recv in flight, if any
	readerN int    // what the recv copied into reader
	sending int    // sends in flight
	recvOff uint64 // bytes received from netproc (stash included): a recv's stream offset
	werr    error  // a send failed: the next Write reports it; sticky
	// sendOff is the bytes handed to netproc in sends: the next send's
	// stream offset. Written with wmu held; atomic for Close.
	sendOff atomic.Uint64

	closing          chan struct{} // closed by Close
	rready           chan struct{} // a token: a recv or poll finished
	wroom            chan struct{} // a token: a send finished, so there may be room
	rdl, wdl         deadline
	recvCB, sendCB   Callback
	minRoom, maxRoom int
}

// keptStash bounds the stash's backing array that a connection keeps for
// its next burst: an idle connection keeps nothing larger.
const keptStash = 16 << 10

// maxWriteBehind bounds the sends a connection has in flight: the
// connection's share of the channel's buffers that its unsent bytes may
// hold.
const maxWriteBehind = 4

var _ net.Conn = (*TCPConn)(nil)

func newTCPConn(ch *Channel, h uint64, local, peer netip.AddrPort) *TCPConn {
	c := &TCPConn{
		ch: ch, h: h, laddr: tcpAddr(local), raddr: tcpAddr(peer),
		closing: make(chan struct{}), rready: make(chan struct{}, 1), wroom: make(chan struct{}, 1),
		rdl: newDeadline(nil), wdl: newDeadline(nil),
		maxRoom: ch.BufferSize(),
	}
	c.rdl.onExpire = c.wakeParked
	c.minRoom = min(16<<10, c.maxRoom)
	c.recvCB, c.sendCB = c.onRecv, c.onSend
	return c
}

// Handle is the connection's socket in netproc.
func (c *TCPConn) Handle() Handle { return Handle(c.h) }

// LocalAddr implements net.Conn.
func (c *TCPConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr implements net.Conn.
func (c *TCPConn) RemoteAddr() net.Addr { return c.raddr }

func (c *TCPConn) opErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return opError(op, "tcp", c.laddr, c.raddr, err)
}

// Read implements net.Conn.
func (c *TCPConn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		case len(c.stash) > 0:
			n := copy(b, c.stash)
			c.stash = c.stash[n:]
			if len(c.stash) == 0 && cap(c.store) > keptStash {
				c.stash, c.store = nil, nil // a burst's array: let it go
			}
			c.mu.Unlock()
			return n, nil
		case c.rerr != nil:
			err := c.rerr
			c.mu.Unlock()
			return 0, c.opErr("read", err)
		case c.rfail != nil:
			err := c.rfail
			c.rfail = nil
			c.mu.Unlock()
			return 0, c.opErr("read", err)
		case len(b) == 0:
			c.mu.Unlock()
			return 0, nil
		case c.rdl.expired():
			c.mu.Unlock()
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		var req *Request
		if !c.recving {
			c.recving = true
			req = &Request{Op: proto.OpRecv, Handle: c.h, Room: min(max(len(b), c.minRoom), c.maxRoom),
				Flags: proto.FlagStream | proto.FlagSelect, Offset: c.recvOff, Resume: true}
		}
		c.reader, c.readerN = b, 0
		c.mu.Unlock()
		if req != nil {
			if _, err := c.ch.start(req, c.recvCB, c.closing, c.rdl.wait()); err != nil {
				c.mu.Lock()
				c.recving, c.reader = false, nil
				c.mu.Unlock()
				if err == errAborted {
					continue // closed or past the deadline: the top says which
				}
				return 0, c.opErr("read", err)
			}
		}
		select {
		case <-c.rready:
		case <-c.rdl.wait():
		case <-c.closing:
		}
		c.mu.Lock()
		n := c.readerN
		c.reader, c.readerN = nil, 0
		c.mu.Unlock()
		if n > 0 {
			return n, nil
		}
	}
}

// onRecv takes a recv's completion (on the dispatcher; see mu).
func (c *TCPConn) onRecv(r Response, data []byte, err error) {
	c.mu.Lock()
	c.recving = false
	switch {
	case err != nil:
		c.recvFailed(err)
	case len(data) == 0:
		c.rerr = io.EOF
	default:
		c.recvOff += uint64(len(data))
		if c.reader != nil && len(c.stash) == 0 {
			n := copy(c.reader, data)
			c.readerN, c.reader = n, nil
			data = data[n:]
		}
		if len(data) > 0 {
			if len(c.stash) == 0 {
				c.stash = c.store[:0]
			}
			c.stash = append(c.stash, data...)
			if cap(c.stash) > cap(c.store) {
				c.store = c.stash[:0:cap(c.stash)]
			}
		}
	}
	f := c.parked
	c.parked = nil
	c.mu.Unlock()
	c.signalRead()
	if f != nil {
		go f()
	}
}

// WaitRead arranges for f to be called once, on a goroutine of its own, as
// soon as a Read would not block: bytes or the end of the stream have
// come, the connection failed or was closed, or the read deadline passed.
// Meanwhile the connection holds no goroutine of the caller's, and what
// it holds in the channel is its receive waiting in netproc, with no call
// slot and no buffer: a server parks an idle keep-alive connection this
// way (the web server does) and serves it again from f, so that an idle
// connection costs a few hundred bytes rather than a goroutine's stack.
// WaitRead reports false, and does nothing, while a Read is in progress
// or another WaitRead waits.
func (c *TCPConn) WaitRead(f func()) bool {
	if !c.rmu.TryLock() {
		return false
	}
	defer c.rmu.Unlock()
	c.mu.Lock()
	if c.parked != nil {
		c.mu.Unlock()
		return false
	}
	if c.closed || len(c.stash) > 0 || c.rerr != nil || c.rfail != nil || c.rdl.expired() {
		c.mu.Unlock()
		go f()
		return true
	}
	c.parked = f
	var req *Request
	if !c.recving {
		c.recving = true
		req = &Request{Op: proto.OpRecv, Handle: c.h, Room: c.minRoom,
			Flags: proto.FlagStream | proto.FlagSelect, Offset: c.recvOff, Resume: true}
	}
	c.mu.Unlock()
	if req != nil {
		if _, err := c.ch.start(req, c.recvCB, c.closing, nil); err != nil {
			c.mu.Lock()
			c.recving = false
			if err != errAborted && c.rerr == nil {
				c.rfail = err
			}
			c.mu.Unlock()
			c.wakeParked()
		}
	}
	return true
}

// wakeParked calls WaitRead's callback, if one waits: the read deadline
// passed, or the connection closed.
func (c *TCPConn) wakeParked() {
	c.mu.Lock()
	f := c.parked
	c.parked = nil
	c.mu.Unlock()
	if f != nil {
		go f()
	}
}

// recvFailed records why a recv failed. mu held.
func (c *TCPConn) recvFailed(err error) {
	switch {
	case c.closed:
		// Cancelled by our own Close: the reader reports ErrClosed.
	case errors.Is(err, syscall.ENOBUFS):
		// The app has as many operations waiting in netproc as its
		// limits allow: this Read fails, the connection does not.
		c.rfail = err
	case errors.Is(err, syscall.ECANCELED):
	default:
		c.rerr = err
	}
}

func (c *TCPConn) signalRead() {
	select {
	case c.rready <- struct{}{}:
	default:
	}
}

// Write implements net.Conn.
func (c *TCPConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.write(b)
}

// write is Write with wmu held.
func (c *TCPConn) write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		if err := c.takeSendRoom(); err != nil {
			return written, c.opErr("write", err)
		}
		chunk := b[written:min(len(b), written+c.maxRoom)]
		_, err := c.ch.start(c.sendRequest(chunk), c.sendCB, c.closing, c.wdl.wait())
		if err != nil {
			c.dropSendRoom()
			if err == errAborted {
				continue // closed or past the deadline: takeSendRoom says which
			}
			return written, c.opErr("write", err)
		}
		c.sendOff.Add(uint64(len(chunk)))
		written += len(chunk) // queued in netproc: as good as in a socket buffer
	}
	if err := c.writeErr(); err != nil {
		return written, c.opErr("write", err)
	}
	return written, nil
}

// writeErr is why the connection takes no more writes (net.ErrClosed, or
// the error a send failed with), or nil.
func (c *TCPConn) writeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return net.ErrClosed
	case c.werr != nil:
		return c.werr
	}
	return nil
}

// sendRequest is the send of in (nil for a reserved buffer) from the
// stream position sendOff, which the caller advances once it started.
// With its offset, netproc on a backend that resumes connections takes it
// exactly once, replayed or not (see Request.Resume). wmu held.
func (c *TCPConn) sendRequest(in []byte) *Request {
	return &Request{Op: proto.OpSend, Handle: c.h, In: in, Flags: proto.FlagStream, Offset: c.sendOff.Load(), Resume: true}
}

// onSend takes a send's completion (on the dispatcher; see mu).
func (c *TCPConn) onSend(r Response, _ []byte, err error) {
	c.mu.Lock()
	c.sending--
	if err != nil && c.werr == nil && !c.closed && !errors.Is(err, syscall.ECANCELED) {
		c.werr = err
	}
	c.mu.Unlock()
	select {
	case c.wroom <- struct{}{}:
	default:
	}
}

func (c *TCPConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close implements net.Conn: pending Reads and Writes return at once with
// net.ErrClosed, and netproc closes the socket.
func (c *TCPConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	c.closed = true
	c.stash, c.store = nil, nil
	off := c.recvOff
	c.mu.Unlock()
	close(c.closing)
	c.wakeParked()
	_, err := netOp(c.ch, &Request{Op: proto.OpClose, Handle: c.h, Flags: proto.FlagStream, Offset: off,
		Args: [3]uint64{c.sendOff.Load()}, Resume: true})
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil // netproc restarted: the socket is gone already
	}
	return c.opErr("close", err)
}

// CloseWrite shuts down the sending side: the peer reads the end of the
// stream once what was sent has arrived.
func (c *TCPConn) CloseWrite() error { return c.shutdown(proto.ShutWrite) }

// CloseRead shuts down the receiving side.
func (c *TCPConn) CloseRead() error { return c.shutdown(proto.ShutRead) }

func (c *TCPConn) shutdown(how int) error {
	if c.isClosed() {
		return c.opErr("close", net.ErrClosed)
	}
	_, err := netOp(c.ch, &Request{Op: proto.OpShutdown, Handle: c.h, Args: [3]uint64{uint64(how)},
		Flags: proto.FlagStream, Offset: c.sendOff.Load(), Resume: true})
	return c.opErr("close", err)
}

// SetDeadline implements net.Conn.
func (c *TCPConn) SetDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set", net.ErrClosed)
	}
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline implements net.Conn.
func (c *TCPConn) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set", net.ErrClosed)
	}
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline implements net.Conn.
func (c *TCPConn) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set", net.ErrClosed)
	}
	c.wdl.set(t)
	return nil
}

func (c *TCPConn) setOption(opt proto.SockOpt, v int64) error {
	if c.isClosed() {
		return c.opErr("set", net.ErrClosed)
	}
	_, err := netOp(c.ch, &Request{Op: proto.OpSetsockopt, Handle: c.h, Args: [3]uint64{uint64(opt), uint64(v)}, Resume: true})
	return c.opErr("set", err)
}

func boolOpt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// SetNoDelay turns Nagle's algorithm off (true, the default) or on.
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	return c.setOption(proto.OptNoDelay, boolOpt(noDelay))
}

// SetKeepAlive turns TCP keep-alives on or off.
func (c *TCPConn) SetKeepAlive(on bool) error { return c.setOption(proto.OptKeepAlive, boolOpt(on)) }

// SetKeepAlivePeriod sets the idle time before keep-alives, and their
// interval, in whole seconds (at least one), as package net does.
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	secs := max(int64((d+time.Second-1)/time.Second), 1)
	if err := c.setOption(proto.OptKeepAliveIdle, secs); err != nil {
		return err
	}
	return c.setOption(proto.OptKeepAliveInterval, secs)
}

// SetReadBuffer sets the socket's receive buffer size.
func (c *TCPConn) SetReadBuffer(bytes int) error {
	return c.setOption(proto.OptRecvBuffer, int64(bytes))
}

// SetWriteBuffer sets the socket's send buffer size.
func (c *TCPConn) SetWriteBuffer(bytes int) error {
	return c.setOption(proto.OptSendBuffer, int64(bytes))
}

// SetLinger sets SO_LINGER: negative (the default) closes in the
// background, zero resets the connection at Close, positive waits.
func (c *TCPConn) SetLinger(sec int) error {
	return c.setOption(proto.OptLinger, int64(max(sec, -1)))
}
