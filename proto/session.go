package proto

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
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
type Session struct {
	conn    *Conn
	handler func(*Request)

	mu      sync.Mutex // guards pending and err
	pending map[uint64]chan reply
	err     error // why Run stopped; set once
	done    chan struct{}
}

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

// Reply answers the request.
func (r *Request) Reply(t MsgType, body any, files ...*os.File) error {
	return r.s.conn.Reply(r.Envelope, t, body, files...)
}

// Error answers the request with an ErrorReply.
func (r *Request) Error(code, msg string) error {
	return r.s.conn.ReplyError(r.Envelope, code, msg)
}

// Session is the session the request arrived on.
func (r *Request) Session() *Session { return r.s }

// NewSession wraps c. handler may be nil for a session that only calls.
func NewSession(c *Conn, handler func(*Request)) *Session {
	return &Session{conn: c, handler: handler, pending: map[uint64]chan reply{}, done: make(chan struct{})}
}

// Conn is the underlying connection.
func (s *Session) Conn() *Conn { return s.conn }

// Done is closed when Run has returned.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why Run returned, once Done is closed.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ErrSessionClosed: the session ended before a reply came.
var ErrSessionClosed = errors.New("proto: control session closed")

// Run reads until the connection fails, answering malformed requests with
// an ErrorReply and dispatching the rest. It returns why it stopped (io.EOF
// when the peer hung up cleanly), closes the connection, and fails every
// Call still waiting.
func (s *Session) Run() error {
	err := s.run()
	s.conn.Close()
	s.mu.Lock()
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

func (s *Session) run() error {
	for {
		e, files, err := s.conn.Receive()
		if err != nil {
			if e != nil && !e.Re && (errors.Is(err, ErrMalformed) || errors.Is(err, ErrCtlVersion)) {
				code := CodeBadRequest
				if errors.Is(err, ErrCtlVersion) {
					code = CodeVersion
				}
				if rerr := s.conn.ReplyError(e, code, err.Error()); rerr != nil {
					return rerr
				}
				continue
			}
			if errors.Is(err, ErrMalformed) && e == nil {
				// Undecodable bytes inside a well-formed frame: the stream is
				// still in step, but we cannot tell which request it was.
				if rerr := s.conn.ReplyError(nil, CodeBadRequest, err.Error()); rerr != nil {
					return rerr
				}
				continue
			}
			if errors.Is(err, ErrFrameTooLarge) {
				s.conn.ReplyError(nil, CodeBadRequest, err.Error())
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
	if err := s.conn.Send(e, files...); err != nil {
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
	return s.conn.Send(e, files...)
}

// Close closes the connection; Run returns soon after.
func (s *Session) Close() error { return s.conn.Close() }
