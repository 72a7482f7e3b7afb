package proto

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Session runs a control connection in both directions: requests from the
// peer go to a handler, and Call sends requests of our own and waits for
// their replies, matched by ID, while the peer's requests keep flowing. The
// supervisor holds one Session per component and per CLI connection; a
// component holds one to the supervisor.
//
// Run is the only reader. It calls the handler synchronously, in arrival
// order, so a handler must not wait for anything that needs this session's
// reads (such as a reply to its own Call); hand such work to another
// goroutine and Reply from there.
//
// Nothing that sends on a Session waits for the peer. Reply, Error, Call and
// Notify queue their frame and return; one writer goroutine (started by
// Run) writes the queue out, each frame by a deadline (WriteTimeout). So a
// peer that does not read its replies can hold up no goroutine but that
// writer, not even the supervisor's loop, which replies from within. The
// queue is bounded (maxQueuedFrames, maxQueuedBytes, maxQueuedFDs; a frame
// always fits in an empty queue): a send that would pass the bound, or a
// write that misses its deadline, ends the session with
// ErrPeerNotReading. Descriptors sent are duplicated when queued, so the
// caller may close its files as soon as the call returns.
type Session struct {
	conn    *ControlConn
	handler func(*Request)
	timeout time.Duration // for each frame's write

	mu       sync.Mutex // guards everything below
	pending  map[uint64]chan reply
	err      error // why Run stopped; set once
	cause    error // why the session was ended, first reason wins
	ended    bool  // no more frames are queued; the writer drops what is left
	out      []outFrame
	outBytes int
	outFDs   int
	wake     chan struct{} // capacity 1: the writer has work, or must stop
	done     chan struct{}
}

// outFrame is a frame waiting for the writer. It owns fds.
type outFrame struct {
	frame []byte
	fds   []int
	sent  chan struct{} // closed once written or dropped; may be nil
}

func (f *outFrame) release() {
	for _, fd := range f.fds {
		unix.Close(fd)
	}
	f.fds = nil
	if f.sent != nil {
		close(f.sent)
	}
}

// Bounds on what one session may have queued for its peer. A peer that
// reads keeps the queue near empty: the supervisor answers a CLI's one
// request with one reply, and tells a server of a gone channel in tens of
// bytes. 4096 such notices, and any one frame however large, fit.
const (
	maxQueuedFrames = 4096
	maxQueuedBytes  = MaxFrame
	maxQueuedFDs    = 4 * MaxFDs
)

// DefaultWriteTimeout is how long one frame's write may wait for the peer
// to read before the peer is taken as not reading.
const DefaultWriteTimeout = 10 * time.Second

// ErrPeerNotReading: the peer let its replies pile up, and the session
// was ended.
var ErrPeerNotReading = errors.New("proto: the peer does not read what is sent to it")

type reply struct {
	env   *Envelope
	files []*os.File
}

// Request is a request received from the peer.
type Request struct {
	*Envelope
	Files []*os.File // descriptors that came with it; the handler owns them
	s     *Session
}

// Reply answers the request. When the reply cannot be sent as it is (it
// does not encode, or would carry more than MaxFDs descriptors or more
// than MaxFrame bytes), the peer gets an ErrorReply saying so instead of
// waiting for ever, and the error is returned.
func (r *Request) Reply(t MsgType, body any, files ...*os.File) error {
	e, err := NewEnvelope(t, r.ID, body)
	if err == nil {
		e.Re = true
		err = r.s.send(e, files)
	}
	if err != nil && !errors.Is(err, ErrSessionClosed) && !errors.Is(err, ErrPeerNotReading) {
		r.s.send(errorEnvelope(r.Envelope, CodeFailed, fmt.Sprintf("%s: the reply could not be sent: %v", r.Type, err)), nil)
	}
	return err
}

// Error answers the request with an ErrorReply.
func (r *Request) Error(code, msg string) error {
	return r.s.send(errorEnvelope(r.Envelope, code, msg), nil)
}

// Session is the session the request arrived on.
func (r *Request) Session() *Session { return r.s }

// NewSession wraps c. handler may be nil for a session that only calls.
func NewSession(c *ControlConn, handler func(*Request)) *Session {
	return &Session{
		conn: c, handler: handler, timeout: DefaultWriteTimeout,
		pending: map[uint64]chan reply{}, wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// SetWriteTimeout sets how long one frame's write may wait for the peer
// (DefaultWriteTimeout unless set). Call it before Run.
func (s *Session) SetWriteTimeout(d time.Duration) { s.timeout = d }

// Conn is the underlying connection. Writing on it directly bypasses the
// session's queue and its deadlines.
func (s *Session) Conn() *ControlConn { return s.conn }

// Done is closed when Run has returned.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why Run returned, once Done is closed.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ErrSessionClosed: the session ended before a reply came, or before a
// frame could be queued.
var ErrSessionClosed = errors.New("proto: control session closed")

// Run reads until the connection fails, answering malformed requests with
// an ErrorReply and dispatching the rest, while its writer sends what is
// queued. It returns why it stopped (io.EOF when the peer hung up cleanly;
// an error wrapping ErrPeerNotReading when the peer would not read), closes
// the connection, drops what was still queued, and fails every Call still
// waiting.
func (s *Session) Run() error {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop()
	}()
	s.end(s.run())
	<-writerDone
	s.mu.Lock()
	err := s.cause
	s.err = err
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, ch := range pending {
		close(ch)
	}
	close(s.done)
	return err
}

// end ends the session for cause (the first cause given wins; nil gives
// none): nothing more is queued, the writer drops what is left, and the
// connection closes, which ends Run's reads.
func (s *Session) end(cause error) {
	s.mu.Lock()
	if s.cause == nil {
		s.cause = cause
	}
	s.ended = true
	s.mu.Unlock()
	s.poke()
	s.conn.Close()
}

func (s *Session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// send queues e, with duplicates of files, for the writer.
func (s *Session) send(e *Envelope, files []*os.File) error {
	frame, err := buildFrame(e, len(files))
	if err != nil {
		return err
	}
	fds, err := dupFDs(files)
	if err != nil {
		return err
	}
	return s.queue(outFrame{frame: frame, fds: fds})
}

// queue hands f to the writer, or ends the session if the peer has let
// too much pile up. f is released on failure.
func (s *Session) queue(f outFrame) error {
	s.mu.Lock()
	if s.ended {
		cause := s.cause
		s.mu.Unlock()
		f.release()
		return fmt.Errorf("%w: %v", ErrSessionClosed, cause)
	}
	if len(s.out) > 0 && (len(s.out)+1 > maxQueuedFrames || s.outBytes+len(f.frame) > maxQueuedBytes || s.outFDs+len(f.fds) > maxQueuedFDs) {
		n, bytes := len(s.out), s.outBytes
		s.mu.Unlock()
		f.release()
		err := fmt.Errorf("%w: %d frames (%d bytes) wait to be read", ErrPeerNotReading, n, bytes)
		s.end(err)
		return err
	}
	s.out = append(s.out, f)
	s.outBytes += len(f.frame)
	s.outFDs += len(f.fds)
	s.mu.Unlock()
	s.poke()
	return nil
}

// writeLoop writes queued frames until the session ends, each by its
// deadline, then drops what is left.
func (s *Session) writeLoop() {
	for {
		s.mu.Lock()
		for len(s.out) == 0 && !s.ended {
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		if s.ended {
			left := s.out
			s.out, s.outBytes, s.outFDs = nil, 0, 0
			s.mu.Unlock()
			for i := range left {
				left[i].release()
			}
			return
		}
		f := s.out[0]
		s.out[0] = outFrame{}
		s.out = s.out[1:]
		s.outBytes -= len(f.frame)
		s.outFDs -= len(f.fds)
		s.mu.Unlock()
		err := s.conn.writeFrame(f.frame, f.fds, time.Now().Add(s.timeout))
		f.release()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w: a frame's write waited %s", ErrPeerNotReading, s.timeout)
		}
		if err != nil {
			s.end(err)
		}
	}
}

// flush waits until everything queued so far is written (or dropped), or
// d passes.
func (s *Session) flush(d time.Duration) {
	sent := make(chan struct{})
	if s.queue(outFrame{sent: sent}) != nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-sent:
	case <-t.C:
	}
}

func (s *Session) run() error {
	for {
		e, files, err := s.conn.Receive()
		if err != nil {
			if e != nil && !e.Re && (errors.Is(err, ErrMalformed) || errors.Is(err, ErrCtlVersion)) {
				code := CodeBadRequest
				if errors.Is(err, ErrCtlVersion) {
					code = CodeVersion
				}
				if rerr := s.send(errorEnvelope(e, code, err.Error()), nil); rerr != nil {
					return rerr
				}
				continue
			}
			if errors.Is(err, ErrMalformed) && e == nil {
				// Undecodable bytes inside a well-formed frame: the stream is
				// still in step, but we cannot tell which request it was.
				if rerr := s.send(errorEnvelope(nil, CodeBadRequest, err.Error()), nil); rerr != nil {
					return rerr
				}
				continue
			}
			if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrTooManyFDs) {
				// The stream is lost; say why before hanging up.
				if s.send(errorEnvelope(nil, CodeBadRequest, err.Error()), nil) == nil {
					s.flush(time.Second)
				}
			}
			return err
		}
		if e.Re {
			s.mu.Lock()
			ch, ok := s.pending[e.ID]
			delete(s.pending, e.ID)
			s.mu.Unlock()
			if !ok {
				closeAll(files) // a reply nobody waits for any more
				continue
			}
			ch <- reply{e, files}
			continue
		}
		req := &Request{Envelope: e, Files: files, s: s}
		if s.handler == nil {
			closeAll(files)
			req.Error(CodeBadRequest, fmt.Sprintf("%s: this peer takes no requests", e.Type))
			continue
		}
		s.handler(req)
	}
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// Call sends a request and waits for its reply (or ctx, or the session's
// end). The reply body is decoded into out when out is not nil; an
// ErrorReply comes back as a *ErrorReply error. Descriptors that came with
// the reply are the caller's.
func (s *Session) Call(ctx context.Context, t MsgType, body, out any, files ...*os.File) ([]*os.File, error) {
	e, err := NewEnvelope(t, s.conn.NextID(), body)
	if err != nil {
		return nil, err
	}
	ch := make(chan reply, 1)
	s.mu.Lock()
	if s.pending == nil {
		err := s.err
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %v", ErrSessionClosed, err)
	}
	s.pending[e.ID] = ch
	s.mu.Unlock()
	if err := s.send(e, files); err != nil {
		s.forget(e.ID)
		return nil, err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%w: %v", ErrSessionClosed, s.Err())
		}
		if r.env.Type == MsgError {
			closeAll(r.files)
			var er ErrorReply
			if err := r.env.Decode(&er); err != nil {
				return nil, err
			}
			return nil, &er
		}
		if out != nil {
			if err := r.env.Decode(out); err != nil {
				closeAll(r.files)
				return nil, err
			}
		}
		return r.files, nil
	case <-ctx.Done():
		s.forget(e.ID)
		return nil, ctx.Err()
	}
}

func (s *Session) forget(id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending != nil {
		delete(s.pending, id)
	}
}

// Notify sends a request without waiting for its reply; the reply, when it
// comes, is dropped.
func (s *Session) Notify(t MsgType, body any, files ...*os.File) error {
	e, err := NewEnvelope(t, s.conn.NextID(), body)
	if err != nil {
		return err
	}
	return s.send(e, files)
}

// Close ends the session: what is still queued is dropped, the connection
// closes, and Run returns soon after.
func (s *Session) Close() error {
	s.end(nil)
	return nil
}
