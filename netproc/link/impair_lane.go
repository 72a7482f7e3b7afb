package link

import (
	"math/rand/v2"
	"sync"
	"time"
)

// ImpairOptions configure an Impaired device. Percentages apply to each
// direction separately, each direction drawing from its own generator
// seeded with Seed.
type ImpairOptions struct {
	Seed             uint64
	DropPercent      float64 // packets lost
	DuplicatePercent float64 // packets sent twice
	ReorderPercent   float64 // packets held back until 1 to 3 later packets passed them
	Delay            time.Duration
	// ReorderTimeout releases a held-back packet that no later packet
	// passed within this time; default 10ms.
	ReorderTimeout time.Duration
	// QueueLimit bounds the packets held per direction (reordered and
	// delayed); beyond it packets are dropped and counted as overflow.
	// Default 4096.
	QueueLimit int
}

// Active reports whether the options impair anything.
func (o ImpairOptions) Active() bool {
	return o.DropPercent > 0 || o.DuplicatePercent > 0 || o.ReorderPercent > 0 || o.Delay > 0
}

func (o ImpairOptions) withDefaults() ImpairOptions {
	if o.ReorderTimeout <= 0 {
		o.ReorderTimeout = 10 * time.Millisecond
	}
	if o.QueueLimit <= 0 {
		o.QueueLimit = 4096
	}
	return o
}

// ImpairStats count what one direction did to its packets.
type ImpairStats struct {
	Packets    uint64 // packets that entered
	Dropped    uint64
	Duplicated uint64
	Reordered  uint64
	Delayed    uint64
	Overflow   uint64 // dropped because QueueLimit packets were held
	Errors     uint64 // writes the inner device refused
}

// decision is what happens to one packet.
type decision struct {
	drop, dup, reorder bool
	gap                int // packets that pass a reordered one
}

// decider draws decisions. It draws the same four numbers for every packet
// whatever the options, so that for one seed the n-th packet's fate under
// one impairment does not depend on the others' settings.
type decider struct {
	opts ImpairOptions
	rng  *rand.Rand
}

func newDecider(opts ImpairOptions, stream uint64) decider {
	return decider{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, stream))}
}

func (d *decider) next() decision {
	drop := d.rng.Float64() * 100
	dup := d.rng.Float64() * 100
	reorder := d.rng.Float64() * 100
	gap := 1 + d.rng.IntN(3)
	return decision{
		drop:    drop < d.opts.DropPercent,
		dup:     dup < d.opts.DuplicatePercent,
		reorder: reorder < d.opts.ReorderPercent,
		gap:     gap,
	}
}

// queued is a packet copied for holding: buf[headroom:] is the packet.
type queued struct {
	buf     []byte
	off     int
	gso     uint16
	flags   PacketFlags
	release time.Time
}

type heldPacket struct {
	q        queued
	gap      int
	deadline time.Time
}

// lane impairs one direction. Packets enter through process, in order; a
// lane emits them, in the order it decided, to sink, always with mu held so
// that emissions from process and from the timer never interleave.
type lane struct {
	mu       sync.Mutex
	opts     ImpairOptions
	decide   decider
	headroom int
	held     []heldPacket // reordered packets waiting to be passed
	delayed  []queued     // emitted packets waiting for their release time
	timer    *time.Timer
	out      []queued
	sink     func([]queued)
	stats    ImpairStats
	closed   bool
}

func newLane(opts ImpairOptions, stream uint64, headroom int, sink func([]queued)) *lane {
	return &lane{opts: opts, decide: newDecider(opts, stream), headroom: headroom, sink: sink}
}

// process runs pkts through the impairments. The packets are copied; the
// caller keeps its buffers.
func (l *lane) process(pkts []Packet, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	for i := range pkts {
		l.stats.Packets++
		d := l.decide.next()
		if d.drop {
			l.stats.Dropped++
			continue
		}
		copies := 1
		if d.dup {
			l.stats.Duplicated++
			copies = 2
		}
		for c := range copies {
			q := l.copyPacket(&pkts[i])
			if c == 0 && d.reorder {
				if len(l.held)+len(l.delayed) >= l.opts.QueueLimit {
					l.stats.Overflow++
					continue
				}
				l.stats.Reordered++
				l.held = append(l.held, heldPacket{q: q, gap: d.gap, deadline: now.Add(l.opts.ReorderTimeout)})
				continue
			}
			l.emit(q, now)
			l.pass(now)
		}
	}
	l.flush(now)
}

func (l *lane) copyPacket(p *Packet) queued {
	buf := make([]byte, l.headroom+p.Len)
	copy(buf[l.headroom:], p.Bytes())
	return queued{buf: buf, off: l.headroom, gso: p.GSOSize, flags: p.Flags}
}

// pass records that one packet went by every held one; those passed by
// enough packets follow it.
func (l *lane) pass(now time.Time) {
	l.releaseWhere(now, func(h *heldPacket) bool {
		h.gap--
		return h.gap <= 0
	})
}

// releaseWhere emits, in the order they were held, the held packets for
// which due reports true, and keeps holding the others (with what due
// changed in them).
func (l *lane) releaseWhere(now time.Time, due func(*heldPacket) bool) {
	kept := l.held[:0]
	var released []queued
	for _, h := range l.held {
		if due(&h) {
			released = append(released, h.q)
		} else {
			kept = append(kept, h)
		}
	}
	clear(l.held[len(kept):])
	l.held = kept
	for _, q := range released {
		l.emit(q, now)
	}
}

// emit sends q on, after the delay if there is one.
func (l *lane) emit(q queued, now time.Time) {
	if l.opts.Delay <= 0 {
		l.out = append(l.out, q)
		return
	}
	if len(l.held)+len(l.delayed) >= l.opts.QueueLimit {
		l.stats.Overflow++
		return
	}
	l.stats.Delayed++
	q.release = now.Add(l.opts.Delay)
	l.delayed = append(l.delayed, q)
}

// flush hands what is due to the sink and arms the timer for what is not.
func (l *lane) flush(now time.Time) {
	n := 0
	for n < len(l.delayed) && !l.delayed[n].release.After(now) {
		n++
	}
	if n > 0 {
		l.out = append(l.out, l.delayed[:n]...)
		clear(l.delayed[:n])
		l.delayed = l.delayed[n:]
	}
	if len(l.out) > 0 {
		l.sink(l.out)
		clear(l.out)
		l.out = l.out[:0]
	}
	var next time.Time
	if len(l.delayed) > 0 {
		next = l.delayed[0].release
	}
	for _, h := range l.held {
		if next.IsZero() || h.deadline.Before(next) {
			next = h.deadline
		}
	}
	if next.IsZero() {
		return
	}
	wait := max(next.Sub(now), 0)
	if l.timer == nil {
		l.timer = time.AfterFunc(wait, l.tick)
	} else {
		l.timer.Reset(wait)
	}
}

// tick releases held packets whose time is up and delayed packets that are
// due.
func (l *lane) tick() {
	l.releaseNow(func(h *heldPacket, now time.Time) bool { return !h.deadline.After(now) })
}

// releaseHeld emits every held packet now, in the order they were held.
func (l *lane) releaseHeld() {
	l.releaseNow(func(*heldPacket, time.Time) bool { return true })
}

// releaseNow is the work of tick and releaseHeld, which come from outside
// the lane's lock: under it, it emits the held packets that due picks at
// the present time (as releaseWhere does) and sends on what is ready. A
// closed lane does nothing.
func (l *lane) releaseNow(due func(h *heldPacket, now time.Time) bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	now := time.Now()
	l.releaseWhere(now, func(h *heldPacket) bool { return due(h, now) })
	l.flush(now)
}

func (l *lane) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
	}
	l.held, l.delayed, l.out = nil, nil, nil
}

func (l *lane) snapshot() ImpairStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}
