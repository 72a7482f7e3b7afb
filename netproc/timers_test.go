package netproc

import (
	"slices"
	"testing"
	"time"
)

// TestTimers drives the timer heap with a fake clock: timers run in
// deadline order, stopped ones never run, and the timerfd follows the
// earliest deadline.
func TestTimers(t *testing.T) {
	ts, err := newTimers()
	if err != nil {
		t.Fatal(err)
	}
	defer ts.close()
	now := time.Unix(1000, 0)
	ts.now = func() time.Time { return now }
	var ran []int
	at := func(d time.Duration, id int) *timer { return ts.AfterFunc(d, func() { ran = append(ran, id) }) }
	at(30*time.Millisecond, 3)
	at(10*time.Millisecond, 1)
	stopped := at(20*time.Millisecond, 2)
	at(40*time.Millisecond, 4)
	if !ts.armed.Equal(now.Add(10 * time.Millisecond)) {
		t.Fatalf("armed for %v, want the earliest deadline", ts.armed.Sub(now))
	}
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: want true once, then false")
	}
	now = now.Add(35 * time.Millisecond)
	ts.fire(0)
	if !slices.Equal(ran, []int{1, 3}) {
		t.Fatalf("ran %v, want [1 3]", ran)
	}
	if !ts.armed.Equal(now.Add(5 * time.Millisecond)) {
		t.Fatalf("armed for %v after firing, want 5ms", ts.armed.Sub(now))
	}
	now = now.Add(time.Hour)
	ts.fire(0)
	if !slices.Equal(ran, []int{1, 3, 4}) || !ts.armed.IsZero() {
		t.Fatalf("ran %v, armed %v", ran, ts.armed)
	}
}
