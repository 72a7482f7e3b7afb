package tcp

import (
	"time"

	"saturn/netproc/header"
	"saturn/netproc/tcp/seqnum"
)

// RACK-TLP loss detection (RFC 8985), used in recovery when
// Config.FastLossRecovery is set and SACK was negotiated (otherwise RFC
// 6675's IsLost() or NewReno decide). RACK deems a segment lost once a
// segment sent sufficiently later, by more than the reordering window, has
// been delivered: losses are found by time, not by counting duplicate ACKs
// or SACKed bytes, so a lost retransmission is found the same way as a
// lost original, and a short flight needs no three duplicates.
//
// It needs every outstanding byte's last transmission time. The
// transmission log (txLog) keeps it in a fixed table of ranges of the send
// sequence space above SND.UNA, each with the time it was last sent and
// whether it was SACKed, retransmitted, or deemed lost. Segments sent in
// one Step share a time and become one range; SACK blocks and
// retransmissions split ranges. When the table is full, adjacent ranges
// with the same marks are merged (keeping the later time, which only
// delays a loss verdict); a byte that no range describes counts as in
// flight and is repaired by the retransmission timer. Times are kept in
// microseconds modulo 2^32, compared by their difference: everything
// outstanding was sent within MaxRTO.

// txSlots is the number of ranges the transmission log holds.
const txSlots = 48

// txRange marks.
const (
	txSACKed uint8 = 1 << iota // delivered out of order
	txRetx                     // retransmitted at least once
	txLost                     // deemed lost and not retransmitted since
)

// txRange is a range of outstanding sequence space and when it was last
// sent, in microseconds (usec).
type txRange struct {
	start, end seqnum.Value
	sent       uint32
	flags      uint8
}

// txLog is the transmission log: disjoint ranges within [SND.UNA,
// SND.NXT), sorted.
type txLog struct {
	n uint8
	r [txSlots]txRange
}

// rackState is RACK's state (RFC 8985, 6.1).
type rackState struct {
	log txLog

	xmit    uint32       // RACK.xmit_ts: send time of the most recently sent delivered segment
	endSeq  seqnum.Value // RACK.end_seq
	rtt     uint32       // RACK.rtt, microseconds
	valid   bool         // xmit, endSeq and rtt hold a delivery
	fack    seqnum.Value // RACK.fack: the highest sequence delivered
	minRTT  uint32       // the least RTT seen, microseconds (0: none yet)
	reoSeen bool         // RACK.reordering_seen

	reoMult      uint8        // RACK.reo_wnd_mult
	reoPersist   uint8        // RACK.reo_wnd_persist
	dsackRound   seqnum.Value // RACK.dsack_round: no further increase before SND.UNA passes it
	dsackPending bool         // dsackRound is set
	probe        seqRange     // the last loss probe: a D-SACK of it is expected
	undo         undoState

	// PRR (RFC 6937), during a recovery started by RACK.
	prrDelivered uint32
	prrOut       uint32
	recoverFS    uint32
}

// usec returns t in microseconds modulo 2^32.
func usec(t Time) uint32 { return uint32(int64(t) / int64(time.Microsecond)) }

// usDur converts a difference of usec times to a duration; a negative
// difference gives a negative duration.
func usDur(d uint32) time.Duration { return time.Duration(int32(d)) * time.Microsecond }

// rackOn reports whether RACK does loss detection for this connection.
func (c *Conn) rackOn() bool { return c.cfg.FastLossRecovery && c.sack.ok }

// compact merges the adjacent pair of ranges with the same marks whose
// times are closest, and reports whether it freed a slot.
func (l *txLog) compact() bool {
	best, bestGap := -1, uint32(0)
	for i := 0; i+1 < int(l.n); i++ {
		a, b := &l.r[i], &l.r[i+1]
		if a.end != b.start || a.flags != b.flags {
			continue
		}
		gap := b.sent - a.sent
		if int32(gap) < 0 {
			gap = -gap
		}
		if best < 0 || gap < bestGap {
			best, bestGap = i, gap
		}
	}
	if best < 0 {
		return false
	}
	a, b := &l.r[best], l.r[best+1]
	a.end = b.end
	if int32(b.sent-a.sent) > 0 {
		a.sent = b.sent
	}
	l.remove(best+1, best+2)
	return true
}

// remove deletes ranges [i, j).
func (l *txLog) remove(i, j int) {
	copy(l.r[i:], l.r[j:l.n])
	l.n -= uint8(j - i)
}

// split makes seq a boundary between ranges, if a range holds it, and
// reports whether it could (the table may be full).
func (l *txLog) split(seq seqnum.Value) bool {
	for i := 0; i < int(l.n); i++ {
		r := l.r[i]
		if !r.start.LessThan(seq) || !seq.LessThan(r.end) {
			continue
		}
		if int(l.n) == txSlots {
			if !l.compact() {
				return false
			}
			return l.split(seq)
		}
		copy(l.r[i+1:l.n+1], l.r[i:l.n])
		l.n++
		l.r[i].end = seq
		l.r[i+1].start = seq
		return true
	}
	return true
}

// coalesce merges neighbours that are contiguous and alike in time and
// marks.
func (l *txLog) coalesce() {
	k := 0
	for i := 0; i < int(l.n); i++ {
		if k > 0 {
			p := &l.r[k-1]
			if p.end == l.r[i].start && p.sent == l.r[i].sent && p.flags == l.r[i].flags {
				p.end = l.r[i].end
				continue
			}
		}
		l.r[k] = l.r[i]
		k++
	}
	l.n = uint8(k)
}

// advance drops what a cumulative ACK covers.
func (l *txLog) advance(una seqnum.Value) {
	k := 0
	for i := 0; i < int(l.n); i++ {
		r := l.r[i]
		if r.end.LessThanEq(una) {
			continue
		}
		if r.start.LessThan(una) {
			r.start = una
		}
		l.r[k] = r
		k++
	}
	l.n = uint8(k)
}

// rackSent records the transmission of [s, end) at now: new data is
// appended, a retransmitted range gets the new time and loses its loss
// mark.
func (c *Conn) rackSent(e *env, s, end seqnum.Value) {
	l := &c.rack.log
	now := usec(e.now)
	if c.rec.mode != modeOpen {
		c.rack.prrOut += uint32(s.Size(end))
		c.tm.tlp = 0 // the probe timer counts from the last transmission
	}
	if rEnd := seqnum.Min(end, c.snd.nxt); s.LessThan(rEnd) {
		// A retransmission: split out [s, rEnd) where possible; a range
		// that cannot be split is marked whole (it then looks in flight,
		// which only delays its next loss verdict).
		c.undoRetransmitted(uint32(s.Size(rEnd)))
		l.split(s)
		l.split(rEnd)
		for i := 0; i < int(l.n); i++ {
			r := &l.r[i]
			if r.end.LessThanEq(s) || !r.start.LessThan(rEnd) || r.flags&txSACKed != 0 {
				continue
			}
			r.sent = now
			r.flags = r.flags&^txLost | txRetx
		}
		l.coalesce()
	}
	if !end.GreaterThan(c.snd.nxt) {
		return
	}
	s = seqnum.Max(s, c.snd.nxt)
	if l.n > 0 {
		last := &l.r[l.n-1]
		if last.end == s && last.sent == now && last.flags == 0 {
			last.end = end
			return
		}
	}
	if int(l.n) == txSlots && !l.compact() {
		return // not described: in flight until acknowledged or timed out
	}
	l.r[l.n] = txRange{start: s, end: end, sent: now}
	l.n++
}

// rackDelivered updates RACK with a range delivered (cumulatively
// acknowledged or SACKed) by the ACK being processed (RFC 8985, 6.2,
// steps 1 to 3), and returns its length for PRR's DeliveredData.
func (c *Conn) rackDelivered(e *env, r txRange) uint32 {
	rk := &c.rack
	c.frtoNoteDelivered(e, r)
	rtt := usec(e.now) - r.sent
	if r.flags&txRetx != 0 && rk.minRTT != 0 && int32(rtt) < int32(rk.minRTT) {
		// Step 2: an ACK quicker than any round trip answers the original
		// transmission, not the retransmission: ambiguous, ignored.
		return uint32(r.start.Size(r.end))
	}
	if r.flags&txRetx == 0 && int32(rtt) > 0 && (rk.minRTT == 0 || rtt < rk.minRTT) {
		rk.minRTT = rtt
	}
	if int32(rtt) >= 0 && (!rk.valid || int32(r.sent-rk.xmit) > 0 || r.sent == rk.xmit && r.end.GreaterThan(rk.endSeq)) {
		rk.xmit, rk.endSeq, rk.rtt, rk.valid = r.sent, r.end, rtt, true
	}
	// Step 3: a never retransmitted segment delivered below the highest
	// one delivered was reordered.
	if r.flags&txRetx == 0 && r.end.LessThan(rk.fack) {
		rk.reoSeen = true
	}
	rk.fack = seqnum.Max(rk.fack, r.end)
	return uint32(r.start.Size(r.end))
}

// rackOnAck runs RACK's part of an acceptable ACK, before the scoreboard
// and SND.UNA move: it marks what the ACK delivers (blocks are its SACK
// blocks without any D-SACK) and returns the bytes newly delivered.
func (c *Conn) rackOnAck(e *env, ack seqnum.Value, blocks []seqRange) uint32 {
	l := &c.rack.log
	var delivered uint32
	for _, b := range blocks {
		s, end := seqnum.Max(b.start, ack), seqnum.Min(b.end, c.snd.nxt)
		if !s.LessThan(end) {
			continue
		}
		l.split(s)
		l.split(end)
		for i := 0; i < int(l.n); i++ {
			r := &l.r[i]
			if r.flags&txSACKed != 0 || r.start.LessThan(s) || r.end.GreaterThan(end) {
				continue
			}
			delivered += c.rackDelivered(e, *r)
			r.flags = (r.flags | txSACKed) &^ txLost
		}
	}
	if ack.GreaterThan(c.snd.una) {
		// Bytes no range describes count too.
		delivered += uint32(c.snd.una.Size(ack))
		for i := 0; i < int(l.n); i++ {
			r := l.r[i]
			if !r.start.LessThan(ack) {
				break
			}
			part := r
			part.end = seqnum.Min(r.end, ack)
			if r.flags&txSACKed != 0 {
				delivered -= uint32(part.start.Size(part.end))
				continue
			}
			c.rackDelivered(e, part)
		}
		l.advance(ack)
	}
	l.coalesce()
	return delivered
}

// reoWnd returns RACK's reordering window (RFC 8985, 6.2, step 4).
func (c *Conn) reoWnd() time.Duration {
	rk := &c.rack
	if !rk.reoSeen {
		if c.rec.mode != modeOpen {
			return 0
		}
		if c.rackSACKedSegs() >= dupThresh {
			return 0
		}
	}
	w := usDur(rk.minRTT) / 4 * time.Duration(max(rk.reoMult, 1))
	// Capped at SRTT; the timestamp clock's milliseconds may make SRTT
	// zero on a fast path, so at least the least RTT seen.
	if c.rtt.sampled {
		w = min(w, max(c.rtt.srtt, usDur(rk.minRTT)))
	}
	return w
}

// rackSACKedSegs returns the SACKed bytes in full segments.
func (c *Conn) rackSACKedSegs() uint32 {
	var n uint32
	for i := 0; i < int(c.rack.log.n); i++ {
		if r := c.rack.log.r[i]; r.flags&txSACKed != 0 {
			n += uint32(r.start.Size(r.end))
		}
	}
	return n / c.payloadMax()
}

// rackDetect marks as lost every outstanding range sent before the most
// recently sent delivered one by more than RACK.rtt plus the reordering
// window (RFC 8985, 6.2, step 5), and arms the reordering timer for the
// ranges that may yet be marked. It reports whether it marked any.
func (c *Conn) rackDetect(e *env) bool {
	rk := &c.rack
	c.tm.reo = 0
	if !rk.valid {
		return false
	}
	now := usec(e.now)
	wnd := c.reoWnd()
	var timeout time.Duration
	marked := false
	l := &rk.log
	for i := 0; i < int(l.n); i++ {
		r := &l.r[i]
		if r.flags&(txSACKed|txLost) != 0 {
			continue
		}
		// Only segments sent before RACK's segment can be judged by it.
		if !(int32(rk.xmit-r.sent) > 0 || rk.xmit == r.sent && r.end.LessThanEq(rk.endSeq)) {
			continue
		}
		remaining := usDur(r.sent-now) + usDur(rk.rtt) + wnd
		if remaining <= 0 {
			r.flags |= txLost
			marked = true
		} else {
			timeout = max(timeout, remaining)
		}
	}
	if timeout > 0 {
		c.tm.reo = e.now.Add(timeout)
	}
	if marked {
		l.coalesce()
	}
	return marked
}

// rackLost reports whether any outstanding range is marked lost.
func (c *Conn) rackLost() bool {
	for i := 0; i < int(c.rack.log.n); i++ {
		if c.rack.log.r[i].flags&txLost != 0 {
			return true
		}
	}
	return false
}

// rackPipe is RFC 6675's pipe with RACK's marks: outstanding bytes neither
// SACKed nor deemed lost (a retransmitted range counts once, as in flight).
func (c *Conn) rackPipe() uint32 {
	out := uint32(c.snd.una.Size(c.snd.nxt))
	for i := 0; i < int(c.rack.log.n); i++ {
		if r := c.rack.log.r[i]; r.flags&(txSACKed|txLost) != 0 {
			out -= uint32(r.start.Size(r.end))
		}
	}
	return out
}

// rackNextLost returns the start and end of the first range deemed lost.
func (c *Conn) rackNextLost() (seqnum.Value, seqnum.Value, bool) {
	for i := 0; i < int(c.rack.log.n); i++ {
		if r := c.rack.log.r[i]; r.flags&txLost != 0 {
			return r.start, r.end, true
		}
	}
	return 0, 0, false
}

// rackOnTimeout marks the outstanding data lost after a retransmission
// timeout (RFC 8985, 6.3): the segment at SND.UNA, and every unSACKed one
// sent more than RACK.rtt plus the reordering window ago. SACK marks are
// kept unless this is a further timeout of the same data, when the
// receiver may have reneged (RFC 2018, 8) and they are forgotten.
func (c *Conn) rackOnTimeout(e *env, repeated bool) {
	l := &c.rack.log
	if repeated {
		// Start over: one range, all of it lost.
		l.n = 0
		c.sack.reset()
	}
	if l.n == 0 || l.r[0].start != c.snd.una {
		if int(l.n) == txSlots {
			l.compact()
		}
		if int(l.n) < txSlots {
			end := c.snd.nxt
			if l.n > 0 {
				end = l.r[0].start
			}
			copy(l.r[1:l.n+1], l.r[:l.n])
			l.r[0] = txRange{start: c.snd.una, end: end, sent: usec(e.now)}
			l.n++
		}
	}
	now := usec(e.now)
	wnd := c.reoWnd()
	for i := 0; i < int(l.n); i++ {
		r := &l.r[i]
		if r.flags&txSACKed != 0 {
			continue
		}
		if r.start == c.snd.una || usDur(r.sent-now)+usDur(c.rack.rtt)+wnd <= 0 {
			r.flags |= txLost
		}
	}
	// Bytes above the last range were sent but not described: lost too.
	if l.n > 0 && l.r[l.n-1].end.LessThan(c.snd.nxt) && int(l.n) < txSlots {
		l.r[l.n] = txRange{start: l.r[l.n-1].end, end: c.snd.nxt, sent: now, flags: txLost}
		l.n++
	}
	l.coalesce()
	c.tm.reo = 0
}

// prrUpdate sets cwnd for the ACK that delivered bytes during a recovery
// (RFC 6937, 3.1, with PRR-SSRB): the window falls to ssthresh in
// proportion to the data delivered, rather than at once, and grows back
// towards it by slow start when pipe falls below it.
func (c *Conn) prrUpdate(delivered uint32) {
	if c.bbrOn() {
		return // BBR sets the window of a recovery itself (bbr.go)
	}
	rk := &c.rack
	mss := c.payloadMax()
	rk.prrDelivered += delivered
	pipe := c.rackPipe()
	ssthresh := c.cc.Ssthresh
	var sndcnt int64
	if pipe > ssthresh {
		fs := max(rk.recoverFS, 1)
		sndcnt = int64((uint64(rk.prrDelivered)*uint64(ssthresh)+uint64(fs)-1)/uint64(fs)) - int64(rk.prrOut)
	} else {
		limit := max(int64(rk.prrDelivered)-int64(rk.prrOut), int64(delivered)) + int64(mss)
		sndcnt = min(int64(ssthresh-pipe), limit)
	}
	if rk.prrOut == 0 {
		// The first retransmission goes whatever the count (RFC 6675, 5,
		// step 4.3).
		sndcnt = max(sndcnt, int64(mss))
	}
	sndcnt = max(sndcnt, 0)
	c.cc.Cwnd = max(pipe+uint32(sndcnt), mss)
}

// rackAfterAck finishes an ACK's processing: loss detection, the start of
// a recovery when it found a loss, and PRR's window while one lasts.
func (c *Conn) rackAfterAck(e *env, delivered uint32) {
	if c.snd.una == c.snd.nxt {
		c.tm.reo = 0
		return
	}
	c.rackDetect(e)
	if c.rec.mode == modeOpen && c.rackLost() && !c.pmtuProbeLost(e) {
		c.enterRecovery(e)
	}
	if c.rec.mode == modeSACK {
		c.prrUpdate(delivered)
		if delivered > 0 {
			c.tm.tlp = 0 // progress: the probe timer starts again from here
		}
	}
}

// rackTimerFired runs loss detection when the reordering timer expires:
// segments sent before the last delivered one have now had RACK.rtt plus
// the reordering window to arrive.
func (c *Conn) rackTimerFired(e *env) {
	if !c.rackOn() || !c.canSendData() || c.snd.una == c.snd.nxt {
		return
	}
	c.rackDetect(e)
	if c.rec.mode == modeOpen && c.rackLost() && !c.pmtuProbeLost(e) {
		c.enterRecovery(e)
		c.prrUpdate(0)
	}
	c.output(e)
}

// rackRecoveryEnded ages the widened reordering window: after 16
// recoveries without a D-SACK it returns to its base (RFC 8985, 6.2,
// step 4).
func (c *Conn) rackRecoveryEnded() {
	rk := &c.rack
	if rk.reoPersist > 0 {
		rk.reoPersist--
		if rk.reoPersist == 0 {
			rk.reoMult = 1
		}
	}
}

// rackDSACK widens the reordering window on a D-SACK, at most once a
// round trip (RFC 8985, 6.2, step 4): a segment arrived twice, so a
// retransmission was spurious or the network duplicates.
//
// A D-SACK of the last loss probe is ignored: with RACK the probe repeats
// the last segment, and a D-SACK is what it is expected to draw.
func (c *Conn) rackDSACK(b seqRange) {
	rk := &c.rack
	if rk.probe.start.LessThanEq(b.start) && b.end.LessThanEq(rk.probe.end) {
		return
	}
	if rk.dsackPending && c.snd.una.GreaterThanEq(rk.dsackRound) {
		rk.dsackPending = false
	}
	if rk.dsackPending {
		return
	}
	rk.dsackPending, rk.dsackRound = true, c.snd.nxt
	rk.reoMult = max(rk.reoMult, 1)
	if rk.reoMult < 255 {
		rk.reoMult++
	}
	rk.reoPersist = 16
	rk.reoSeen = true
}

// isDSACK reports whether an ACK's first SACK block is a D-SACK
// (RFC 2883, 4): it lies below the cumulative acknowledgment, or within
// the second block. A block outside what could have been sent (below
// SND.UNA by more than the largest window, or beyond SND.NXT) is bogus,
// not a D-SACK, as Linux's tcp_is_sackblock_valid judges.
func (c *Conn) isDSACK(blocks []header.SACKBlock, ack seqnum.Value) bool {
	if len(blocks) == 0 {
		return false
	}
	s, e := seqnum.Value(blocks[0].Start), seqnum.Value(blocks[0].End)
	if !s.LessThan(e) || s.LessThan(c.snd.una.Sub(seqnum.Size(c.snd.maxWnd))) || e.GreaterThan(c.snd.nxt) {
		return false
	}
	if e.LessThanEq(ack) {
		return true
	}
	if len(blocks) > 1 {
		s2, e2 := seqnum.Value(blocks[1].Start), seqnum.Value(blocks[1].End)
		return s2.LessThanEq(s) && e.LessThanEq(e2)
	}
	return false
}
