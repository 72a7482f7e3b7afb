package tcp

import (
	"saturn/netproc/tcp/seqnum"
)

// recoveryMode is the sender's loss-recovery state.
type recoveryMode uint8

const (
	modeOpen    recoveryMode = iota // no loss being repaired
	modeSACK                        // SACK-based recovery (RFC 6675)
	modeNewReno                     // fast recovery without SACK (RFC 6582)
	modeLoss                        // after a retransmission timeout (RFC 5681, 3.1; RFC 6298, 5)
)

func (m recoveryMode) String() string {
	return [...]string{"open", "sack", "newreno", "loss"}[m]
}

// dupThresh is the duplicate-ACK threshold (RFC 5681, 3.2).
const dupThresh = 3

// recovery holds the loss-recovery variables.
type recovery struct {
	mode    recoveryMode
	dupAcks uint8
	// recover is RFC 6582's "recover" and RFC 6675's RecoveryPoint: the
	// highest sequence sent when recovery began. Recovery ends when it is
	// acknowledged.
	recover seqnum.Value
	// highRxt is RFC 6675's HighRxt: retransmissions have covered the
	// holes below it.
	highRxt seqnum.Value
	// unaRxt says the segment at SND.UNA was retransmitted in this
	// recovery, when SND.NXT was unaRxtNxt (or SND.UNA reached it after its
	// retransmission, when SND.NXT was unaRxtNxt). See lostRetransmit.
	unaRxt    bool
	unaRxtNxt seqnum.Value
	// frto is where F-RTO stands after a timeout (frto.go).
	frto frtoStep
}

// lostRetransmit detects a lost retransmission of the segment at SND.UNA
// during SACK recovery, which RFC 6675 leaves to the retransmission timer:
// once data sent after that retransmission has been SACKed, by more than
// the reordering allowance of IsLost() (DupThresh-1 segments), the
// retransmission should have arrived, and is deemed lost (Linux's
// tcp_mark_lost_retrans, and the idea of RACK, RFC 8985, 6.2). HighRxt
// goes back to SND.UNA so that NextSeg() retransmits the hole again, in
// the same recovery and without a further reduction of the window. At 5%
// loss one retransmission in twenty is lost; each cost an RTO before.
func (c *Conn) lostRetransmit(e *env) {
	r := &c.rec
	if !c.cfg.FastLossRecovery || c.rackOn() || r.mode != modeSACK || !r.unaRxt || c.sack.n == 0 {
		return
	}
	highest := c.sack.blocks[c.sack.n-1].end
	allowance := seqnum.Size((dupThresh - 1) * uint32(c.snd.mss))
	if !highest.GreaterThan(r.unaRxtNxt.Add(allowance)) {
		return
	}
	e.st.LostRetransmits++
	r.unaRxt = false
	r.highRxt = c.snd.una
}

// ccEvent fills the fields every congestion event needs.
func (c *Conn) ccEvent(e *env) CCEvent {
	return CCEvent{Now: e.now, MSS: uint32(c.snd.mss), Flight: c.pipe(), SRTT: c.rtt.srtt}
}

// lostEdge returns the sequence number below which unSACKed data is deemed
// lost.
func (c *Conn) lostEdge() seqnum.Value {
	switch c.rec.mode {
	case modeLoss:
		// After a timeout everything sent before it is lost.
		return seqnum.Max(c.rec.recover, c.sack.lostEdge(c.snd.una, uint32(c.snd.mss)))
	case modeSACK:
		return c.sack.lostEdge(c.snd.una, uint32(c.snd.mss))
	}
	return c.snd.una
}

// pipe estimates the bytes in flight (RFC 6675's pipe): outstanding bytes
// that are neither SACKed nor deemed lost, plus the lost bytes already
// retransmitted.
func (c *Conn) pipe() uint32 {
	if c.rackOn() {
		return c.rackPipe()
	}
	una, nxt := c.snd.una, c.snd.nxt
	out := uint32(una.Size(nxt)) - c.sack.sackedIn(una, nxt)
	lost := c.lostEdge()
	from := seqnum.Max(c.rec.highRxt, una)
	if from.LessThan(lost) {
		out -= uint32(from.Size(lost)) - c.sack.sackedIn(from, lost)
	}
	return out
}

// enterLoss reacts to a retransmission timeout: collapse the window, forget
// SACK information (the receiver may have reneged, RFC 2018, 8), and go back
// to retransmitting from SND.UNA.
func (c *Conn) enterLoss(e *env) {
	ev := c.ccEvent(e)
	ev.Repeated = c.rec.mode == modeLoss && c.rtt.backoff > 1
	wasOpen := c.rec.mode == modeOpen
	cwnd, ssthresh := c.cc.Cwnd, c.cc.Ssthresh
	c.cwvBeforeReduction(ev.Flight)
	ccFor(c.cc.Algo).OnTimeout(&c.cc, ev)
	if c.rackOn() {
		if !ev.Repeated {
			c.undoStart(true, cwnd, ssthresh, e.now)
		} else {
			c.rack.undo.valid = false
		}
		c.rackOnTimeout(e, ev.Repeated)
	} else {
		c.sack.reset()
	}
	c.rec = recovery{mode: modeLoss, recover: c.snd.nxt, highRxt: c.snd.una}
	c.rtt.timing = false // Karn: nothing in flight may be timed
	c.frtoStart(e, wasOpen && !ev.Repeated, cwnd, ssthresh)
}

// enterRecovery starts fast retransmit and fast recovery, SACK-based when
// SACK was negotiated (RFC 6675, 5) and NewReno otherwise (RFC 6582, 3.2).
func (c *Conn) enterRecovery(e *env) {
	e.st.FastRetransmits++
	cwnd, ssthresh := c.cc.Cwnd, c.cc.Ssthresh
	mss := uint32(c.snd.mss)
	flight := c.snd.una.Size(c.snd.nxt)
	ev := c.ccEvent(e)
	ev.Flight = uint32(flight) // FlightSize of RFC 5681, equation (4)
	c.cwvBeforeReduction(ev.Flight)
	if c.sack.ok {
		e.st.SACKRecoveries++
		ccFor(c.cc.Algo).OnCongestion(&c.cc, ev)
		c.rec.mode = modeSACK
	} else {
		e.st.RenoRecoveries++
		ccFor(c.cc.Algo).OnCongestion(&c.cc, ev)
		// Inflate by the three segments that left the network
		// (RFC 6582, 3.2, step 2).
		c.cc.Cwnd = c.cc.Ssthresh + dupThresh*mss
		c.rec.mode = modeNewReno
	}
	c.rec.recover = c.snd.nxt
	if c.rackOn() {
		c.undoStart(false, cwnd, ssthresh, e.now)
		// RACK marked what is lost; output sends it as PRR allows.
		c.rack.prrDelivered, c.rack.prrOut = 0, 0
		c.rack.recoverFS = uint32(flight)
		return
	}
	// Retransmit the first unacknowledged segment at once (RFC 6675, 5,
	// step 4.3; RFC 6582, step 2), whatever pipe says.
	end := c.retransmitFrom(e, c.snd.una)
	c.rec.highRxt = end
}

// retransmitFrom retransmits one segment starting at s, ending at a SACKed
// range, at SND.NXT or after one MSS, and returns its end.
func (c *Conn) retransmitFrom(e *env, s seqnum.Value) seqnum.Value {
	limit := seqnum.Min(s.Add(seqnum.Size(c.payloadMax())), c.snd.nxt)
	_, end := c.sack.nextHole(s, limit)
	if !s.LessThan(end) {
		return s
	}
	if s == c.snd.una {
		c.rec.unaRxt, c.rec.unaRxtNxt = true, c.snd.nxt
	}
	c.sendRange(e, s, end)
	return end
}

// nextLost returns the start of the next segment RFC 6675's NextSeg()
// rule 1 would retransmit: the first byte at or above HighRxt that is
// neither SACKed nor beyond the lost edge.
func (c *Conn) nextLost() (seqnum.Value, bool) {
	from := seqnum.Max(c.rec.highRxt, c.snd.una)
	lost := c.lostEdge()
	if !from.LessThan(lost) {
		return 0, false
	}
	s, _ := c.sack.nextHole(from, lost)
	if !s.LessThan(lost) {
		return 0, false
	}
	return s, true
}

// duplicateAck counts a duplicate ACK and starts recovery when it is time
// (RFC 5681, 3.2; RFC 6675, 5; RFC 6582, 3.2).
func (c *Conn) duplicateAck(e *env) {
	if c.rec.dupAcks < 255 {
		c.rec.dupAcks++
	}
	switch c.rec.mode {
	case modeOpen:
		if c.rackOn() {
			return // RACK decides (rackDetect)
		}
		lost := c.sack.ok && c.sack.lostEdge(c.snd.una, uint32(c.snd.mss)).GreaterThan(c.snd.una)
		if (c.rec.dupAcks >= dupThresh || lost || c.earlyRetransmit()) && !c.pmtuProbeLost(e) {
			// RFC 6582, 3.2 step 1: no new recovery until data sent after
			// the last one began is acknowledged (avoids multiple
			// reductions for one window); SACK recovery needs no such guard
			// because the scoreboard tells new losses from old.
			if c.sack.ok || c.snd.una.GreaterThanEq(c.rec.recover) {
				c.enterRecovery(e)
			}
		}
	case modeNewReno:
		// Each further duplicate means a segment left the network
		// (RFC 6582, 3.2, step 3).
		c.cc.Cwnd += uint32(c.snd.mss)
	}
}

// recoveryOnAck updates recovery when an ACK advances SND.UNA by acked
// bytes. It returns whether the congestion controller should also see the
// ACK (it does not during fast recovery).
func (c *Conn) recoveryOnAck(e *env, acked uint32) bool {
	r := &c.rec
	r.dupAcks = 0
	// The segment now at SND.UNA: if it was retransmitted, watch that
	// retransmission from here on (see lostRetransmit).
	r.unaRxt = r.highRxt.GreaterThan(c.snd.una)
	r.unaRxtNxt = c.snd.nxt
	r.highRxt = seqnum.Max(r.highRxt, c.snd.una)
	mss := uint32(c.snd.mss)
	switch r.mode {
	case modeSACK:
		if c.snd.una.GreaterThanEq(r.recover) {
			r.mode = modeOpen // RFC 6675, 5: recovery ends; cwnd stays ssthresh
			c.cc.Cwnd = c.cc.Ssthresh
			c.rackRecoveryEnded()
		}
		return false
	case modeNewReno:
		if c.snd.una.GreaterThanEq(r.recover) {
			// Full acknowledgment (RFC 6582, 3.2, step 3): deflate.
			flight := uint32(c.snd.una.Size(c.snd.nxt))
			c.cc.Cwnd = min(c.cc.Ssthresh, max(flight, mss)+mss)
			r.mode = modeOpen
			return false
		}
		// Partial acknowledgment (step 4): retransmit the next hole,
		// deflate by the amount acknowledged, add back one SMSS if that
		// was at least one SMSS. The caller restarts the timer on every
		// partial ACK (RFC 6582's "slow-but-steady" variant).
		c.retransmitFrom(e, c.snd.una)
		if acked < c.cc.Cwnd {
			c.cc.Cwnd -= acked
		} else {
			c.cc.Cwnd = mss
		}
		if acked >= mss {
			c.cc.Cwnd += mss
		}
		c.cc.Cwnd = max(c.cc.Cwnd, mss)
		return false
	case modeLoss:
		if c.snd.una.GreaterThanEq(r.recover) {
			r.mode = modeOpen
			c.rackRecoveryEnded()
		}
		return true // slow start after a timeout (RFC 5681, 3.1)
	}
	return true
}

// earlyRetransmit applies RFC 5827's early retransmit, SACK variant: with
// fewer than four segments outstanding and no new segment able to go (no
// data, or the peer's window or cwnd full), three duplicate ACKs may never
// come; the threshold becomes the outstanding segments less one, counted
// as SACKed segments. (Linux applied the same test, cwnd included, before
// RACK took over.)
func (c *Conn) earlyRetransmit() bool {
	if !c.cfg.FastLossRecovery || !c.sack.ok {
		return false
	}
	mss := c.payloadMax()
	flight := uint32(c.snd.una.Size(c.snd.nxt))
	oldSegs := (flight + mss - 1) / mss
	if oldSegs < 2 || oldSegs >= 4 {
		return false
	}
	canSend := c.dataEnd().GreaterThan(c.snd.nxt) && c.windowRoom() >= mss && c.pipe()+mss <= c.cc.Cwnd
	if canSend {
		return false
	}
	sacked := c.sack.sackedIn(c.snd.una, c.snd.nxt)
	return sacked+mss/2 >= (oldSegs-1)*mss
}
