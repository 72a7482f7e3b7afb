package ring

import (
	"sync/atomic"
	"time"
)

// AdaptiveSpin chooses how long a consumer spins on an empty ring before it
// sleeps, from how often spinning has paid lately. A spin pays when
// entries arrive before it ends: the consumer then saves a sleep and the
// producer a wake-up (two system calls, and two trips through the
// schedulers). It does not pay when the producer is slow to come back,
// which on a machine with more runnable threads than processors is most
// of the time: the spinner then holds a processor the producer (or anyone)
// could have used, and sleeps anyway.
//
// So the budget doubles after a spin that paid, up to Max, and halves after
// one that did not, down to a floor of a few microseconds (a few hundred
// loads of the ring and a clock read), which keeps probing: a producer
// that comes back to life is caught by the short spin, and the budget
// grows again. Hits and Misses count the outcomes, for the hit rate; they
// may be read from any goroutine.
//
// An AdaptiveSpin belongs to one consumer (one goroutine). Wait drives it
// through WaitPolicy.Adapt; a consumer with a wait of its own (a server's
// loop over many rings) calls Budget, Paid and Slept itself.
type AdaptiveSpin struct {
	// Max is the longest spin (DefaultSpin if zero).
	Max time.Duration

	budget       time.Duration
	Hits, Misses atomic.Uint64 // spins that entries ended, and spins that ended in a sleep
}

// MinSpin is the floor of an AdaptiveSpin's budget.
const MinSpin = 2 * time.Microsecond

func (a *AdaptiveSpin) max() time.Duration {
	if a.Max > 0 {
		return a.Max
	}
	return DefaultSpin
}

// Budget is how long the next spin may last: Max until the first one has
// gone one way or the other.
func (a *AdaptiveSpin) Budget() time.Duration {
	if a.budget == 0 {
		a.budget = a.max()
	}
	return a.budget
}

// Paid records a spin that entries ended.
func (a *AdaptiveSpin) Paid() {
	a.Hits.Add(1)
	a.budget = min(2*a.Budget(), a.max())
}

// Slept records a spin that ended in a sleep.
func (a *AdaptiveSpin) Slept() {
	a.Misses.Add(1)
	a.budget = max(a.Budget()/2, min(MinSpin, a.max()))
}
