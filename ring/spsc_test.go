package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// setCounters places a ring's shared head and tail at pos, so that tests can
// start just short of the uint32 wrap.
func setCounters(r *Region, pos uint32) {
	for _, off := range []int{offSQHead, offSQTail, offCQHead, offCQTail} {
		word32(r.mem, off).Store(pos)
	}
}

// TestRingAgainstModel drives a ring and a naive slice queue with the same
// random interleaving of batched pushes and pops, at small capacities and
// with counters starting near the wrap, and requires identical behaviour.
func TestRingAgainstModel(t *testing.T) {
	for _, capacity := range []uint32{1, 2, 4, 8, 64} {
		for _, start := range []uint32{0, 1<<32 - 5, 1<<32 - 100} {
			for seed := uint64(1); seed <= 20; seed++ {
				name := fmt.Sprintf("cap=%d/start=%d/seed=%d", capacity, start, seed)
				t.Run(name, func(t *testing.T) { checkAgainstModel(t, capacity, start, seed) })
			}
		}
	}
}

func checkAgainstModel(t *testing.T, capacity, start uint32, seed uint64) {
	g := Geometry{SQEntrySize: 8, SQEntries: capacity, CQEntrySize: 8, CQEntries: capacity}
	r := newRegion(t, g)
	setCounters(r, start)
	p, err := newProducer(r.submissionRing(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newConsumer(r.submissionRing(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	var model []uint64
	next := uint64(0)
	for step := 0; step < 2000; step++ {
		if rng.IntN(2) == 0 {
			want := rng.IntN(int(capacity) + 3)
			n, err := p.Reserve(want)
			if err != nil {
				t.Fatal(err)
			}
			if free := int(capacity) - len(model); n != min(want, free) {
				t.Fatalf("step %d: Reserve(%d) = %d with %d free", step, want, n, free)
			}
			fill := n
			if fill > 0 {
				fill = rng.IntN(n + 1) // publish only part of a reservation sometimes
			}
			for i := range fill {
				binary.LittleEndian.PutUint64(p.Slot(i), next)
				model = append(model, next)
				next++
			}
			if err := p.Publish(fill); err != nil {
				t.Fatal(err)
			}
		} else {
			want := rng.IntN(int(capacity) + 3)
			n, err := c.Peek(want)
			if err != nil {
				t.Fatal(err)
			}
			if n != min(want, len(model)) {
				t.Fatalf("step %d: Peek(%d) = %d with %d queued", step, want, n, len(model))
			}
			take := rng.IntN(n + 1)
			for i := range take {
				if got := binary.LittleEndian.Uint64(c.Slot(i)); got != model[i] {
					t.Fatalf("step %d: slot %d holds %d, want %d", step, i, got, model[i])
				}
			}
			c.Release(take)
			model = model[take:]
		}
	}
}

func TestRingCorruptCounters(t *testing.T) {
	g := Geometry{SQEntrySize: 8, SQEntries: 8, CQEntrySize: 8, CQEntries: 8}
	t.Run("tail far past head", func(t *testing.T) {
		r := newRegion(t, g)
		c, _ := newConsumer(r.submissionRing(nil), nil)
		word32(r.mem, offSQTail).Store(9) // 9 entries in a ring of 8
		if _, err := c.Peek(1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Peek: %v, want ErrCorrupt", err)
		}
		if _, err := c.Peek(1); !errors.Is(err, ErrCorrupt) {
			t.Fatal("a corrupt ring came back to life")
		}
	})
	t.Run("tail behind head", func(t *testing.T) {
		r := newRegion(t, g)
		c, _ := newConsumer(r.submissionRing(nil), nil)
		word32(r.mem, offSQTail).Store(^uint32(0))
		if _, err := c.Peek(1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Peek: %v, want ErrCorrupt", err)
		}
	})
	t.Run("head past tail", func(t *testing.T) {
		r := newRegion(t, g)
		p, _ := newProducer(r.submissionRing(nil), nil)
		n, _ := p.Reserve(8)
		p.Publish(n)
		word32(r.mem, offSQHead).Store(100)
		if _, err := p.Reserve(1); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Reserve: %v, want ErrCorrupt", err)
		}
	})
	t.Run("corrupt at open", func(t *testing.T) {
		r := newRegion(t, g)
		word32(r.mem, offSQTail).Store(1000)
		if _, err := r.Server(Bells{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Server: %v, want ErrCorrupt", err)
		}
		if _, err := r.App(Bells{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("App: %v, want ErrCorrupt", err)
		}
	})
}

func TestPublishMisuse(t *testing.T) {
	r := newRegion(t, Geometry{SQEntrySize: 8, SQEntries: 4, CQEntrySize: 8, CQEntries: 4})
	p, _ := newProducer(r.submissionRing(nil), nil)
	mustPanic(t, "publish beyond reservation", func() { p.Publish(1) })
	p.Reserve(2)
	mustPanic(t, "slot beyond reservation", func() { p.Slot(2) })
	c, _ := newConsumer(r.submissionRing(nil), nil)
	mustPanic(t, "release beyond ready", func() { c.Release(1) })
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}
