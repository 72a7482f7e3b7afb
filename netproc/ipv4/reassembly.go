package ipv4

import (
	"time"

	"saturn/netproc/header"
)

const (
	// reserve is the room kept in front of a datagram's payload so that the
	// first fragment's header can be put there without a copy of the data.
	reserve = header.IPv4MaximumHeaderSize
	// infinity is the last byte of RFC 815's initial hole.
	infinity = 1 << 20
	// datagramOverhead is what a pending datagram costs beyond its buffer,
	// charged against ReassemblyMaxBytes.
	datagramOverhead = 256
	// fragRangeSize approximates one entry of holes or frags.
	fragRangeSize = 24
)

// fragKey identifies the datagram a fragment belongs to (RFC 791, 3.2:
// source, destination, protocol and identification).
type fragKey struct {
	src, dst header.IPv4Addr
	id       uint16
	proto    uint8
}

// hole is a range of payload bytes not yet received, both ends inclusive
// (RFC 815, section 3).
type hole struct{ first, last int }

// fragRange is a fragment received, both ends inclusive.
type fragRange struct {
	first, last int
	more        bool
}

// datagram is one reassembly in progress.
type datagram struct {
	key      fragKey
	deadline time.Time
	buf      []byte // reserve bytes, then the payload at its offset
	end      int    // one past the highest payload byte received
	total    int    // payload length once the last fragment came; -1 before
	holes    []hole
	frags    []fragRange
	// first is fragment zero's header and first 8 data bytes, kept for the
	// reassembled header and for ICMP time exceeded; nil until it arrives.
	first   []byte
	firstHL int
	// discarded datagrams keep absorbing their fragments until the
	// deadline instead of starting over with the rest.
	discarded  bool
	charged    int
	prev, next *datagram // creation order, which is also deadline order
}

// reassembler holds the datagrams being reassembled, within bounds.
type reassembler struct {
	timeout      time.Duration
	maxBytes     int
	maxDatagrams int
	maxFrags     int
	m            map[fragKey]*datagram
	head, tail   *datagram // oldest first
	bytes        int
}

func (r *reassembler) init(cfg Config) {
	r.timeout = cfg.ReassemblyTimeout
	r.maxBytes = cfg.ReassemblyMaxBytes
	r.maxDatagrams = cfg.ReassemblyMaxDatagrams
	r.maxFrags = cfg.ReassemblyMaxFragments
	r.m = make(map[fragKey]*datagram)
}

func (r *reassembler) oldest() *datagram { return r.head }

func (r *reassembler) insert(d *datagram) {
	r.m[d.key] = d
	d.prev = r.tail
	if r.tail != nil {
		r.tail.next = d
	} else {
		r.head = d
	}
	r.tail = d
	r.charge(d, datagramOverhead)
}

func (r *reassembler) remove(d *datagram) {
	delete(r.m, d.key)
	if d.prev != nil {
		d.prev.next = d.next
	} else {
		r.head = d.next
	}
	if d.next != nil {
		d.next.prev = d.prev
	} else {
		r.tail = d.prev
	}
	d.prev, d.next = nil, nil
	r.bytes -= d.charged
	d.charged = 0
}

func (r *reassembler) charge(d *datagram, n int) {
	d.charged += n
	r.bytes += n
}

// discard drops what d holds but keeps it until its deadline, so that its
// remaining fragments are dropped too rather than starting a new datagram.
func (r *reassembler) discard(d *datagram, stats *Stats) {
	stats.ReasmFails++
	d.discarded = true
	d.buf, d.holes, d.frags, d.first = nil, nil, nil, nil
	r.bytes -= d.charged - datagramOverhead
	d.charged = datagramOverhead
}

// evictOldest discards the oldest datagram other than keep; false if there
// is none.
func (r *reassembler) evictOldest(keep *datagram, stats *Stats) bool {
	victim := r.head
	if victim == keep {
		victim = victim.next
	}
	if victim == nil {
		return false
	}
	if !victim.discarded {
		stats.ReasmFails++
	}
	r.remove(victim)
	return true
}

// add takes one fragment h (valid, for us, IsFragment) at time now. It
// returns the reassembled datagram when h completed one, nil with DropNone
// when h was kept, or the reason h was dropped.
func (r *reassembler) add(h header.IPv4, now time.Time, stats *Stats) (header.IPv4, DropReason) {
	payload := h.Payload()
	first, n, more := int(h.FragmentOffset()), len(payload), h.MoreFragments()
	// RFC 791, 3.2: every fragment but the last carries a multiple of 8
	// bytes; an empty fragment says nothing and is treated as malformed.
	if n == 0 || more && n%8 != 0 {
		return nil, DropBadFragment
	}
	last := first + n - 1
	hl := h.HeaderLength()
	key := fragKey{src: h.SourceAddress(), dst: h.DestinationAddress(), id: h.ID(), proto: h.Protocol()}

	d := r.m[key]
	if d != nil && !now.Before(d.deadline) {
		// Expire has not run yet; this datagram's time is up regardless.
		if !d.discarded {
			stats.ReasmFails++
			stats.ReasmTimeouts++
		}
		r.remove(d)
		d = nil
	}
	if d == nil {
		for len(r.m) >= r.maxDatagrams || r.bytes+datagramOverhead > r.maxBytes {
			if !r.evictOldest(nil, stats) {
				break
			}
		}
		d = &datagram{key: key, deadline: now.Add(r.timeout), total: -1, holes: []hole{{0, infinity}}}
		r.insert(d)
	}
	if d.discarded {
		return nil, DropReassemblyDiscarded
	}

	// RFC 815, steps 1-3, narrowed: the fragment must lie within a single
	// hole. Otherwise it covers bytes already received: an exact duplicate
	// is ignored, any other overlap discards the datagram (RFC 5722's rule
	// for IPv6, which Linux applies to IPv4 too).
	idx := -1
	for i, ho := range d.holes {
		if ho.first <= first && last <= ho.last {
			idx = i
			break
		}
	}
	if idx < 0 {
		for _, f := range d.frags {
			if f.first == first && f.last == last && f.more == more {
				return nil, DropReassemblyDuplicate
			}
		}
		r.discard(d, stats)
		return nil, DropReassemblyOverlap
	}
	// A last fragment must end at or after every byte already received.
	if !more && d.end > last+1 {
		r.discard(d, stats)
		return nil, DropReassemblyOverlap
	}
	headerLen := max(d.firstHL, header.IPv4MinimumSize)
	if first == 0 {
		headerLen = hl
	}
	if headerLen+last+1 > header.IPv4MaximumSize || len(d.frags) >= r.maxFrags {
		r.discard(d, stats)
		return nil, DropReassemblyLimit
	}
	if !r.grow(d, last+1, stats) {
		r.discard(d, stats)
		return nil, DropReassemblyLimit
	}

	copy(d.buf[reserve+first:], payload)
	d.end = max(d.end, last+1)
	d.frags = append(d.frags, fragRange{first, last, more})
	if first == 0 {
		d.first = append([]byte(nil), h[:hl+min(8, n)]...)
		d.firstHL = hl
	}
	// RFC 815, steps 4-6: replace the hole by what is left of it.
	ho := d.holes[idx]
	d.holes[idx] = d.holes[len(d.holes)-1]
	d.holes = d.holes[:len(d.holes)-1]
	if first > ho.first {
		d.holes = append(d.holes, hole{ho.first, first - 1})
	}
	if last < ho.last && more {
		d.holes = append(d.holes, hole{last + 1, ho.last})
	}
	if !more {
		d.total = last + 1
	}
	// RFC 815, step 8: no hole left, the datagram is complete. The tail
	// hole only goes with the last fragment, so total is known here.
	if len(d.holes) > 0 {
		return nil, DropNone
	}
	return r.complete(d), DropNone
}

// grow makes d.buf hold payload bytes up to end and charges that and one
// more fragment record, evicting older datagrams to make room; false if it
// cannot.
func (r *reassembler) grow(d *datagram, end int, stats *Stats) bool {
	need := reserve + end
	growth := 0
	newCap := len(d.buf)
	if need > len(d.buf) {
		newCap = min(max(need, 2*len(d.buf)), reserve+header.IPv4MaximumSize)
		growth = newCap - len(d.buf)
	}
	for r.bytes+growth+fragRangeSize > r.maxBytes {
		if !r.evictOldest(d, stats) {
			return false
		}
	}
	if growth > 0 {
		buf := make([]byte, newCap)
		copy(buf, d.buf)
		d.buf = buf
	}
	r.charge(d, growth+fragRangeSize)
	return true
}

// complete builds the reassembled datagram in d's buffer, with fragment
// zero's header (options included) in front, and forgets d. The buffer now
// belongs to the caller.
func (r *reassembler) complete(d *datagram) header.IPv4 {
	hl := d.firstHL
	out := header.IPv4(d.buf[reserve-hl : reserve+d.total])
	copy(out, d.first[:hl])
	out.SetTotalLength(uint16(hl + d.total))
	out.SetFlagsFragmentOffset(out.Flags()&^header.IPv4FlagMoreFragments, 0)
	out.SetChecksum(0)
	out.SetChecksum(out.CalculateChecksum())
	r.remove(d)
	return out
}
