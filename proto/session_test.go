package proto

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestSessionBothWays has each side call the other many times at once,
// with every handler answering; all calls must get their own reply.
func TestSessionBothWays(t *testing.T) {
	ca, cb := socketPair(t)
	echo := func(r *Request) {
		var k Kill
		if err := r.Decode(&k); err != nil {
			r.Error(CodeBadRequest, err.Error())
			return
		}
		r.Reply(MsgOK, &Kill{Name: k.Name + "!"})
	}
	a, b := NewSession(ca, echo), NewSession(cb, echo)
	go a.Run()
	go b.Run()
	var wg sync.WaitGroup
	for i := range 50 {
		for _, s := range []*Session{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out Kill
				name := fmt.Sprint(i)
				if _, err := s.Call(context.Background(), MsgKill, &Kill{Name: name}, &out); err != nil {
					t.Error(err)
					return
				}
				if out.Name != name+"!" {
					t.Errorf("call %s got reply %q", name, out.Name)
				}
			}()
		}
	}
	wg.Wait()
	a.Close()
	<-b.Done()
	if _, err := b.Call(context.Background(), MsgStatus, nil, nil); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("call on a closed session: %v", err)
	}
}

func TestSessionAnswersGarbage(t *testing.T) {
	ca, cb := socketPair(t)
	s := NewSession(cb, func(r *Request) { r.Reply(MsgOK, nil) })
	go s.Run()
	// An envelope of another version gets a version error, by ID.
	e, _ := NewEnvelope(MsgStatus, 9, nil)
	e.Version = 7
	ca.Send(e)
	r, _, err := ca.Receive()
	if err != nil || r.Type != MsgError || r.ID != 9 || !r.Re {
		t.Fatalf("reply to another version: %+v %v", r, err)
	}
	var er ErrorReply
	r.Decode(&er)
	if er.Code != CodeVersion {
		t.Fatalf("code %q", er.Code)
	}
	// The session still serves.
	if _, err := ca.Call(MsgStatus, nil, nil); err != nil {
		t.Fatalf("after a bad frame: %v", err)
	}
}

func TestSessionCallTimeout(t *testing.T) {
	ca, cb := socketPair(t)
	s := NewSession(ca, nil)
	go s.Run()
	go func() { cb.Receive() }() // the peer never answers
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Call(ctx, MsgStatus, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered call: %v", err)
	}
}
