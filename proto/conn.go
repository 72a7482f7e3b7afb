package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sys/unix"
)

// ControlConn is a control connection over a Unix stream socket: framed envelopes,
// with file descriptors passed as SCM_RIGHTS. Send is safe for concurrent
// use; Receive and Call must be used by one goroutine at a time.
//
// Everything Receive reads is the peer's to choose, so it is checked before
// it is used: a frame's declared length against MaxFrame, its envelope by
// DecodeEnvelope, its descriptor count against [0, MaxFDs] and against the
// descriptors that arrived. A frame that fails a check costs the peer that
// frame (and the descriptors then waiting, which are closed), never the
// process; see Receive for which failures end the connection.
type ControlConn struct {
	uc *net.UnixConn

	wmu sync.Mutex // serialises writes, so frames never interleave

	in     inbox
	raw    []byte // read buffer
	oob    []byte // ancillary data buffer
	nextID atomic.Uint64
}

// readSize is the read buffer's size: what one read takes from the socket.
// A frame longer than this is gathered over several reads.
const readSize = 64 << 10

// NewControlConn wraps a Unix stream connection.
func NewControlConn(uc *net.UnixConn) *ControlConn {
	return &ControlConn{uc: uc, in: inbox{closeFD: closeFD}}
}

func closeFD(fd int) { unix.Close(fd) }

// Dial connects to a control socket.
func Dial(path string) (*ControlConn, error) {
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	return NewControlConn(uc), nil
}

// UnixConn is the underlying socket.
func (c *ControlConn) UnixConn() *net.UnixConn { return c.uc }

// Close closes the socket. A Receive in progress returns an error, and
// closes any received descriptors no frame claimed.
func (c *ControlConn) Close() error { return c.uc.Close() }

// NextID returns a fresh request ID for this connection.
func (c *ControlConn) NextID() uint64 { return c.nextID.Add(1) }

// Send writes one frame, with files passed as SCM_RIGHTS in the same
// sendmsg. e.FDs is set to len(files). The files stay open on this side.
// Send waits for as long as the peer takes to read; a writer that must not
// wait uses a Session, which queues and writes with a deadline.
func (c *ControlConn) Send(e *Envelope, files ...*os.File) error {
	frame, err := buildFrame(e, len(files))
	if err != nil {
		return err
	}
	fds := make([]int, len(files))
	for i, f := range files {
		if fds[i], err = rawFD(f); err != nil {
			return err
		}
	}
	return c.writeFrame(frame, fds, time.Time{})
}

// rawFD is f's descriptor, valid for as long as f stays open. Unlike
// f.Fd it leaves the descriptor's blocking mode alone: O_NONBLOCK belongs
// to the open file description, which other processes share.
func rawFD(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(x uintptr) { fd = int(x) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// dupFDs duplicates files' descriptors (close-on-exec), so that a frame
// queued to be sent later owns what it sends whatever its caller does
// with the files meanwhile. On error nothing stays open.
func dupFDs(files []*os.File) ([]int, error) {
	var out []int
	for _, f := range files {
		fd := -1
		rc, err := f.SyscallConn()
		if err == nil {
			cerr := rc.Control(func(x uintptr) { fd, err = unix.FcntlInt(x, unix.F_DUPFD_CLOEXEC, 0) })
			if err == nil {
				err = cerr
			}
		}
		if err != nil {
			for _, d := range out {
				unix.Close(d)
			}
			return nil, fmt.Errorf("proto: duplicating a descriptor to send: %w", err)
		}
		out = append(out, fd)
	}
	return out, nil
}

// buildFrame encodes e as a frame that carries nfds descriptors, or says
// why the connection cannot carry it.
func buildFrame(e *Envelope, nfds int) ([]byte, error) {
	if nfds > MaxFDs {
		return nil, fmt.Errorf("%w: %d descriptors in one frame, limit %d", ErrTooManyFDs, nfds, MaxFDs)
	}
	e.FDs = nfds
	return AppendFrame(nil, e)
}

// ErrTooManyFDs: a frame would carry more than MaxFDs descriptors, or a
// peer sent more than any frames it sent claimed (which ends the
// connection).
var ErrTooManyFDs = errors.New("proto: too many descriptors")

// writeFrame writes frame, with fds as SCM_RIGHTS on its first bytes, by
// deadline (none if zero). A write cut short by the deadline leaves the
// stream out of step: the caller must then close the connection.
func (c *ControlConn) writeFrame(frame []byte, fds []int, deadline time.Time) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.uc.SetWriteDeadline(deadline); err != nil {
		return err
	}
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
func (c *ControlConn) Reply(req *Envelope, t MsgType, body any, files ...*os.File) error {
	e, err := NewEnvelope(t, req.ID, body)
	if err != nil {
		return err
	}
	e.Re = true
	return c.Send(e, files...)
}

// ReplyError answers req with an ErrorReply.
func (c *ControlConn) ReplyError(req *Envelope, code, msg string) error {
	return c.Send(errorEnvelope(req, code, msg))
}

// errorEnvelope is the ErrorReply to req (which may be nil: a request we
// could not read).
func errorEnvelope(req *Envelope, code, msg string) *Envelope {
	id := uint64(0)
	if req != nil {
		id = req.ID
	}
	b, _ := msgpack.Marshal(&ErrorReply{Code: code, Message: msg}) // two strings: cannot fail
	return &Envelope{Version: ControlVersion, Type: MsgError, ID: id, Re: true, Body: b}
}

// Receive reads the next frame and the descriptors that came with it. A
// frame whose body is malformed or of another version, or whose descriptor
// count is out of range or more than arrived, returns an error but leaves
// the stream in step, so the caller may answer and read on; the envelope
// is returned too when it could be read, so that the answer can echo its
// ID. Descriptors such a frame brought are closed, and so is every
// descriptor then waiting unclaimed when the frame's own could not be told
// apart (a well-behaved peer never sends such a frame; a hostile one
// confuses only itself). An error wrapping ErrFrameTooLarge, or an I/O
// error, means the connection is done; every unclaimed descriptor is
// closed then too.
func (c *ControlConn) Receive() (*Envelope, []*os.File, error) {
	for {
		e, fds, err, ok := c.in.next()
		if ok {
			var files []*os.File
			for _, fd := range fds {
				files = append(files, os.NewFile(uintptr(fd), "received"))
			}
			return e, files, err
		}
		if err := c.fill(); err != nil {
			return nil, nil, err
		}
	}
}

// inbox is the receiving side's state: bytes not yet framed and
// descriptors not yet claimed. It does no I/O, so that it can be fuzzed.
type inbox struct {
	buf     []byte    // received bytes not yet framed
	fds     []int     // received descriptors not yet claimed, in arrival order
	closeFD func(int) // closes a descriptor nobody will claim
}

// next takes the next whole frame from the inbox. ok is false when no whole
// frame is there yet (err is nil then). With ok, the frame's descriptors
// are the caller's when err is nil, and already closed otherwise.
func (in *inbox) next() (e *Envelope, fds []int, err error, ok bool) {
	if len(in.buf) < 4 {
		return nil, nil, nil, false
	}
	n := binary.BigEndian.Uint32(in.buf)
	if n > MaxFrame {
		in.dropFDs() // the stream is over: nobody will claim these
		return nil, nil, fmt.Errorf("%w: declared %d bytes, limit %d", ErrFrameTooLarge, n, MaxFrame), true
	}
	if uint32(len(in.buf)-4) < n {
		return nil, nil, nil, false
	}
	e, err = DecodeEnvelope(in.buf[4 : 4+n])
	in.buf = in.buf[4+n:]
	if len(in.buf) == 0 {
		in.buf = nil // let a large frame's storage go
	}
	if e == nil || e.FDs < 0 || e.FDs > MaxFDs {
		// We cannot tell which of the waiting descriptors, if any, are
		// this frame's.
		in.dropFDs()
		return e, nil, err, true
	}
	if e.FDs > len(in.fds) {
		got := len(in.fds)
		in.dropFDs()
		if err == nil {
			err = fmt.Errorf("%w: frame declares %d descriptors, %d arrived", ErrMalformed, e.FDs, got)
		}
		return e, nil, err, true
	}
	fds = slices.Clone(in.fds[:e.FDs])
	in.fds = in.fds[e.FDs:]
	if len(in.fds) == 0 {
		in.fds = nil
	}
	if err != nil {
		for _, fd := range fds {
			in.closeFD(fd)
		}
		return e, nil, err, true
	}
	return e, fds, nil, true
}

// dropFDs closes every unclaimed descriptor.
func (in *inbox) dropFDs() {
	for _, fd := range in.fds {
		in.closeFD(fd)
	}
	in.fds = nil
}

// want is how many more bytes the frame at the head of the inbox needs
// (0 when its length is not known yet).
func (in *inbox) want() int {
	if len(in.buf) < 4 {
		return 0
	}
	n := binary.BigEndian.Uint32(in.buf)
	if n > MaxFrame || uint32(len(in.buf)-4) >= n {
		return 0
	}
	return int(n) + 4 - len(in.buf)
}

func (c *ControlConn) fill() error {
	if c.raw == nil {
		c.raw = make([]byte, readSize)
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
					c.in.fds = append(c.in.fds, fds...)
				}
			}
		}
		if len(c.in.fds) > 4*MaxFDs { // a peer flooding us with descriptors
			got := len(c.in.fds)
			c.in.dropFDs()
			return fmt.Errorf("%w: %d unclaimed descriptors: the peer floods us", ErrTooManyFDs, got)
		}
	}
	if n > 0 {
		// Grow to the frame's declared length at once (it was checked
		// against MaxFrame) rather than by doubling.
		c.in.buf = slices.Grow(c.in.buf, max(n, c.in.want()))
		c.in.buf = append(c.in.buf, buf[:n]...)
		return nil
	}
	if err == nil {
		err = errors.New("proto: empty read")
	}
	c.in.dropFDs() // the stream is over: nobody will claim these
	return err
}

// Call sends a request and waits for its reply, decoding the reply body
// into reply (which may be nil). An ErrorReply comes back as a
// *ErrorReply error. Descriptors that came with the reply are returned.
func (c *ControlConn) Call(t MsgType, body, reply any, files ...*os.File) ([]*os.File, error) {
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
