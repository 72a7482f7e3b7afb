package appproc

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
	"saturn/ring"
)

// pair is a channel with the server's end in the test's hands.
type pair struct {
	region *ring.Region
	bells  ring.Bells
	app    *Channel
}

func newPair(t *testing.T) *pair {
	t.Helper()
	g := ring.Geometry{SQEntrySize: proto.SubmissionSize, SQEntries: 8, CQEntrySize: proto.CompletionSize, CQEntries: 8, BufferSize: 256, BufferCount: 4}
	r, err := ring.Create("appproc-test", g)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := ring.NewEventDoorbell()
	bells := ring.Bells{Server: sb}
	end, err := r.App(bells)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{region: r, bells: bells, app: newChannel("disk", r, end)}
	t.Cleanup(func() {
		p.app.close()
		sb.Close()
	})
	return p
}

// server starts a server incarnation on the pair's region.
func (p *pair) server(t *testing.T) *ring.ServerEnd {
	t.Helper()
	srv, err := p.region.Server(p.bells)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// epoch is the server incarnation the app last saw.
func (p *pair) epoch() uint32 {
	p.app.mu.Lock()
	defer p.app.mu.Unlock()
	return p.app.epoch
}

// inflight counts the app's calls in flight.
func (p *pair) inflight() int {
	p.app.mu.Lock()
	defer p.app.mu.Unlock()
	return len(p.app.inflight)
}

// take consumes n entries the way a server does: decode, then release.
func take(t *testing.T, srv *ring.ServerEnd, n int) []proto.Submission {
	t.Helper()
	var subs []proto.Submission
	deadline := time.Now().Add(5 * time.Second)
	for len(subs) < n {
		k, err := srv.Submit.Wait(ring.WaitPolicy{Spin: time.Millisecond}, deadline)
		if err != nil {
			t.Fatalf("waiting for entries: %v", err)
		}
		k = min(k, n-len(subs))
		for i := range k {
			s, err := proto.DecodeSubmission(srv.Submit.Slot(i))
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, s)
		}
		srv.Submit.Release(k)
	}
	return subs
}

// answer completes sub, writing data into its buffer.
func answer(t *testing.T, srv *ring.ServerEnd, sub proto.Submission, data string) {
	t.Helper()
	c := proto.Completion{UserData: sub.UserData, Result: int64(len(data)), Buf: proto.NoBuffer}
	if sub.Buf != proto.NoBuffer {
		b, err := srv.Loans.Take(sub.Buf, sub.Len)
		if err != nil {
			t.Fatal(err)
		}
		copy(b[:cap(b)], data)
		srv.Loans.Return(sub.Buf)
		c.Buf = sub.Buf
	}
	n, _ := srv.Complete.Reserve(1)
	if n != 1 {
		t.Fatal("completion ring full")
	}
	c.Encode(srv.Complete.Slot(0))
	srv.Complete.Publish(1)
}

func TestDoRoundTrip(t *testing.T) {
	p := newPair(t)
	srv := p.server(t)
	out := make([]byte, 100)
	done := make(chan error)
	var resp Response
	go func() {
		var err error
		resp, err = p.app.Do(context.Background(), &Request{Op: proto.OpRead, Handle: 7, Offset: 42, Out: out})
		done <- err
	}()
	sub := take(t, srv, 1)[0]
	if sub.Op != proto.OpRead || sub.Handle != 7 || sub.Offset != 42 || sub.Len != 100 || sub.Buf == proto.NoBuffer {
		t.Fatalf("server got %+v", sub)
	}
	answer(t, srv, sub, "hello")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if resp.Result != 5 || resp.N != 5 || string(out[:5]) != "hello" {
		t.Fatalf("response %+v, out %q", resp, out[:5])
	}
	// An errno comes back as an error errors.Is understands.
	go func() {
		_, err := p.app.Do(context.Background(), &Request{Op: proto.OpStat, Handle: 1})
		done <- err
	}()
	sub = take(t, srv, 1)[0]
	c := proto.Completion{UserData: sub.UserData, Result: proto.ErrResult(syscall.ENOENT), Buf: proto.NoBuffer}
	srv.Complete.Reserve(1)
	c.Encode(srv.Complete.Slot(0))
	srv.Complete.Publish(1)
	if err := <-done; !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("error completion: %v", err)
	}
}

// TestReplayAfterServerRestart kills a server incarnation that has taken
// requests without answering: the replayable ones are served by the next
// incarnation, the others fail with ECONNRESET, and the ones the dead one
// never took are served normally.
func TestReplayAfterServerRestart(t *testing.T) {
	p := newPair(t)
	srv := p.server(t)
	type result struct {
		name string
		out  string
		err  error
	}
	results := make(chan result, 3)
	do := func(name string, replay bool) {
		out := make([]byte, 16)
		r, err := p.app.Do(context.Background(), &Request{Op: proto.OpRead, Args: [3]uint64{uint64(len(name))}, Out: out, Replay: replay})
		results <- result{name, string(out[:r.N]), err}
	}
	go do("replayed", true)
	go do("reset", false)
	taken := take(t, srv, 2) // the first incarnation takes both, then dies
	_ = taken
	// A third request arrives while no server runs.
	go do("queued", true)
	testkit.Eventually(t, 5*time.Second, func() bool { return p.inflight() == 3 }, "the third request submitted")

	srv2 := p.server(t) // the restart: epoch 2, resume after the two taken
	subs := take(t, srv2, 2)
	for _, s := range subs {
		answer(t, srv2, s, "ok")
	}
	got := map[string]result{}
	for range 3 {
		r := <-results
		got[r.name] = r
	}
	if r := got["replayed"]; r.err != nil || r.out != "ok" {
		t.Errorf("replayable request: %+v", r)
	}
	if r := got["queued"]; r.err != nil || r.out != "ok" {
		t.Errorf("request the dead server never took: %+v", r)
	}
	if r := got["reset"]; !errors.Is(r.err, syscall.ECONNRESET) {
		t.Errorf("non-replayable request: %+v, want ECONNRESET", r)
	}
	if p.app.Restarts() != 1 {
		t.Errorf("restarts %d, want 1", p.app.Restarts())
	}
	// Every buffer came back.
	p.app.mu.Lock()
	free := p.app.end.Pool.FreeCount()
	p.app.mu.Unlock()
	if free != 4 {
		t.Errorf("%d of 4 buffers free", free)
	}
}

func TestDoCancelAndClose(t *testing.T) {
	p := newPair(t)
	srv := p.server(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := p.app.Do(ctx, &Request{Op: proto.OpRead, Out: make([]byte, 8)})
		errc <- err
	}()
	sub := take(t, srv, 1)[0]
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Do: %v", err)
	}
	// The server is asked to cancel it; its late answer still returns the
	// buffer.
	cancelSub := take(t, srv, 1)[0]
	if cancelSub.Op != proto.OpCancel || cancelSub.Args[0] != sub.UserData {
		t.Fatalf("expected a cancel of %d, got %+v", sub.UserData, cancelSub)
	}
	answer(t, srv, sub, "late")
	answer(t, srv, cancelSub, "")
	free := 0
	testkit.Until(2*time.Second, func() bool {
		p.app.mu.Lock()
		free = p.app.end.Pool.FreeCount()
		p.app.mu.Unlock()
		return free == 4
	})
	if free != 4 {
		t.Fatalf("%d of 4 buffers free after a cancelled call completed", free)
	}

	// Close fails calls in flight.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := p.app.Do(context.Background(), &Request{Op: proto.OpNop})
		errc <- err
	}()
	take(t, srv, 1)
	p.app.close()
	if err := <-errc; !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("call in flight at close: %v", err)
	}
	wg.Wait()
	if _, err := p.app.Do(context.Background(), &Request{Op: proto.OpNop}); !errors.Is(err, ErrChannelClosed) {
		t.Fatalf("Do after close: %v", err)
	}
}

// TestHostileCompletions: a server that posts what the ABI does not allow
// (a second completion for one call behind a flag that says more follow,
// flags no operation has, a buffer the app never lent it) kills the
// channel with ErrCorruptCompletion: the call in flight fails with it,
// later calls fail, and nothing panics.
func TestHostileCompletions(t *testing.T) {
	for _, tt := range []struct {
		name string
		post func(srv *ring.ServerEnd, sub proto.Submission) []proto.Completion
	}{
		{"more, then another", func(_ *ring.ServerEnd, sub proto.Submission) []proto.Completion {
			return []proto.Completion{
				{UserData: sub.UserData, Buf: proto.NoBuffer, Flags: proto.FlagMore},
				{UserData: sub.UserData, Buf: proto.NoBuffer},
			}
		}},
		{"unknown flags", func(_ *ring.ServerEnd, sub proto.Submission) []proto.Completion {
			return []proto.Completion{{UserData: sub.UserData, Buf: proto.NoBuffer, Flags: 1 << 7}}
		}},
		{"a buffer never lent", func(_ *ring.ServerEnd, sub proto.Submission) []proto.Completion {
			return []proto.Completion{{UserData: sub.UserData, Result: 3, Buf: 2}}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t)
			srv := p.server(t)
			done := make(chan error, 1)
			go func() {
				_, err := p.app.Do(context.Background(), &Request{Op: proto.OpNop})
				done <- err
			}()
			sub := take(t, srv, 1)[0]
			comps := tt.post(srv, sub)
			n, _ := srv.Complete.Reserve(len(comps))
			for i := range n {
				comps[i].Encode(srv.Complete.Slot(i))
			}
			srv.Complete.Publish(n)
			select {
			case err := <-done:
				if !errors.Is(err, ErrCorruptCompletion) {
					t.Fatalf("the call: %v, want ErrCorruptCompletion", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the call never completed")
			}
			if _, err := p.app.Do(context.Background(), &Request{Op: proto.OpNop}); !errors.Is(err, ErrCorruptCompletion) {
				t.Fatalf("a later call: %v, want ErrCorruptCompletion", err)
			}
		})
	}
}
