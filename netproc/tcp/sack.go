package tcp

import (
	"saturn/netproc/header"
	"saturn/netproc/tcp/seqnum"
)

// seqRange is a half-open range [start, end) of sequence numbers.
type seqRange struct {
	start, end seqnum.Value
}

// scoreboard is the sender's record of SACKed data (RFC 6675, 3): disjoint
// ranges above SND.UNA, sorted by sequence number, in a fixed table. When
// the table is full the highest range is forgotten, which only makes the
// sender more conservative.
type scoreboard struct {
	ok     bool // SACK negotiated (RFC 2018, 2)
	n      uint8
	blocks [sackSlots]seqRange
}

// reset forgets every SACKed range, as after a timeout (RFC 2018, 8).
func (sb *scoreboard) reset() { sb.n = 0 }

// update records the SACK blocks of an ACK (RFC 6675, Update()) and reports
// whether anything new was learned. Blocks outside (una, nxt] are ignored:
// they are stale, D-SACKs (RFC 2883), or bogus.
func (sb *scoreboard) update(blocks []header.SACKBlock, una, nxt seqnum.Value) bool {
	changed := false
	for _, b := range blocks {
		s, e := seqnum.Value(b.Start), seqnum.Value(b.End)
		if !s.LessThan(e) || s.LessThan(una) || e.GreaterThan(nxt) {
			continue
		}
		if sb.insert(s, e) {
			changed = true
		}
	}
	return changed
}

// insert merges [s, e) into the table and reports whether it covered any
// byte not covered before.
func (sb *scoreboard) insert(s, e seqnum.Value) bool {
	n := int(sb.n)
	// Find the first range that ends at or after s.
	i := 0
	for i < n && sb.blocks[i].end.LessThan(s) {
		i++
	}
	// Already covered?
	if i < n && sb.blocks[i].start.LessThanEq(s) && e.LessThanEq(sb.blocks[i].end) {
		return false
	}
	// Merge every range that touches [s, e).
	j := i
	for j < n && sb.blocks[j].start.LessThanEq(e) {
		s = seqnum.Min(s, sb.blocks[j].start)
		e = seqnum.Max(e, sb.blocks[j].end)
		j++
	}
	merged := seqRange{s, e}
	if j > i {
		// Replace blocks[i:j] with the merged range.
		sb.blocks[i] = merged
		copy(sb.blocks[i+1:], sb.blocks[j:n])
		sb.n = uint8(n - (j - i) + 1)
		return true
	}
	// Insert at i, forgetting the highest range if the table is full.
	if n == len(sb.blocks) {
		if i == n {
			return false
		}
		n--
	}
	copy(sb.blocks[i+1:n+1], sb.blocks[i:n])
	sb.blocks[i] = merged
	sb.n = uint8(n + 1)
	return true
}

// advance drops what a new cumulative ACK covers.
func (sb *scoreboard) advance(una seqnum.Value) {
	n := int(sb.n)
	k := 0
	for i := 0; i < n; i++ {
		b := sb.blocks[i]
		if b.end.LessThanEq(una) {
			continue
		}
		if b.start.LessThan(una) {
			b.start = una
		}
		sb.blocks[k] = b
		k++
	}
	sb.n = uint8(k)
}

// sackedIn returns the SACKed bytes within [s, e).
func (sb *scoreboard) sackedIn(s, e seqnum.Value) uint32 {
	var sum uint32
	for i := 0; i < int(sb.n); i++ {
		if a, b, ok := seqnum.Overlap(sb.blocks[i].start, sb.blocks[i].end, s, e); ok {
			sum += uint32(a.Size(b))
		}
	}
	return sum
}

// lostEdge implements RFC 6675's IsLost() for every sequence number at
// once: bytes below the returned edge that are not SACKed are deemed lost,
// because either DupThresh (3) SACKed ranges or more than (DupThresh-1)*SMSS
// SACKed bytes lie above them. It returns una when nothing is lost.
func (sb *scoreboard) lostEdge(una seqnum.Value, mss uint32) seqnum.Value {
	const dupThresh = 3
	threshold := (dupThresh-1)*mss + 1
	edge := una
	var above uint32
	for i := int(sb.n) - 1; i >= 0; i-- {
		b := sb.blocks[i]
		size := uint32(b.start.Size(b.end))
		if above+size >= threshold {
			edge = seqnum.Max(edge, b.end.Sub(seqnum.Size(threshold-above)))
			break
		}
		above += size
		if int(sb.n)-i >= dupThresh {
			edge = seqnum.Max(edge, b.start)
			break
		}
	}
	return edge
}

// nextHole returns the first byte at or after s that is not SACKed, and the
// start of the next SACKed range above it (or limit when none is below it).
func (sb *scoreboard) nextHole(s, limit seqnum.Value) (seqnum.Value, seqnum.Value) {
	for i := 0; i < int(sb.n); i++ {
		b := sb.blocks[i]
		if b.end.LessThanEq(s) {
			continue
		}
		if b.start.LessThanEq(s) {
			s = b.end
			continue
		}
		return s, seqnum.Min(b.start, limit)
	}
	return s, limit
}
