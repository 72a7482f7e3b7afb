package ring

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStoreThenLoadIsOrdered runs the store-buffer litmus test on words in
// a shared mapping, as the wake-up handshake uses them: one goroutine
// stores x then loads y, the other stores y then loads x, and in no round
// may both load the value from before the other's store. Under the race
// detector a plain atomic Store on such memory fails this thousands of
// times in 100,000 rounds (see storeThenLoad); storeThenLoad must not fail it
// once.
func TestStoreThenLoadIsOrdered(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two Ps: the two sides must run at once")
	}
	mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	// Each word on its own cache line; start and ready announce each side's round.
	x, y := word32(mem, 0), word32(mem, 64)
	start, ready := word32(mem, 128), word32(mem, 192)
	const rounds = 100_000
	var seenX, seenY [rounds]uint32
	stop := time.Now().Add(5 * time.Second) // a busy machine gets fewer rounds, not a timeout
	wait := func(w *atomic.Uint32, i uint32) bool {
		for n := 0; w.Load() < i; n++ {
			if n%1024 == 1023 {
				if time.Now().After(stop) {
					return false
				}
				runtime.Gosched()
			}
		}
		return true
	}
	// side plays one side for as many rounds as the other keeps up with:
	// announce the round, wait for the other's, store mine, load theirs.
	side := func(announce, other, mine, theirs *atomic.Uint32, seen *[rounds]uint32) uint32 {
		i := uint32(1)
		for ; i <= rounds; i++ {
			announce.Swap(i)
			if !wait(other, i) {
				break
			}
			storeThenLoad(mine, i)
			seen[i-1] = theirs.Load()
		}
		return i - 1
	}
	done := make(chan uint32)
	go func() { done <- side(start, ready, y, x, &seenX) }()
	ran := min(side(ready, start, x, y, &seenY), <-done)
	bad := 0
	for r := range ran {
		if seenX[r] <= r && seenY[r] <= r { // both saw the value before round r+1's store
			bad++
		}
	}
	t.Logf("%d rounds", ran)
	switch {
	case bad > 0:
		t.Errorf("in %d of %d rounds both sides loaded the old value after storing: a sleeper could miss its wake-up", bad, ran)
	case ran < 1000:
		t.Skipf("only %d rounds in 5 s: the machine is too busy for the two sides to race", ran)
	}
}
