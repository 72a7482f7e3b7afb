package proto

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// A peer that sends requests and never reads the replies. Replying must
// never wait on it: the replies queue, and once too many wait, or one
// waits past the write deadline, the session ends with ErrPeerNotReading.

func TestSessionDropsPeerThatDoesNotRead(t *testing.T) {
	ca, cb := socketPair(t)
	slowest := make(chan time.Duration, 1)
	var worst time.Duration // the handler's, read once Run has returned
	s := NewSession(cb, func(r *Request) {
		start := time.Now()
		r.Reply(MsgStatusReply, &StatusReply{Instance: strings.Repeat("x", 400)})
		if d := time.Since(start); d > worst {
			worst = d
		}
	})
	done := make(chan error, 1)
	go func() {
		err := s.Run()
		slowest <- worst
		done <- err
	}()
	// Flood requests, reading nothing, until the session gives up on us.
	go func() {
		e, _ := NewEnvelope(MsgStatus, 1, &Status{})
		frame, _ := AppendFrame(nil, e)
		for {
			if _, err := ca.UnixConn().Write(frame); err != nil {
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrPeerNotReading) {
			t.Fatalf("session ended with %v, want ErrPeerNotReading", err)
		}
		w := <-slowest
		t.Logf("ended: %v; the slowest reply took %v", err, w)
		if w > time.Second {
			t.Errorf("a reply waited %v for the peer", w)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a peer that never reads was not dropped within 20 s")
	}
}

func TestSessionWriteDeadline(t *testing.T) {
	ca, cb := socketPair(t)
	s := NewSession(cb, func(r *Request) {
		// One reply larger than the socket buffers: its write waits on
		// the peer, who never reads.
		r.Reply(MsgErrorLike, &ErrorReply{Message: strings.Repeat("x", MaxFrame-100)})
	})
	s.SetWriteTimeout(100 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- s.Run() }()
	e, _ := NewEnvelope(MsgStatus, 1, nil)
	if err := ca.Send(e); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrPeerNotReading) {
			t.Fatalf("session ended with %v, want ErrPeerNotReading", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a reply's write outlived its deadline by 10 s")
	}
}

// MsgErrorLike is a reply type of the tests' own.
const MsgErrorLike MsgType = "test-big"

// TestReplyThatCannotBeSent: a reply with more descriptors than a frame
// carries, or more bytes, reaches the caller as an error, not as silence.
func TestReplyThatCannotBeSent(t *testing.T) {
	ca, cb := socketPair(t)
	_, w := pipe(t)
	replyErr := make(chan error, 2)
	s := NewSession(cb, func(req *Request) {
		switch req.Type {
		case MsgAttach:
			files := make([]*os.File, MaxFDs+1)
			for i := range files {
				files[i] = w
			}
			replyErr <- req.Reply(MsgAttachReply, &AttachReply{}, files...)
		default:
			replyErr <- req.Reply(MsgStatusReply, &ErrorReply{Message: strings.Repeat("x", MaxFrame)})
		}
	})
	go s.Run()
	caller := NewSession(ca, nil)
	go caller.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, typ := range []MsgType{MsgAttach, MsgStatus} {
		_, err := caller.Call(ctx, typ, nil, nil)
		var er *ErrorReply
		if !errors.As(err, &er) || !strings.Contains(er.Message, "could not be sent") {
			t.Errorf("%s: the caller got %v, want an ErrorReply", typ, err)
		}
		if err := <-replyErr; err == nil {
			t.Errorf("%s: Reply said nothing of its failure", typ)
		}
	}
}

// TestSessionOwnsWhatItSends: a reply's descriptors are the session's
// once Reply returns, so the caller may close its files at once (as the
// supervisor does) and the peer still gets them.
func TestSessionOwnsWhatItSends(t *testing.T) {
	ca, cb := socketPair(t)
	s := NewSession(cb, func(req *Request) {
		r, w, err := os.Pipe()
		if err != nil {
			req.Error(CodeFailed, err.Error())
			return
		}
		w.WriteString("kept open by the queue")
		w.Close()
		req.Reply(MsgOK, nil, r)
		r.Close()
	})
	go s.Run()
	files, err := ca.Call(MsgStatus, nil, nil)
	if err != nil || len(files) != 1 {
		t.Fatalf("call: %d files, %v", len(files), err)
	}
	defer files[0].Close()
	got, _ := io.ReadAll(files[0])
	if string(got) != "kept open by the queue" {
		t.Fatalf("read %q", got)
	}
}

// TestSessionCloseDropsQueue: closing a session whose peer does not read
// releases what was queued (its duplicated descriptors too).
func TestSessionCloseDropsQueue(t *testing.T) {
	ca, cb := socketPair(t)
	_ = ca
	_, w := pipe(t)
	before := openFDs(t)
	s := NewSession(cb, nil)
	for range 50 {
		if err := s.Notify(MsgChannel, &Channel{}, w, w); err != nil {
			t.Fatal(err)
		}
	}
	if n := openFDs(t); n != before+100 {
		t.Fatalf("%d descriptors queued, want 100", n-before)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run() }()
	s.Close()
	<-done
	if after := openFDs(t); after > before {
		t.Fatalf("%d descriptors still open after the session closed", after-before)
	}
	if err := s.Notify(MsgDrop, &Drop{}); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("notify on a closed session: %v", err)
	}
}
