package link

import (
	"errors"
	"sync"
	"time"
)

// Impaired wraps a Device and drops, duplicates, reorders and delays the
// packets passing through it, in both directions: netproc's own netem, for
// a kernel without one.
//
// Each direction draws its decisions from its own PCG generator seeded with
// Seed, so that for one seed the same packet sequence meets the same fate.
// The order in which packets come out is deterministic too when Delay is
// zero and every held-back packet is passed by later ones; a
// ReorderTimeout or Delay expiring brings wall-clock time in.
//
// Packets that are held are copied. Writes to the inner device happen from
// the caller's Write or, for held and delayed packets, from a timer; errors
// the inner device returns are counted in Stats and otherwise treated as
// losses, so Write reports only ErrClosed. Reads come from a goroutine that
// reads the inner device and queues what survives; it stops when the inner
// device's Read fails, which Close causes.
type Impaired struct {
	wrapped
	opts     ImpairOptions
	tx, rx   *lane
	txMu     sync.Mutex // serializes the inner device's Write
	txPkts   []Packet
	lastErr  error
	closing  chan struct{}
	wg       sync.WaitGroup
	closeErr error
	once     sync.Once

	// mu guards the read queue; lane.mu is taken before it.
	mu      sync.Mutex
	cond    sync.Cond
	ready   []queued
	readErr error
}

// Impair wraps dev when opts impair anything, and returns dev itself
// otherwise.
func Impair(dev Device, opts ImpairOptions) Device {
	if !opts.Active() {
		return dev
	}
	return NewImpaired(dev, opts)
}

// NewImpaired wraps dev. It starts the goroutine that reads dev.
func NewImpaired(dev Device, opts ImpairOptions) *Impaired {
	opts = opts.withDefaults()
	d := &Impaired{wrapped: wrapped{dev: dev}, opts: opts, closing: make(chan struct{})}
	d.cond.L = &d.mu
	hr := dev.Headroom()
	d.tx = newLane(opts, 0x7478 /* "tx" */, hr, d.writeInner)
	d.rx = newLane(opts, 0x7278 /* "rx" */, 0, d.enqueue)
	d.wg.Add(1)
	go d.readLoop()
	return d
}

// writeInner is the transmit lane's sink. It runs with the lane's lock held.
func (d *Impaired) writeInner(qs []queued) {
	d.txMu.Lock()
	defer d.txMu.Unlock()
	d.txPkts = d.txPkts[:0]
	for _, q := range qs {
		d.txPkts = append(d.txPkts, Packet{Buf: q.buf, Off: q.off, Len: len(q.buf) - q.off, GSOSize: q.gso, Flags: q.flags})
	}
	for pkts := d.txPkts; len(pkts) > 0; {
		n, err := d.dev.Write(pkts)
		if err == nil {
			break
		}
		d.tx.stats.Errors++
		d.lastErr = err
		if errors.Is(err, ErrClosed) {
			break
		}
		pkts = pkts[n+1:]
	}
	clear(d.txPkts)
}

// enqueue is the receive lane's sink: it queues packets for Read.
func (d *Impaired) enqueue(qs []queued) {
	d.mu.Lock()
	d.ready = append(d.ready, qs...)
	d.cond.Broadcast()
	d.mu.Unlock()
}

// readLoop reads the inner device and feeds the receive lane until the
// inner Read fails. It waits while QueueLimit packets are ready, leaving
// the inner device to queue or drop, as a real link would.
func (d *Impaired) readLoop() {
	defer d.wg.Done()
	size := d.dev.MaxPacketSize()
	hr := d.dev.Headroom()
	batch := make([]Packet, min(d.dev.BatchSize(), 64))
	for i := range batch {
		batch[i].Buf = make([]byte, hr+size)
		batch[i].Off = hr
	}
	for {
		n, err := d.dev.Read(batch)
		if err != nil {
			d.mu.Lock()
			d.readErr = err
			d.cond.Broadcast()
			d.mu.Unlock()
			return
		}
		d.rx.process(batch[:n], time.Now())
		d.mu.Lock()
		for len(d.ready) >= d.opts.QueueLimit && d.readErr == nil && !d.isClosing() {
			d.cond.Wait()
		}
		d.mu.Unlock()
	}
}

func (d *Impaired) isClosing() bool {
	select {
	case <-d.closing:
		return true
	default:
		return false
	}
}

// Read implements Device.
func (d *Impaired) Read(pkts []Packet) (int, error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.ready) == 0 {
		if d.isClosing() {
			return 0, ErrClosed
		}
		if d.readErr != nil {
			return 0, d.readErr
		}
		d.cond.Wait()
	}
	n := 0
	for n < len(pkts) && len(d.ready) > 0 {
		q := d.ready[0]
		p := &pkts[n]
		data := q.buf[q.off:]
		if p.Off < 0 || len(p.Buf)-p.Off < len(data) {
			if n == 0 {
				return 0, ErrShortBuffer
			}
			break
		}
		p.Len = copy(p.Buf[p.Off:], data)
		p.GSOSize, p.Flags = q.gso, q.flags
		d.ready[0] = queued{}
		d.ready = d.ready[1:]
		n++
	}
	d.cond.Broadcast()
	return n, nil
}

// Write implements Device. Every packet is copied (with the inner device's
// headroom) before anything else, so the caller's buffers are free when
// Write returns and need no headroom of their own.
func (d *Impaired) Write(pkts []Packet) (int, error) {
	if d.isClosing() {
		return 0, ErrClosed
	}
	for i := range pkts {
		p := &pkts[i]
		if p.Off < 0 || p.Len < 0 || p.Off+p.Len > len(p.Buf) {
			d.tx.process(pkts[:i], time.Now())
			return i, ErrShortBuffer
		}
	}
	d.tx.process(pkts, time.Now())
	return len(pkts), nil
}

// Flush releases every held-back (reordered) packet now, in both
// directions, in the order they were held, instead of waiting for later
// packets or ReorderTimeout; delayed packets keep their time. With it a
// test makes the output order independent of timing.
func (d *Impaired) Flush() {
	d.tx.releaseHeld()
	d.rx.releaseHeld()
}

// Stats returns the counters of the transmit and receive directions.
func (d *Impaired) Stats() (tx, rx ImpairStats) { return d.tx.snapshot(), d.rx.snapshot() }

// LastWriteError returns the last error the inner device's Write returned.
func (d *Impaired) LastWriteError() error {
	d.txMu.Lock()
	defer d.txMu.Unlock()
	return d.lastErr
}

// Close stops the timers, closes the inner device and waits for the
// reading goroutine to end. Packets still held are lost.
func (d *Impaired) Close() error {
	d.once.Do(func() {
		close(d.closing)
		// The inner device first: that unblocks a timer-driven Write
		// stuck in it while holding the transmit lane.
		d.closeErr = d.dev.Close()
		d.tx.close()
		d.rx.close()
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
		d.wg.Wait()
	})
	return d.closeErr
}

var _ Device = (*Impaired)(nil)
