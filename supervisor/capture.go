package supervisor

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"saturn/proto"
)

// Packet capture (`saturn capture`): the CLI asks with the file to write
// attached; the supervisor passes the request and the descriptor on to
// netproc over its link and relays netproc's answer when the capture ends.
// A capture ends when netproc has recorded the packets asked for, when the
// CLI asks (CaptureStop), or when the CLI's session ends (the CLI was
// interrupted or killed): then the supervisor tells netproc to stop.

// capture is one capture in flight.
type capture struct {
	id   uint64
	stop chan struct{} // closed to stop it
}

// captureStopWait bounds the wait for netproc's answer after a stop.
const captureStopWait = 10 * time.Second

// handleCapture starts a capture for the CLI session sess. It runs on the
// session's reader.
func (s *Supervisor) handleCapture(sess *proto.Session, r *proto.Request) {
	var m proto.Capture
	if err := r.Decode(&m); err != nil || len(r.Files) != 1 || m.Count < 0 {
		closeFiles(r.Files)
		r.Error(proto.CodeBadRequest, "capture: want a packet count of 0 or more and one descriptor, the file to write")
		return
	}
	f := r.Files[0]
	s.do(func() {
		srv := s.find("netproc")
		if srv == nil || srv.link == nil || !srv.ready || !srv.alive() {
			f.Close()
			r.Error(proto.CodeFailed, "netproc is not running")
			return
		}
		if s.captures == nil {
			s.captures = map[*proto.Session][]*capture{}
		}
		s.nextCapID++
		c := &capture{id: s.nextCapID, stop: make(chan struct{})}
		s.captures[sess] = append(s.captures[sess], c)
		go s.runCapture(sess, r, srv.link, c, m.Count, f)
	})
}

// runCapture waits for netproc's answer, stopping the capture if the CLI
// asks or goes away, and relays it.
func (s *Supervisor) runCapture(sess *proto.Session, r *proto.Request, link *proto.Session, c *capture, count int, f *os.File) {
	defer s.do(func() {
		cs := slices.DeleteFunc(s.captures[sess], func(x *capture) bool { return x == c })
		if len(cs) == 0 {
			delete(s.captures, sess)
		} else {
			s.captures[sess] = cs
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		rep proto.CaptureReply
		err error
	}
	res := make(chan result, 1)
	go func() {
		var rep proto.CaptureReply
		_, err := link.Call(ctx, proto.MsgCapture, &proto.Capture{ID: c.id, Count: count}, &rep, f)
		f.Close() // netproc has its own copy once the request went out
		res <- result{rep, err}
	}()
	var out result
	got := false
	select {
	case out = <-res:
		got = true
	case <-c.stop:
	case <-sess.Done():
	}
	if !got {
		link.Notify(proto.MsgCaptureStop, &proto.CaptureStop{ID: c.id})
		select {
		case out = <-res:
		case <-time.After(captureStopWait):
			cancel()
			out = <-res
		}
	}
	if out.err != nil {
		if er, ok := out.err.(*proto.ErrorReply); ok {
			r.Error(er.Code, er.Message)
		} else {
			r.Error(proto.CodeFailed, fmt.Sprintf("capture: netproc: %v", out.err))
		}
		return
	}
	r.Reply(proto.MsgCaptureReply, &out.rep)
}

// stopCaptures stops the captures of CLI session sess. Loop only.
func (s *Supervisor) stopCaptures(sess *proto.Session, r *proto.Request) {
	var m proto.CaptureStop
	if !decode(r, &m) {
		return
	}
	for _, c := range s.captures[sess] {
		if m.ID == 0 || m.ID == c.id {
			select {
			case <-c.stop:
			default:
				close(c.stop)
			}
		}
	}
	r.Reply(proto.MsgOK, nil)
}
