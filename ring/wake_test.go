package ring

import (
	"errors"
	"sync"
	"testing"
	"time"

	"saturn/internal/testkit"
)

// eventBells are a channel's bells as saturn's servers get them: an
// eventfd for the server (the app's is always the region's futex word).
func eventBells(t *testing.T) Bells {
	t.Helper()
	s, err := NewEventDoorbell()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return Bells{Server: s}
}

// bothBells runs f on a fresh region of geometry g, once with the region's
// futex words for doorbells and once with an eventfd for the server's.
func bothBells(t *testing.T, g Geometry, f func(t *testing.T, app *AppEnd, srv *ServerEnd)) {
	for _, kind := range []string{"futex", "eventfd"} {
		t.Run(kind, func(t *testing.T) {
			var bells Bells
			if kind == "eventfd" {
				bells = eventBells(t)
			}
			r := newRegion(t, g)
			app, _ := r.App(bells)
			srv, _ := r.Server(bells)
			f(t, app, srv)
		})
	}
}

func TestWaitWakes(t *testing.T) {
	bothBells(t, testGeometry, func(t *testing.T, app *AppEnd, srv *ServerEnd) {
		srv.Submit.Peek(1) // nothing

		// Timeout with nothing published.
		start := time.Now()
		_, err := srv.Submit.Wait(WaitPolicy{Spin: time.Millisecond}, time.Now().Add(20*time.Millisecond))
		if !errors.Is(err, ErrWaitTimeout) {
			t.Fatalf("Wait on an empty ring: %v", err)
		}
		if d := time.Since(start); d < 20*time.Millisecond {
			t.Fatalf("Wait returned after %v, before its deadline", d)
		}

		// A sleeping server is woken by a publish.
		got := make(chan int)
		go func() {
			n, err := srv.Submit.Wait(WaitPolicy{}, time.Time{})
			for n == 0 && err == nil { // a spurious wake-up is allowed
				n, err = srv.Submit.Wait(WaitPolicy{}, time.Time{})
			}
			if err != nil {
				t.Error(err)
			}
			got <- n
		}()
		waitAsleep(t, srv.Submit)
		n, _ := app.Submit.Reserve(3)
		if err := app.Submit.Publish(n); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-got:
			if n != 3 {
				t.Fatalf("woke with %d entries, want 3", n)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("sleeping consumer was not woken")
		}
		srv.Submit.Release(3)

		// Interrupt wakes a sleeper with nothing to read.
		done := make(chan error, 1)
		go func() {
			_, err := app.Complete.Wait(WaitPolicy{}, time.Time{})
			done <- err
		}()
		// Asleep, or woken already by a ring left over from the
		// publish above (Wait allows that).
		testkit.Eventually(t, 5*time.Second, func() bool { return asleep(app.Complete) || len(done) > 0 }, "the consumer to fall asleep")
		app.Complete.Interrupt()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Interrupt did not wake the sleeper")
		}
	})
}

// TestNoLostWakeups has a consumer that sleeps at once whenever its ring is
// empty, and a producer that publishes in random small bursts; every entry
// must arrive. A lost wake-up shows as a hang.
func TestNoLostWakeups(t *testing.T) {
	bothBells(t, Geometry{SQEntrySize: 8, SQEntries: 8, CQEntrySize: 8, CQEntries: 8}, func(t *testing.T, app *AppEnd, srv *ServerEnd) {
		const total = 20000
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := 0
			for sent < total {
				n, err := app.Submit.Reserve(min(1+sent%3, total-sent))
				if err != nil {
					t.Error(err)
					return
				}
				if err := app.Submit.Publish(n); err != nil {
					t.Error(err)
					return
				}
				sent += n
				if n == 0 {
					time.Sleep(time.Microsecond)
				}
			}
		}()
		got := 0
		deadline := time.Now().Add(30 * time.Second)
		for got < total {
			n, err := srv.Submit.Wait(WaitPolicy{}, deadline)
			if err != nil {
				t.Fatalf("after %d of %d entries: %v", got, total, err)
			}
			srv.Submit.Release(n)
			got += n
		}
		wg.Wait()
	})
}

// TestBusyRingsNoBell checks the other half of the protocol: a producer
// whose consumer is not asleep rings no doorbell, and one whose consumer is
// asleep rings exactly once.
func TestBusyRingsNoBell(t *testing.T) {
	r := newRegion(t, testGeometry)
	bell := &countingBell{}
	app, _ := r.App(Bells{Server: bell})
	for range 100 {
		n, _ := app.Submit.Reserve(1)
		app.Submit.Publish(n)
		// Consume as a server would, so the ring never fills.
		word32(r.mem, offSQHead).Store(app.Submit.Position())
	}
	if bell.rings != 0 {
		t.Fatalf("%d rings with no sleeper", bell.rings)
	}
	word32(r.mem, offSQWakeFlag).Store(1)
	n, _ := app.Submit.Reserve(1)
	app.Submit.Publish(n)
	n, _ = app.Submit.Reserve(1)
	app.Submit.Publish(n)
	if bell.rings != 1 {
		t.Fatalf("%d rings for one sleeper, want 1", bell.rings)
	}
}

type countingBell struct{ rings int }

func (b *countingBell) Prepare() uint32               { return 0 }
func (b *countingBell) Sleep(uint32, time.Time) error { return nil }
func (b *countingBell) Ring() error                   { b.rings++; return nil }

// TestRingWhileAwakeIsKept: a Ring with nothing to read that comes while
// the consumer is awake (an Interrupt, a new server incarnation) ends its
// next Wait at once, so that it looks at what it waits for again; on a
// futex word as on an eventfd's counter.
func TestRingWhileAwakeIsKept(t *testing.T) {
	bothBells(t, testGeometry, func(t *testing.T, app *AppEnd, srv *ServerEnd) {
		// Opening the server end rang the app: a new incarnation.
		for i, ring := range []func() error{nil, app.Complete.Interrupt, srv.Submit.Interrupt} {
			c := app.Complete
			if i == 2 {
				c = srv.Submit
			}
			if ring != nil {
				if err := ring(); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			// A lost ring sleeps until the deadline; a kept one returns
			// at once. The two are far apart, so that a loaded machine's
			// stall is not taken for a lost ring.
			if n, err := c.Wait(WaitPolicy{}, time.Now().Add(30*time.Second)); n != 0 || err != nil {
				t.Fatalf("ring %d: Wait: %d, %v", i, n, err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("ring %d: Wait slept %v: the ring was lost", i, d)
			}
		}
	})
}

// asleep reports whether c's consumer has set its wake flag: it sleeps, or
// is about to, and a producer that publishes now must ring it.
func asleep(c *Consumer) bool { return c.r.wakeFlag.Load() == 1 }

// waitAsleep waits until c's consumer is asleep.
func waitAsleep(t *testing.T, c *Consumer) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, func() bool { return asleep(c) }, "the consumer to fall asleep")
}
