// Package sim is a deterministic simulator for the TCP core: two hosts,
// each with a minimal shell around package tcp (a connection table, a
// listener, timers and a scripted application), joined by a simulated link
// that loses, duplicates, reorders, delays and rate-limits segments, all
// driven by one virtual clock and one seeded random source. The same seed
// always produces the same run, event for event.
package sim

import (
	"container/heap"
	"math/rand/v2"
	"time"

	"saturn/netproc/tcp"
)

// LinkConfig describes the simulated link; both directions behave alike.
type LinkConfig struct {
	Loss      float64       // probability a packet is lost
	Duplicate float64       // probability a packet is delivered twice
	Reorder   float64       // probability a packet is held back by up to ReorderBy
	ReorderBy time.Duration // extra delay of a reordered packet
	Delay     time.Duration // one-way propagation delay
	Jitter    time.Duration // uniform extra delay per packet
	Bandwidth int64         // bytes per second; 0 means unlimited
	Queue     time.Duration // a packet that would wait longer than this for the link is dropped
	// MTU, if set, is the largest packet (wireSize) a hop in the middle
	// of the path carries: larger ones are dropped there, and with ICMP
	// the hop tells their sender (RFC 1191; see pmtu.go).
	MTU  int
	ICMP bool
	// CE is the probability that an ECN-capable packet (Segment.ECT) is
	// marked Congestion Experienced (RFC 3168) instead of going through
	// unmarked.
	CE float64
	// Spike is the probability that a packet meets a delay spike: the
	// direction it travels stalls for SpikeBy, holding it and every packet
	// behind it (a link-layer retransmission, a handover). A spike longer
	// than the RTO makes a spurious timeout.
	Spike   float64
	SpikeBy time.Duration
}

// packet is a segment in flight, with its payload copied out of the
// sender's send buffer.
type packet struct {
	to    int // host index
	tuple tcp.Tuple
	seg   tcp.Segment
	ptb   tcp.PacketTooBig // evICMP: what the hop's ICMP message says
}

// event is one scheduled happening.
type event struct {
	at   tcp.Time
	seq  uint64 // tie-break: events at the same instant run in scheduling order
	kind eventKind
	pkt  *packet
	ep   *endpoint
}

type eventKind uint8

const (
	evPacket eventKind = iota
	evTimer
	evApp
	evConnect
	evICMP // an ICMP "fragmentation needed" reaches pkt.to
)

// eventQueue is a min-heap of events by (at, seq).
type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// link carries packets between the two hosts.
type link struct {
	cfg                                                           LinkConfig
	rng                                                           *rand.Rand
	busy                                                          [2]tcp.Time // when each direction's transmitter is free again
	held                                                          [2]tcp.Time // each direction delivers nothing before this (Spike)
	sent, lost, duplicated, reordered, queueDrops, marked, spikes int
}

// wireSize approximates the packet's size on the wire: IPv4 and TCP
// headers, options, payload.
func wireSize(s *tcp.Segment) int {
	n := 40 + s.PayloadLen()
	if s.Options.TS {
		n += 12
	}
	if s.Options.NumSACK > 0 {
		n += 4 + 8*int(s.Options.NumSACK)
	}
	if s.Flags&tcp.FlagSYN != 0 {
		n += 20
	}
	return n
}

// transmit schedules the delivery of p (sent by host from at now) on w.
func (l *link) transmit(w *world, from int, p *packet) {
	l.sent++
	if l.cfg.MTU > 0 && wireSize(&p.seg) > l.cfg.MTU {
		w.packetTooBig(from, p)
		return
	}
	if l.rng.Float64() < l.cfg.Loss {
		l.lost++
		return
	}
	now := w.now
	start := max(now, l.busy[from])
	if l.cfg.Queue > 0 && start.Sub(now) > l.cfg.Queue {
		l.queueDrops++
		return
	}
	if l.cfg.Bandwidth > 0 {
		tx := time.Duration(int64(wireSize(&p.seg)) * int64(time.Second) / l.cfg.Bandwidth)
		l.busy[from] = start.Add(tx)
	} else {
		l.busy[from] = start
	}
	if l.cfg.CE > 0 && p.seg.ECT && l.rng.Float64() < l.cfg.CE {
		p.seg.CE = true
		l.marked++
	}
	p.seg.ECT = false // the receiving core sees only CE
	if l.cfg.Spike > 0 && l.rng.Float64() < l.cfg.Spike {
		// Nothing in this direction arrives before the spike ends.
		l.held[from] = max(l.held[from], now.Add(l.cfg.SpikeBy))
		l.spikes++
	}
	copies := 1
	if l.rng.Float64() < l.cfg.Duplicate {
		copies = 2
		l.duplicated++
	}
	for i := 0; i < copies; i++ {
		at := l.busy[from].Add(l.cfg.Delay)
		if l.cfg.Jitter > 0 {
			at = at.Add(time.Duration(l.rng.Int64N(int64(l.cfg.Jitter))))
		}
		if l.cfg.Reorder > 0 && l.rng.Float64() < l.cfg.Reorder && l.cfg.ReorderBy > 0 {
			at = at.Add(time.Duration(l.rng.Int64N(int64(l.cfg.ReorderBy))))
			l.reordered++
		}
		w.schedule(&event{at: max(at, l.held[from]), kind: evPacket, pkt: p})
	}
}

func (w *world) schedule(ev *event) {
	w.seq++
	ev.seq = w.seq
	heap.Push(&w.events, ev)
}
