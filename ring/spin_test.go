package ring

import (
	"testing"
	"time"
)

// TestAdaptiveSpin follows the budget through misses down to the floor and
// through hits back up to the cap.
func TestAdaptiveSpin(t *testing.T) {
	a := &AdaptiveSpin{Max: 40 * time.Microsecond}
	steps := []struct {
		paid bool
		want time.Duration
	}{
		{false, 20 * time.Microsecond},
		{false, 10 * time.Microsecond},
		{false, 5 * time.Microsecond},
		{false, 2500 * time.Nanosecond},
		{false, MinSpin}, // the floor: it keeps probing
		{false, MinSpin},
		{true, 2 * MinSpin},
		{true, 4 * MinSpin},
		{true, 8 * MinSpin},
		{true, 16 * MinSpin},
		{true, 40 * time.Microsecond}, // the cap
		{true, 40 * time.Microsecond},
	}
	if got := a.Budget(); got != a.Max {
		t.Fatalf("first budget %v, want Max %v", got, a.Max)
	}
	for i, s := range steps {
		if s.paid {
			a.Paid()
		} else {
			a.Slept()
		}
		if got := a.Budget(); got != s.want {
			t.Fatalf("step %d (paid %v): budget %v, want %v", i, s.paid, got, s.want)
		}
	}
	if h, m := a.Hits.Load(), a.Misses.Load(); h != 6 || m != 6 {
		t.Fatalf("hits %d, misses %d, want 6 and 6", h, m)
	}
	if b := (&AdaptiveSpin{}).Budget(); b != DefaultSpin {
		t.Fatalf("zero AdaptiveSpin's budget %v, want DefaultSpin", b)
	}
}

// TestWaitAdapts checks that Wait spins for the budget of WaitPolicy.Adapt
// and tells it how the spin ended.
func TestWaitAdapts(t *testing.T) {
	r := newRegion(t, testGeometry)
	app, _ := r.App(Bells{})
	srv, _ := r.Server(Bells{})

	// Nothing comes: the spin ends in a sleep, until the deadline.
	a := &AdaptiveSpin{Max: time.Millisecond}
	if _, err := srv.Submit.Wait(WaitPolicy{Adapt: a}, time.Now().Add(50*time.Millisecond)); err != ErrWaitTimeout {
		t.Fatalf("Wait on an empty ring: %v, want ErrWaitTimeout", err)
	}
	if a.Misses.Load() != 1 || a.Hits.Load() != 0 || a.Budget() != 500*time.Microsecond {
		t.Fatalf("after a sleep: hits %d, misses %d, budget %v", a.Hits.Load(), a.Misses.Load(), a.Budget())
	}

	// An entry comes while it spins (the budget is far longer than the
	// wait): the spin paid.
	a = &AdaptiveSpin{Max: time.Minute}
	go func() {
		time.Sleep(time.Millisecond)
		if n, _ := app.Submit.Reserve(1); n == 1 {
			app.Submit.Publish(1)
		}
	}()
	if n, err := srv.Submit.Wait(WaitPolicy{Adapt: a}, time.Now().Add(time.Minute)); n != 1 || err != nil {
		t.Fatalf("Wait: %d, %v", n, err)
	}
	if a.Hits.Load() != 1 || a.Misses.Load() != 0 {
		t.Fatalf("after a spin that paid: hits %d, misses %d", a.Hits.Load(), a.Misses.Load())
	}
}
