package appproc

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
	"saturn/ring"
)

// TestResumeReplay: a server that says its work survives it
// (ring.CapResume) dies with a Resume request taken; the supervisor ends
// the incarnation (CapDown). The request is replayed, not failed, in the
// order it was first submitted, with its buffer as it was, and served by
// the next incarnation.
func TestResumeReplay(t *testing.T) {
	p := newPair(t)
	srv := p.server(t)
	p.region.SetServerCaps(ring.CapResume)
	type result struct {
		resp Response
		err  error
	}
	results := make(chan result, 2)
	in1, in2 := []byte("first"), []byte("second")
	do := func(in []byte, off uint64) {
		r, err := p.app.Do(context.Background(), &Request{Op: proto.OpSend, Flags: proto.FlagStream, Offset: off, In: in, Resume: true})
		results <- result{r, err}
	}
	go do(in1, 0)
	take(t, srv, 1)
	go do(in2, 5)
	take(t, srv, 1)
	epoch := p.epoch()
	if err := p.region.EndIncarnation(); err != nil {
		t.Fatal(err)
	}
	// Once the app has seen the incarnation end, it has decided the fate of
	// every request the dead one took, under the same lock.
	testkit.Eventually(t, 5*time.Second, func() bool { return p.epoch() != epoch }, "the app to see the incarnation end")
	select {
	case r := <-results:
		t.Fatalf("a Resume request ended while the server was down: %+v", r)
	default:
	}
	srv2 := p.server(t)
	subs := take(t, srv2, 2)
	for i, want := range []struct {
		off  uint64
		data string
	}{{0, "first"}, {5, "second"}} {
		s := subs[i]
		b, err := srv2.Loans.Take(s.Buf, s.Len)
		if err != nil {
			t.Fatal(err)
		}
		if s.Offset != want.off || string(b) != want.data {
			t.Errorf("replay %d: offset %d, %q; want %d, %q", i, s.Offset, b, want.off, want.data)
		}
		srv2.Loans.Return(s.Buf)
		c := proto.Completion{UserData: s.UserData, Result: int64(len(b)), Buf: s.Buf}
		srv2.Complete.Reserve(1)
		c.Encode(srv2.Complete.Slot(0))
		srv2.Complete.Publish(1)
	}
	for range 2 {
		if r := <-results; r.err != nil {
			t.Errorf("replayed send: %v", r.err)
		}
	}
}

// TestResumeWait: a Resume request replayed to a server that does not come
// back within ResumeWait fails with ECONNRESET; a server that does not
// resume fails it at once.
func TestResumeWait(t *testing.T) {
	defer func(d time.Duration) { ResumeWait = d }(ResumeWait)
	ResumeWait = 50 * time.Millisecond
	for _, resumes := range []bool{true, false} {
		p := newPair(t)
		srv := p.server(t)
		if resumes {
			p.region.SetServerCaps(ring.CapResume)
		}
		done := make(chan error, 1)
		go func() {
			_, err := p.app.Do(context.Background(), &Request{Op: proto.OpRecv, Flags: proto.FlagStream, Room: 16, Resume: true})
			done <- err
		}()
		take(t, srv, 1)
		start := time.Now()
		p.region.EndIncarnation()
		select {
		case err := <-done:
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("resumes=%v: %v, want ECONNRESET", resumes, err)
			}
			if d := time.Since(start); resumes && d < ResumeWait {
				t.Errorf("failed after %v, before ResumeWait", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("resumes=%v: the request still waits", resumes)
		}
	}
}
