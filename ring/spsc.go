package ring

import (
	"fmt"
	"sync/atomic"
)

// A ring is a single-producer single-consumer queue of fixed-size entries in
// shared memory. Head and tail are free-running uint32 counters: the slot of
// position p is p & (entries-1), the number of entries queued is tail-head in
// wrapping arithmetic, and neither counter is ever reset, so wrap-around at
// 2^32 needs no special case.
//
// Publication: the producer writes entries into slots, then stores the new
// tail (an atomic store, which orders the slot writes before it); the
// consumer loads the tail (an atomic load, which orders the slot reads after
// it), reads the slots, then stores the new head, which hands the slots back.
// Each side keeps its own counter privately and only ever trusts that copy;
// the peer's counter is loaded, checked against it, and refused if the two
// contradict each other (ErrCorrupt), after which the ring is dead.
type ringShared struct {
	mem       []byte // the region, for the slots
	slotsOff  int
	entrySize uint32
	mask      uint32
	capacity  uint32
	head      *atomic.Uint32 // written by the consumer
	tail      *atomic.Uint32 // written by the producer
	wakeFlag  *atomic.Uint32 // set by a consumer about to sleep
	bell      Doorbell       // wakes the consumer; nil means the consumer never sleeps
}

func (r *ringShared) slot(pos uint32) []byte {
	off := r.slotsOff + int(pos&r.mask)*int(r.entrySize)
	end := off + int(r.entrySize)
	return r.mem[off:end:end]
}

// Producer is the writing end of a ring. It is not safe for concurrent use:
// one goroutine (or a caller holding a lock) owns it.
//
// Use: n := p.Reserve(want); fill p.Slot(0..n-1); p.Publish(n).
type Producer struct {
	r        ringShared
	tail     uint32 // next position to publish; our own truth
	head     uint32 // the consumer's head as last seen
	reserved uint32
	counter  *atomic.Uint64 // optional: entries published, for status
	dead     error
}

func newProducer(r ringShared, counter *atomic.Uint64) (*Producer, error) {
	p := &Producer{r: r, counter: counter}
	p.tail = r.tail.Load()
	p.head = r.head.Load()
	if p.tail-p.head > r.capacity {
		return nil, fmt.Errorf("%w: producer found head %d tail %d in a ring of %d", ErrCorrupt, p.head, p.tail, r.capacity)
	}
	return p, nil
}

// Capacity is the number of slots in the ring.
func (p *Producer) Capacity() int { return int(p.r.capacity) }

// Reserve claims up to n free slots and reports how many it claimed (0 when
// the ring is full). It never blocks. Only the claimed slots may be filled,
// and a later Reserve replaces an unpublished claim.
func (p *Producer) Reserve(n int) (int, error) {
	if p.dead != nil {
		return 0, p.dead
	}
	want := uint32(min(max(n, 0), int(p.r.capacity)))
	free := p.r.capacity - (p.tail - p.head)
	if free < want {
		head := p.r.head.Load()
		if used := p.tail - head; used > p.r.capacity {
			p.dead = fmt.Errorf("%w: consumer head %d is not within %d of tail %d", ErrCorrupt, head, p.r.capacity, p.tail)
			return 0, p.dead
		}
		p.head = head
		free = p.r.capacity - (p.tail - p.head)
	}
	p.reserved = min(want, free)
	return int(p.reserved), nil
}

// Slot is the i-th reserved slot, 0 <= i < the count Reserve returned. The
// caller writes one entry into it; the bytes are shared memory.
func (p *Producer) Slot(i int) []byte {
	if uint32(i) >= p.reserved {
		panic(fmt.Sprintf("ring: slot %d outside the %d reserved", i, p.reserved))
	}
	return p.r.slot(p.tail + uint32(i))
}

// Publish makes the first n reserved slots visible to the consumer, in order,
// and wakes the consumer if it asked to be woken. It returns the error of a
// failed wake-up; the entries are published regardless.
func (p *Producer) Publish(n int) error {
	if p.PublishDeferred(n) {
		return p.Wake()
	}
	return nil
}

// PublishDeferred publishes as Publish does but leaves the wake-up to the
// caller: it reports whether the consumer asked to be woken, and then the
// caller must call Wake soon. A wake-up is a system call that may hand the
// processor to the consumer, so a producer that publishes under a lock of
// its own wakes after letting the lock go: a thread preempted inside the
// system call would otherwise stall every other thread waiting on the lock.
func (p *Producer) PublishDeferred(n int) (wake bool) {
	if n == 0 {
		p.reserved = 0
		return false
	}
	if n < 0 || uint32(n) > p.reserved {
		panic(fmt.Sprintf("ring: publish %d of %d reserved", n, p.reserved))
	}
	p.tail += uint32(n)
	p.reserved = 0
	storeThenLoad(p.r.tail, p.tail)
	if p.counter != nil {
		p.counter.Add(uint64(n))
	}
	// The store of tail above is ordered before this load, as the
	// consumer's store of the flag is before its load of tail: one of us
	// sees the other (see Consumer.Wait and storeThenLoad).
	return p.r.bell != nil && p.r.wakeFlag.Load() != 0 && p.r.wakeFlag.CompareAndSwap(1, 0)
}

// Wake rings the consumer's doorbell, for a PublishDeferred that asked for
// it. It is safe from any goroutine, with or without the producer's lock.
func (p *Producer) Wake() error {
	if p.r.bell == nil {
		return nil
	}
	return p.r.bell.Ring()
}

// Position is the free-running position the next published entry will have.
func (p *Producer) Position() uint32 { return p.tail }

// Consumer is the reading end of a ring. It is not safe for concurrent use.
//
// Use: n := c.Peek(max); read c.Slot(0..n-1), copying what you keep;
// c.Release(n).
type Consumer struct {
	r       ringShared
	head    uint32 // next position to read; our own truth
	tail    uint32 // the producer's tail as last loaded
	counter *atomic.Uint64
	dead    error
}

func newConsumer(r ringShared, counter *atomic.Uint64) (*Consumer, error) {
	c := &Consumer{r: r, counter: counter}
	c.head = r.head.Load()
	c.tail = r.tail.Load()
	if c.tail-c.head > r.capacity {
		return nil, fmt.Errorf("%w: consumer found head %d tail %d in a ring of %d", ErrCorrupt, c.head, c.tail, r.capacity)
	}
	return c, nil
}

// Capacity is the number of slots in the ring.
func (c *Consumer) Capacity() int { return int(c.r.capacity) }

// Peek reports how many entries, up to limit, are ready to read. It loads the
// producer's tail only when the entries seen at the last load fall short of
// limit, so draining a burst in small pieces costs one shared load.
func (c *Consumer) Peek(limit int) (int, error) {
	if c.dead != nil {
		return 0, c.dead
	}
	want := uint32(min(max(limit, 0), int(c.r.capacity)))
	if c.tail-c.head < want {
		if err := c.load(); err != nil {
			return 0, err
		}
	}
	return int(min(want, c.tail-c.head)), nil
}

func (c *Consumer) load() error {
	tail := c.r.tail.Load()
	if tail-c.head > c.r.capacity {
		c.dead = fmt.Errorf("%w: producer tail %d is not within %d of head %d", ErrCorrupt, tail, c.r.capacity, c.head)
		return c.dead
	}
	c.tail = tail
	return nil
}

// Slot is the i-th ready entry, 0 <= i < the count Peek returned. It is
// shared memory that a hostile producer may be rewriting: decode it once into
// private memory and validate the copy.
func (c *Consumer) Slot(i int) []byte {
	if uint32(i) >= c.tail-c.head {
		panic(fmt.Sprintf("ring: slot %d outside the %d ready", i, c.tail-c.head))
	}
	return c.r.slot(c.head + uint32(i))
}

// Release hands the first n ready slots back to the producer.
func (c *Consumer) Release(n int) {
	if n < 0 || uint32(n) > c.tail-c.head {
		panic(fmt.Sprintf("ring: release %d of %d ready", n, c.tail-c.head))
	}
	if n == 0 {
		return
	}
	c.head += uint32(n)
	c.r.head.Store(c.head)
	if c.counter != nil {
		c.counter.Add(uint64(n))
	}
}

// Position is the free-running position of the next entry to read.
func (c *Consumer) Position() uint32 { return c.head }

// ready reports whether the producer has published past our head, with one
// shared load and no side effects: the spin loop's probe.
func (c *Consumer) ready() bool { return c.r.tail.Load() != c.head }
