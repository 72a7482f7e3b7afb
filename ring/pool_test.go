package ring

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestPoolOwnership(t *testing.T) {
	r := newRegion(t, testGeometry)
	app, err := r.App(Bells{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := reopen(t, r).Server(Bells{})
	if err != nil {
		t.Fatal(err)
	}
	pool, loans := app.Pool, srv.Loans

	i, err := pool.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	copy(pool.Bytes(i), "hello")
	if err := pool.Free(i + 1); !errors.Is(err, ErrBufferNotOwned) {
		t.Errorf("free of an unallocated buffer: %v", err)
	}
	if _, err := pool.Reclaim(i, 0); !errors.Is(err, ErrBufferNotOwned) {
		t.Errorf("reclaim of a buffer never lent: %v", err)
	}
	if err := pool.Lend(i); err != nil {
		t.Fatal(err)
	}
	if err := pool.Lend(i); !errors.Is(err, ErrBufferNotOwned) {
		t.Errorf("double lend: %v", err)
	}
	mustPanic(t, "touching a lent buffer", func() { pool.Bytes(i) })

	// The server side.
	if _, err := loans.Take(testGeometry.BufferCount, 1); !errors.Is(err, ErrBufferIndex) {
		t.Errorf("take of foreign index: %v", err)
	}
	if _, err := loans.Take(1<<31, 1); !errors.Is(err, ErrBufferIndex) {
		t.Errorf("take of huge index: %v", err)
	}
	if _, err := loans.Take(i, testGeometry.BufferSize+1); !errors.Is(err, ErrBufferLength) {
		t.Errorf("take past the buffer's end: %v", err)
	}
	b, err := loans.Take(i, 5)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "hello" {
		t.Fatalf("server sees %q", b)
	}
	if _, err := loans.Take(i, 5); !errors.Is(err, ErrBufferNotOwned) {
		t.Errorf("second take of a held buffer: %v", err)
	}
	copy(b[:cap(b)], "world!")
	if err := loans.Return(i); err != nil {
		t.Fatal(err)
	}
	if err := loans.Return(i); !errors.Is(err, ErrBufferNotOwned) {
		t.Errorf("double return on the server side: %v", err)
	}
	if loans.Held() != 0 {
		t.Errorf("server holds %d after returning all", loans.Held())
	}

	// Back with the app.
	if _, err := pool.Reclaim(i, testGeometry.BufferSize+1); !errors.Is(err, ErrBufferLength) {
		t.Errorf("reclaim with a length past the end: %v", err)
	}
	// The buffer came back despite the lying length.
	if _, err := pool.Reclaim(i, 6); !errors.Is(err, ErrBufferNotOwned) {
		t.Errorf("double return on the app side: %v", err)
	}
	if string(pool.Bytes(i)[:6]) != "world!" {
		t.Fatalf("app sees %q", pool.Bytes(i)[:6])
	}
	if _, err := pool.Reclaim(testGeometry.BufferCount+7, 1); !errors.Is(err, ErrBufferIndex) {
		t.Errorf("reclaim of a foreign index: %v", err)
	}
	if err := pool.Free(i); err != nil {
		t.Fatal(err)
	}
	if err := pool.Free(i); !errors.Is(err, ErrBufferNotOwned) {
		t.Errorf("double free: %v", err)
	}
}

func TestPoolExhaustion(t *testing.T) {
	r := newRegion(t, Geometry{SQEntrySize: 64, SQEntries: 4, CQEntrySize: 32, CQEntries: 4, BufferSize: 64, BufferCount: 3})
	app, _ := r.App(Bells{})
	seen := map[uint32]bool{}
	for range 3 {
		i, err := app.Pool.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		if seen[i] {
			t.Fatalf("buffer %d handed out twice", i)
		}
		seen[i] = true
	}
	if _, err := app.Pool.Alloc(); !errors.Is(err, ErrNoBuffers) {
		t.Fatalf("Alloc from an empty pool: %v", err)
	}
}

// TestPoolAgainstModel runs random operations from both sides, honest and
// not, against a model of who owns each buffer.
func TestPoolAgainstModel(t *testing.T) {
	const count = 16
	r := newRegion(t, Geometry{SQEntrySize: 64, SQEntries: 4, CQEntrySize: 32, CQEntries: 4, BufferSize: 64, BufferCount: count})
	app, _ := r.App(Bells{})
	srv, _ := r.Server(Bells{})
	owner := make([]bufState, count) // the model
	// move is the model of an app-side call on buffer i: it is allowed
	// when the model says from, and then the model says to.
	move := func(i uint32, from, to bufState) bool {
		ok := i < count && owner[i] == from
		if ok {
			owner[i] = to
		}
		return ok
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for step := range 20000 {
		i := uint32(rng.IntN(count + 2)) // sometimes out of range
		var err error
		var okWant bool
		switch op := rng.IntN(5); op {
		case 0:
			var got uint32
			got, err = app.Pool.Alloc()
			free := 0
			for _, s := range owner {
				if s == bufFree {
					free++
				}
			}
			okWant = free > 0
			if err == nil {
				if owner[got] != bufFree {
					t.Fatalf("step %d: Alloc gave buffer %d in state %d", step, got, owner[got])
				}
				owner[got] = bufHeld
			}
		case 1:
			err = app.Pool.Lend(i)
			okWant = move(i, bufHeld, bufLent)
		case 2:
			_, err = srv.Loans.Take(i, uint32(rng.IntN(70)))
			// The server side has its own view: it holds what it took.
			_ = err
			continue
		case 3:
			_, err = app.Pool.Reclaim(i, 0)
			okWant = move(i, bufLent, bufHeld)
		case 4:
			err = app.Pool.Free(i)
			okWant = move(i, bufHeld, bufFree)
		}
		if (err == nil) != okWant {
			t.Fatalf("step %d: err %v, model says ok=%v", step, err, okWant)
		}
	}
}
