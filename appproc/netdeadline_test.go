package appproc

import (
	"testing"
	"time"
)

// TestDeadlineMoves: a deadline moved back and forth, to none, to the past
// and to the future again, with timers re-armed rather than replaced,
// expires exactly when its latest setting says.
func TestDeadlineMoves(t *testing.T) {
	d := newDeadline(nil)
	expiresWithin := func(step string, within time.Duration) {
		t.Helper()
		select {
		case <-d.wait():
		case <-time.After(within):
			t.Fatalf("%s: not expired after %v", step, within)
		}
	}
	notExpired := func(step string, for_ time.Duration) {
		t.Helper()
		select {
		case <-d.wait():
			t.Fatalf("%s: expired", step)
		case <-time.After(for_):
		}
	}
	d.set(time.Now().Add(time.Hour))
	notExpired("an hour ahead", 10*time.Millisecond)
	d.set(time.Now().Add(2 * time.Hour)) // re-arms the same timer
	notExpired("moved further", 10*time.Millisecond)
	d.set(time.Now().Add(20 * time.Millisecond))
	expiresWithin("20ms ahead", 2*time.Second)
	if !d.expired() {
		t.Fatal("expired() false after the deadline")
	}
	d.set(time.Now().Add(time.Hour)) // after expiry: a new channel
	notExpired("moved after it passed", 10*time.Millisecond)
	d.set(time.Time{})
	notExpired("none", 30*time.Millisecond)
	d.set(time.Now().Add(10 * time.Millisecond)) // the stopped timer again
	expiresWithin("10ms ahead after none", 2*time.Second)
	d.set(time.Unix(1, 0))
	if !d.expired() {
		t.Fatal("a past deadline is not expired")
	}
	d.set(time.Unix(2, 0)) // past again: stays expired, nothing to close twice
	d.set(time.Time{})
	notExpired("none after the past", 10*time.Millisecond)
	for range 100 { // many moves, one timer
		d.set(time.Now().Add(time.Hour))
	}
	d.set(time.Now().Add(5 * time.Millisecond))
	expiresWithin("after many moves", 2*time.Second)
}
