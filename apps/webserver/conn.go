package webserver

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Buffer sizes. A connection keeps a small read buffer while it serves
// and grows it only for a head that does not fit; it borrows its write
// buffer from a pool only while it has a response to write. An idle
// keep-alive connection costs initialReadBuf bytes and a goroutine, or,
// on a connection that can wait without one (parker), neither: see park.
const (
	initialReadBuf = 4 << 10
	writeBufSize   = 64 << 10
)

var (
	writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, writeBufSize); return &b }}
	readBufs  = sync.Pool{New: func() any { b := make([]byte, initialReadBuf); return &b }}
)

// parker is a connection that can wait for its next bytes without a
// goroutine: appproc's TCPConn (a *tls.Conn over one is not: see tls.go).
// WaitRead calls f, on a goroutine of its
// own, once a Read would not block (bytes came, the stream ended or
// failed, the connection closed, or the read deadline passed).
type parker interface {
	WaitRead(f func()) bool
}

// Connection states, for Shutdown: an idle connection holds no part of a
// request and may be closed; a busy one is finished first. A new one, not
// yet waiting for its first head, is left alone as a busy one is: fill
// sees the shutdown before it waits.
const (
	stateNew int32 = iota
	stateBusy
	stateIdle
)

// aLongTimeAgo is a deadline in the past: setting it makes a blocked Read
// return at once.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one client connection. Everything but state and nc's deadline
// (which Shutdown may move) belongs to the connection's goroutine.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string // for the access log, formatted once
	state  atomic.Int32

	rbuf       []byte  // unread request bytes are rbuf[r:w]; nil while parked
	rbufHandle *[]byte // rbuf's, from readBufs, while it has its initial size
	r, w       int
	woken      bool   // resumed from park: read, do not park again
	wbuf       []byte // response bytes not yet written; nil while idle
	wbufHandle *[]byte
	writes     uint64 // writes begun on nc: a response begun since is partly out
	firstReq   bool
	handshook  bool // a TLS connection's handshake is done (see handshake)

	// Per-request state, reset by each request.
	req      request
	now      time.Time
	keep     bool // the connection carries another request after this one
	status   int
	bodySent int64

	// Scratch space kept across requests so that serving one allocates
	// nothing once the connection is warm.
	pathBuf   []byte
	etagBuf   []byte
	rangeBuf  []byteRange
	scratch   []byte
	limited   io.LimitedReader
	headStart time.Time
	view      shared       // the cached file being served, if any
	memReader bytes.Reader // its kept contents, for a fromWriter
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{srv: s, nc: nc, firstReq: true, headStart: time.Now()}
}

// errParked: the connection is idle and parked (see park); its goroutine
// ends, and another takes over when the client sends.
var errParked = errors.New("webserver: parked")

// serve runs the connection until the client leaves, a request forces a
// close, or the server shuts down, or until it parks.
func (c *conn) serve() {
	if h, ok := c.nc.(handshaker); ok && !c.handshook {
		c.handshook = true
		if !c.handshake(h) {
			c.close()
			return
		}
	}
	if c.run() {
		return // parked
	}
	c.close()
}

// run serves requests; it reports true if the connection parked.
func (c *conn) run() bool {
	for {
		n, err := c.readHead()
		if err == errParked {
			return true
		}
		if err != nil {
			var perr *parseError
			if errors.As(err, &perr) {
				c.now = time.Now()
				c.req.reset()
				c.writeError(perr.status, true)
				c.logAccess()
				c.closeWrite()
			}
			return false
		}
		c.now = time.Now()
		c.status, c.bodySent = 0, 0
		head := c.rbuf[c.r : c.r+n]
		if perr := parseRequest(head, c.srv.cfg.MaxHeaderCount, &c.req); perr != nil {
			c.writeError(perr.status, true)
			c.logAccess()
			c.closeWrite()
			return false
		}
		c.firstReq = false
		c.keep = c.req.keepAlive() && !c.srv.shutting.Load()
		err = c.handle()
		c.logAccess()
		if err != nil {
			c.flush()
			return false
		}
		c.r += n // the request's slices are dead from here on
		if !c.keep {
			c.closeWrite()
			return false
		}
		if err := c.discardBody(); err != nil {
			c.flush()
			return false
		}
		if len(c.wbuf) >= writeBufSize/2 {
			if c.flush() != nil {
				return false
			}
		}
	}
}

// park lets an idle connection wait for its next request without a
// goroutine, when its net.Conn can (parker): the connection gives back its
// read buffer, and its goroutine ends; the connection wakes on a new
// goroutine (resume) when the client sends, hangs up, or the read deadline
// fill set passes, and reads as it would have. An idle keep-alive
// connection then costs this struct and what the net.Conn keeps, not a
// goroutine's stack and a read buffer. It reports false if the connection
// cannot park.
func (c *conn) park() bool {
	p, ok := c.nc.(parker)
	if !ok || c.woken {
		return false
	}
	c.releaseRbuf()
	if !p.WaitRead(c.resume) {
		c.acquireRbuf()
		return false
	}
	return true
}

// resume serves a parked connection again, on WaitRead's goroutine.
func (c *conn) resume() {
	growStack(0)
	c.acquireRbuf()
	c.woken = true
	c.serve()
}

// serveStack is about the stack that serving a request takes.
const serveStack = 8 << 10

// growStack grows the stack of the goroutine it is called on, while that is
// still shallow, to what serving a request needs. WaitRead wakes every
// parked connection on a new goroutine, whose stack starts at the runtime's
// smallest; left alone, it doubled several times deep in the serving path,
// each time copying and adjusting every frame above it: runtime.copystack
// took about a tenth of the web server's CPU, more than the copy of a
// 100 KiB body. Grown here, the stack is copied once, with two frames on
// it. Its frame is the array: i keeps the compiler from dropping it.
//
//go:noinline
func growStack(i int) byte {
	var pad [serveStack]byte
	return pad[i%len(pad)]
}

func (c *conn) acquireRbuf() {
	if c.rbuf == nil {
		c.rbufHandle = readBufs.Get().(*[]byte)
		c.rbuf = *c.rbufHandle
	}
}

// releaseRbuf gives back the read buffer of a connection that holds no
// unread bytes.
func (c *conn) releaseRbuf() {
	if c.rbufHandle != nil && len(c.rbuf) == initialReadBuf {
		readBufs.Put(c.rbufHandle)
	}
	c.rbuf, c.rbufHandle = nil, nil
}

// readHead returns the length of the next request head, which starts at
// rbuf[r], reading from the client as needed. Before every blocking read it
// writes out the responses it holds: pipelined requests that are already
// buffered are answered in one write, and no response waits on the client.
func (c *conn) readHead() (int, error) {
	scanned := 0
	for {
		if c.r < c.w {
			if skip := skipEmptyLines(c.rbuf[c.r:c.w]); skip > 0 {
				c.r += skip
				scanned = 0
			}
			if n := headEnd(c.rbuf[c.r:c.w], scanned); n >= 0 {
				if n > c.srv.cfg.MaxHeaderBytes {
					return 0, c.tooLarge()
				}
				return n, nil
			}
			scanned = c.w - c.r
			if scanned >= c.srv.cfg.MaxHeaderBytes {
				return 0, c.tooLarge()
			}
		}
		if err := c.flush(); err != nil {
			return 0, err
		}
		c.releaseWbuf()
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
}

// tooLarge says which limit an over-long head broke: 414 if its request
// line alone does not fit, 431 otherwise.
func (c *conn) tooLarge() *parseError {
	if i := bytes.IndexByte(c.rbuf[c.r:c.w], '\n'); i >= 0 && i < c.srv.cfg.MaxHeaderBytes {
		return errHeadTooLarge
	}
	return errLineTooLong
}

var (
	errHeadTooLarge = &parseError{status: 431, reason: "request head too large"}
	errLineTooLong  = &parseError{status: 414, reason: "request line too long"}
)

// fill reads more of the current head. With nothing buffered the connection
// is idle: it waits up to IdleTimeout (HeaderTimeout on a fresh connection)
// and Shutdown may interrupt it. With part of a head buffered it waits
// until HeaderTimeout after that head's first byte.
func (c *conn) fill() error {
	c.acquireRbuf()
	if c.r == c.w {
		c.r, c.w = 0, 0
	} else if c.r > 0 {
		c.w = copy(c.rbuf, c.rbuf[c.r:c.w])
		c.r = 0
	}
	if c.w == len(c.rbuf) {
		c.rbuf = append(c.rbuf, make([]byte, min(len(c.rbuf), c.srv.cfg.MaxHeaderBytes))...)
	} else if c.w == 0 && len(c.rbuf) > initialReadBuf {
		c.releaseRbuf() // a large head is gone: shrink
		c.acquireRbuf()
	}

	idle := c.w == 0
	if idle && !c.woken {
		// A fresh connection has HeaderTimeout from its accept to send its
		// first head; a kept-alive one has IdleTimeout to begin the next.
		deadline := c.headStart.Add(c.srv.cfg.HeaderTimeout)
		if !c.firstReq {
			deadline = time.Now().Add(c.srv.cfg.IdleTimeout)
		}
		c.nc.SetReadDeadline(deadline)
		// The order matters: the deadline is set before the state says
		// idle, so that Shutdown's interruption cannot be overwritten.
		c.state.Store(stateIdle)
		if c.srv.shutting.Load() {
			// Shutting down: one more request within the grace is
			// answered (with Connection: close); then the connection
			// closes. Never parked: nothing would wake it in time.
			end := c.srv.graceDeadline()
			if !end.After(time.Now()) {
				return net.ErrClosed
			}
			if end.Before(deadline) {
				c.nc.SetReadDeadline(end)
			}
		} else if c.park() {
			return errParked
		}
		// Woken from park, the connection reads under the deadline it
		// parked with (or Shutdown's), still idle.
	} else if !idle {
		c.nc.SetReadDeadline(c.headStart.Add(c.srv.cfg.HeaderTimeout))
	}
	n, err := c.nc.Read(c.rbuf[c.w:])
	c.woken = false
	if idle {
		// A read that returns data is never one that Shutdown cut short,
		// so the request that just began is finished: the next fill (if
		// the head is incomplete) replaces Shutdown's deadline with the
		// header deadline.
		c.state.Store(stateBusy)
		if !c.firstReq {
			c.headStart = time.Now()
		}
	}
	c.w += n
	if err == nil {
		return nil
	}
	if n > 0 && err == io.EOF {
		return nil // the head may still be complete; the next read says EOF again
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && !idle {
		// A slow sender: say so before hanging up (RFC 9110 §15.5.9).
		c.now = time.Now()
		c.req.reset()
		c.writeError(408, true)
		c.logAccess()
		// It may still be sending: half-close and drain, so that the
		// close does not reset the connection before the 408 is read.
		c.closeWrite()
	}
	return err
}

// interruptIfIdle is Shutdown's half of the idle handshake; see fill.
func (c *conn) interruptIfIdle() {
	if c.state.Load() == stateIdle {
		c.nc.SetReadDeadline(c.srv.graceDeadline())
	}
}

// discardBody reads and drops the body of a request that the server served
// without needing it (a GET with a Content-Length), so that the next
// request on the connection is found where it begins. handle has refused
// every body it cannot skip.
func (c *conn) discardBody() error {
	left := max(c.req.contentLength, 0)
	for left > 0 {
		if c.r == c.w {
			if err := c.flush(); err != nil {
				return err
			}
			c.r, c.w = 0, 0
			c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.HeaderTimeout))
			n, err := c.nc.Read(c.rbuf)
			c.w = n
			if n == 0 && err != nil {
				return err
			}
		}
		k := min(left, int64(c.w-c.r))
		c.r += int(k)
		left -= k
	}
	return nil
}

func (c *conn) acquireWbuf() {
	if c.wbuf == nil {
		c.wbufHandle = writeBufs.Get().(*[]byte)
		c.wbuf = (*c.wbufHandle)[:0]
	}
}

func (c *conn) releaseWbuf() {
	if c.wbufHandle != nil {
		*c.wbufHandle = c.wbuf[:0]
		writeBufs.Put(c.wbufHandle)
		c.wbuf, c.wbufHandle = nil, nil
	}
}

// flush writes out the buffered responses.
func (c *conn) flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	c.writes++
	c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	// The deadline's timer would otherwise fire WriteTimeout later on
	// every connection that went idle meanwhile: a wake-up per idle
	// connection per response, for nothing.
	c.nc.SetWriteDeadline(time.Time{})
	return err
}

func (c *conn) close() {
	c.releaseWbuf()
	c.releaseRbuf()
	c.nc.Close()
	c.srv.remove(c)
}

// lingerTime bounds closeWrite's wait for the client to finish.
const lingerTime = 500 * time.Millisecond

// closeWrite ends a connection that the server closes after a response
// while the client may still be sending (pipelined requests, a body the
// server refused). Closing a socket with unread input makes the kernel send
// a reset, which can destroy the final response before the client reads
// it; so the server half-closes, reads and drops input until the client
// closes too or lingerTime passes, and only then lets close finish.
func (c *conn) closeWrite() {
	if err := c.flush(); err != nil {
		return
	}
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	for {
		if _, err := c.nc.Read(c.rbuf); err != nil {
			return
		}
	}
}
