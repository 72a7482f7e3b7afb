package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Conn is a control connection over a Unix stream socket: framed envelopes,
// with file descriptors passed as SCM_RIGHTS. Send is safe for concurrent
// use; Receive and Call must be used by one goroutine at a time.
type Conn struct {
	uc *net.UnixConn

	wmu sync.Mutex // serialises Send, so frames never interleave

	rbuf   []byte // received bytes not yet framed
	fds    []int  // received descriptors not yet claimed by a frame
	raw    []byte // read buffer
	oob    []byte // ancillary data buffer
	nextID atomic.Uint64
}

// NewConn wraps a Unix stream connection.
func NewConn(uc *net.UnixConn) *Conn { return &Conn{uc: uc} }

// Dial connects to a control socket.
func Dial(path string) (*Conn, error) {
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	return NewConn(uc), nil
}

// UnixConn is the underlying socket.
func (c *Conn) UnixConn() *net.UnixConn { return c.uc }

// Close closes the socket. A Receive in progress returns an error, and
// closes any received descriptors no frame claimed.
func (c *Conn) Close() error { return c.uc.Close() }

// NextID returns a fresh request ID for this connection.
func (c *Conn) NextID() uint64 { return c.nextID.Add(1) }

// Send writes one frame, with files passed as SCM_RIGHTS in the same
// sendmsg. e.FDs is set to len(files). The files stay open on this side.
func (c *Conn) Send(e *Envelope, files ...*os.File) error {
	if len(files) > MaxFDs {
		return fmt.Errorf("proto: %d descriptors in one frame, limit %d", len(files), MaxFDs)
	}
	e.FDs = len(files)
	frame, err := AppendFrame(nil, e)
	if err != nil {
		return err
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for len(frame) > 0 {
		n, _, err := c.uc.WriteMsgUnix(frame, oob, nil)
		if err != nil {
			return err
		}
		frame, oob = frame[n:], nil // descriptors go with the first bytes only
	}
	return nil
}

// Reply sends a reply of type t with body to the request req.
func (c *Conn) Reply(req *Envelope, t MsgType, body any, files ...*os.File) error {
	e, err := NewEnvelope(t, req.ID, body)
	if err != nil {
		return err
	}
	e.Re = true
	return c.Send(e, files...)
}

// ReplyError answers req with an ErrorReply.
func (c *Conn) ReplyError(req *Envelope, code, msg string) error {
	id := uint64(0)
	if req != nil {
		id = req.ID
	}
	e, err := NewEnvelope(MsgError, id, &ErrorReply{Code: code, Message: msg})
	if err != nil {
		return err
	}
	e.Re = true
	return c.Send(e)
}

// Receive reads the next frame and the descriptors that came with it. A
// frame whose body is malformed or of another version returns an error but
// leaves the stream in step, so the caller may answer and read on; an error
// wrapping ErrFrameTooLarge, or an I/O error, means the connection is done.
// Descriptors a malformed frame claimed are closed.
func (c *Conn) Receive() (*Envelope, []*os.File, error) {
	for {
		if len(c.rbuf) >= 4 {
			n := binary.BigEndian.Uint32(c.rbuf)
			if n > MaxFrame {
				return nil, nil, fmt.Errorf("%w: declared %d bytes, limit %d", ErrFrameTooLarge, n, MaxFrame)
			}
			if uint32(len(c.rbuf)-4) >= n {
				body := c.rbuf[4 : 4+n]
				e, err := DecodeEnvelope(body)
				c.rbuf = c.rbuf[4+n:]
				if len(c.rbuf) == 0 {
					c.rbuf = nil // let a large frame's storage go
				}
				if e == nil {
					return nil, nil, err
				}
				files, ferr := c.claim(e.FDs)
				if err == nil {
					err = ferr
				}
				if err != nil {
					for _, f := range files {
						f.Close()
					}
					return e, nil, err
				}
				return e, files, nil
			}
		}
		if err := c.fill(); err != nil {
			return nil, nil, err
		}
	}
}

func (c *Conn) claim(n int) ([]*os.File, error) {
	if n == 0 {
		return nil, nil
	}
	if n > len(c.fds) {
		got := c.fds
		c.fds = nil
		files := make([]*os.File, len(got))
		for i, fd := range got {
			files[i] = os.NewFile(uintptr(fd), "received")
		}
		return files, fmt.Errorf("%w: frame declares %d descriptors, %d arrived", ErrMalformed, n, len(got))
	}
	files := make([]*os.File, n)
	for i, fd := range c.fds[:n] {
		files[i] = os.NewFile(uintptr(fd), "received")
	}
	c.fds = c.fds[n:]
	return files, nil
}

func (c *Conn) fill() error {
	if c.raw == nil {
		c.raw = make([]byte, 64<<10)
		c.oob = make([]byte, unix.CmsgSpace(MaxFDs*4))
	}
	buf, oob := c.raw, c.oob
	n, oobn, _, _, err := c.uc.ReadMsgUnix(buf, oob)
	if oobn > 0 {
		// Go sets MSG_CMSG_CLOEXEC on Linux, so these are close-on-exec.
		msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
		if perr == nil {
			for _, m := range msgs {
				fds, err := unix.ParseUnixRights(&m)
				if err == nil {
					c.fds = append(c.fds, fds...)
				}
			}
		}
		if len(c.fds) > 4*MaxFDs { // a peer flooding us with descriptors
			return fmt.Errorf("%w: %d unclaimed descriptors", ErrMalformed, len(c.fds))
		}
	}
	if n > 0 {
		c.rbuf = append(c.rbuf, buf[:n]...)
		return nil
	}
	if err == nil {
		err = errors.New("proto: empty read")
	}
	for _, fd := range c.fds { // the stream is over: nobody will claim these
		unix.Close(fd)
	}
	c.fds = nil
	return err
}

// Call sends a request and waits for its reply, decoding the reply body
// into reply (which may be nil). An ErrorReply comes back as a
// *ErrorReply error. Descriptors that came with the reply are returned.
func (c *Conn) Call(t MsgType, body, reply any, files ...*os.File) ([]*os.File, error) {
	e, err := NewEnvelope(t, c.NextID(), body)
	if err != nil {
		return nil, err
	}
	if err := c.Send(e, files...); err != nil {
		return nil, err
	}
	for {
		r, rfiles, err := c.Receive()
		if err != nil {
			return nil, err
		}
		if !r.Re || r.ID != e.ID {
			for _, f := range rfiles {
				f.Close()
			}
			continue // a notice, or a late reply to an abandoned request
		}
		if r.Type == MsgError {
			var er ErrorReply
			if err := r.Decode(&er); err != nil {
				return nil, err
			}
			return nil, &er
		}
		if reply != nil {
			if err := r.Decode(reply); err != nil {
				return nil, err
			}
		}
		return rfiles, nil
	}
}
