package tcp

import (
	"time"

	"saturn/netproc/tcp/seqnum"
)

// timers holds the connection's deadlines; zero means not armed. The caller
// sees only the earliest (Output.Timer).
type timers struct {
	rto     Time // retransmission (RFC 6298), also for SYN and FIN
	delack  Time // delayed ACK (RFC 9293, 3.8.6.3)
	persist Time // zero-window probe and SWS override (RFC 9293, 3.8.6.1)
	keep    Time // keep-alive (RFC 9293, 3.8.4)
	close   Time // TIME-WAIT or orphaned FIN-WAIT-2 expiry
	tlp     Time // tail loss probe (RFC 8985, 7)
	reo     Time // RACK's reordering timer (RFC 8985, 6.2, step 5)
	pace    Time // pacing: data waits to go (BBR only, bbr.go)

	persistBackoff uint8
	keepProbes     uint8
	tlpSent        uint8 // loss probes sent since an ACK last advanced SND.UNA
}

// nextDeadline returns the earliest armed deadline, or zero.
func (c *Conn) nextDeadline() Time {
	var d Time
	for _, t := range [...]Time{c.tm.rto, c.tm.delack, c.tm.persist, c.tm.keep, c.tm.close, c.tm.tlp, c.tm.reo, c.tm.pace} {
		if t != 0 && (d == 0 || t < d) {
			d = t
		}
	}
	return d
}

// fired reports whether the deadline *d is armed and has passed at now, and
// if so disarms it, before its handler may arm it again.
func fired(d *Time, now Time) bool {
	if *d == 0 || now < *d {
		return false
	}
	*d = 0
	return true
}

// timerFired runs every deadline that has passed.
func (c *Conn) timerFired(e *env) {
	now := e.now
	if fired(&c.tm.close, now) {
		// TIME-WAIT is over, or an orphan waited too long in FIN-WAIT-2.
		c.closed(e, errNone)
		return
	}
	if fired(&c.tm.rto, now) {
		c.retransmitTimeout(e)
		if c.state == StateClosed {
			return
		}
	}
	if fired(&c.tm.reo, now) {
		c.rackTimerFired(e)
	}
	if fired(&c.tm.tlp, now) {
		c.lossProbe(e)
		c.armLossProbe(e) // the next probe, if another may follow
	}
	if fired(&c.tm.pace, now) {
		c.output(e)
	}
	if fired(&c.tm.persist, now) {
		c.persistFired(e)
	}
	if fired(&c.tm.keep, now) {
		c.keepaliveFired(e)
		if c.state == StateClosed {
			return
		}
	}
	if fired(&c.tm.delack, now) {
		if c.rcv.ackPending() {
			e.st.DelayedACKs++
			c.sendACK(e)
		}
	}
}

// rttState holds the RFC 6298 estimator and the one timed segment used when
// timestamps are off.
type rttState struct {
	srtt, rttvar time.Duration
	rto          time.Duration
	sampled      bool  // srtt holds a measurement
	backoff      uint8 // consecutive timeouts without progress
	synRetx      bool  // the SYN or SYN-ACK was retransmitted (RFC 6298, 5.7; RFC 5681, 3.1)

	timing    bool
	timedSeq  seqnum.Value // the timed segment's end
	timedSent Time

	// retxEnd is the end of the highest retransmitted range. An ACK that
	// covers retransmitted bytes gives no timestamp sample: the receiver
	// echoes the TSval of the original, not of the retransmission
	// (RFC 7323, 4.3), and a sample that includes the timeout would feed
	// back into an ever larger RTO.
	retxEnd seqnum.Value
}

// sample feeds one RTT measurement to the estimator (RFC 6298, 2.2, 2.3).
func (c *Conn) sample(r time.Duration) {
	if r < 0 {
		return
	}
	t := &c.rtt
	if !t.sampled {
		t.srtt = r
		t.rttvar = r / 2
		t.sampled = true
	} else {
		d := t.srtt - r
		if d < 0 {
			d = -d
		}
		t.rttvar = (3*t.rttvar + d) / 4
		t.srtt = (7*t.srtt + r) / 8
	}
	// G, the clock granularity, is 1ms for the timestamp clock.
	k := max(4*t.rttvar, time.Millisecond)
	t.rto = min(max(t.srtt+k, c.cfg.MinRTO), c.cfg.MaxRTO)
}

// currentRTO returns the RTO with the exponential back-off applied
// (RFC 6298, 5.5), capped at MaxRTO.
func (c *Conn) currentRTO() time.Duration {
	r := c.rtt.rto
	for i := uint8(0); i < c.rtt.backoff && r < c.cfg.MaxRTO; i++ {
		r *= 2
	}
	return min(r, c.cfg.MaxRTO)
}

// armRTO starts the retransmission timer unless it is running
// (RFC 6298, 5.1).
func (c *Conn) armRTO(e *env) {
	if c.tm.rto == 0 {
		c.tm.rto = e.now.Add(c.currentRTO())
	}
}

// timedOut gives up on the peer after the last retransmission or
// keep-alive probe went unanswered: the connection fails with ETIMEDOUT
// (RFC 9293, 3.8.3, R2; RFC 1122, 4.2.3.6).
func (c *Conn) timedOut(e *env) {
	e.st.AbortOnTimeout++
	c.closed(e, errTimeout)
}

// retransmitTimeout handles the RTO expiry (RFC 6298, 5.4-5.6).
func (c *Conn) retransmitTimeout(e *env) {
	switch c.state {
	case StateSynSent, StateSynReceived:
		if c.rtt.backoff >= c.cfg.SynRetries {
			c.timedOut(e)
			return
		}
		c.rtt.backoff++
		c.rtt.synRetx = true
		c.rtt.timing = false
		e.st.Timeouts++
		e.st.RetransSegs++
		c.sendSYN(e)
		c.armRTO(e)
		return
	case StateClosed, StateTimeWait, StateFinWait2:
		return
	}
	if c.snd.una == c.snd.nxt {
		return // everything was acknowledged meanwhile
	}
	if c.rtt.backoff >= c.cfg.Retries {
		c.timedOut(e)
		return
	}
	c.rtt.backoff++
	e.st.Timeouts++
	if !c.pmtuOnTimeout(e) {
		c.enterLoss(e)
	}
	c.output(e)
	c.armRTO(e)
}

// persistFired sends a window probe, or, if the window has opened a little
// but not enough for the SWS rules, the data that fits (the "override
// timeout" of RFC 9293, 3.8.6.2.1).
func (c *Conn) persistFired(e *env) {
	if !c.needPersist() {
		return
	}
	if room := c.windowRoom(); room > 0 {
		c.sendNew(e, c.payloadMax(), room, true)
	} else {
		e.st.ZeroWindowProbes++
		// Like Linux, probe with a segment one below SND.UNA: any receiver
		// answers it with an ACK carrying its current window, and it holds
		// no data that a zero window would refuse.
		c.transmit(e, Segment{Seq: c.snd.una - 1, Flags: FlagACK})
	}
	if c.tm.persistBackoff < 16 {
		c.tm.persistBackoff++
	}
	c.armPersist(e)
}

// needPersist reports whether data waits to be sent while nothing is in
// flight, so that only a timer can get it moving again.
func (c *Conn) needPersist() bool {
	if !c.canSendData() || c.snd.una != c.snd.nxt {
		return false
	}
	return c.snd.nxt.LessThan(c.snd.bufStart.Add(seqnum.Size(c.snd.buffered)))
}

// armPersist starts or stops the persist timer as needed.
func (c *Conn) armPersist(e *env) {
	if !c.needPersist() {
		c.tm.persist = 0
		c.tm.persistBackoff = 0
		return
	}
	if c.tm.persist != 0 {
		return
	}
	r := c.rtt.rto
	for i := uint8(0); i < c.tm.persistBackoff && r < c.cfg.MaxRTO; i++ {
		r *= 2
	}
	c.tm.persist = e.now.Add(min(r, c.cfg.MaxRTO))
}

// keepaliveFired sends a keep-alive probe or gives up (RFC 1122, 4.2.3.6).
func (c *Conn) keepaliveFired(e *env) {
	if !c.cfg.KeepAlive || !(c.state == StateEstablished || c.state == StateCloseWait) {
		return
	}
	if c.snd.una != c.snd.nxt {
		// Data is in flight: the retransmission timer watches the peer.
		c.tm.keep = e.now.Add(c.cfg.KeepIdle)
		return
	}
	if c.tm.keepProbes >= c.cfg.KeepCount {
		c.timedOut(e)
		return
	}
	c.tm.keepProbes++
	e.st.KeepaliveProbes++
	// SEG.SEQ = SND.NXT-1 with no data draws an ACK from a live peer.
	c.transmit(e, Segment{Seq: c.snd.nxt - 1, Flags: FlagACK})
	c.tm.keep = e.now.Add(c.cfg.KeepInterval)
}

// heardFromPeer restarts the keep-alive idle period.
func (c *Conn) heardFromPeer(e *env) {
	c.tm.keepProbes = 0
	if c.cfg.KeepAlive && (c.state == StateEstablished || c.state == StateCloseWait) {
		c.tm.keep = e.now.Add(c.cfg.KeepIdle)
	} else {
		c.tm.keep = 0
	}
}

// Tail loss probes (RFC 8985, 7). When the last segments of a flight are
// lost, or their ACKs are, no ACK comes to start fast recovery and only
// the retransmission timer (200 ms at least) would repair them; at a few
// percent of loss, with the small windows loss makes, that is most of
// the losses. Instead, after a probe timeout of about two round trips
// without an ACK, the sender sends one segment: new data if the peer's
// window takes it, else the last segment sent again. Its ACK brings the
// SACK information that starts recovery (or, if only that segment was lost,
// repairs it).
const (
	minPTO       = 2 * time.Millisecond
	maxDelAckPTO = 200 * time.Millisecond // the longest delayed ACK a peer may hold (RFC 8985, 7.2)
	// maxRACKProbes is how many probes RACK sends, each after twice the
	// wait of the one before, while no ACK advances SND.UNA and before the
	// retransmission timer fires; RFC 8985 sends one. Where losing one ACK
	// is common (a receiver that acknowledges a burst once, on a link that
	// loses a few percent), so is losing the probe's: a second and third
	// probe cost a segment each where the timer costs 200 ms and the window.
	maxRACKProbes = 3
)

// armLossProbe starts the probe timer when the flight calls for one: data
// outstanding, no recovery under way, no probe out, an RTT known, and a
// probe that would come before the RTO. A new ACK or new data restarts it
// (they clear tm.tlp first).
func (c *Conn) armLossProbe(e *env) {
	maxProbes := uint8(1)
	if c.rackOn() {
		maxProbes = maxRACKProbes
	}
	if !c.cfg.FastLossRecovery || !c.probeMode() || c.snd.una == c.snd.nxt || !c.canSendData() || c.tm.tlpSent >= maxProbes ||
		!c.rtt.sampled || c.tm.rto == 0 {
		c.tm.tlp = 0
		return
	}
	if c.tm.tlp != 0 {
		return
	}
	pto := 2 * c.rtt.srtt
	if uint32(c.snd.una.Size(c.snd.nxt)) <= c.payloadMax() {
		// One segment out: the peer may be delaying its ACK.
		pto = max(pto, c.rtt.srtt*3/2+maxDelAckPTO)
	}
	at := e.now.Add(max(pto, minPTO) << c.tm.tlpSent)
	if at < c.tm.rto {
		c.tm.tlp = at
	}
}

// probeMode reports whether the recovery state allows a loss probe: the
// open state (RFC 8985, 7.2), and, with RACK, a fast recovery too. RFC
// 8985 leaves recovery to RACK's timer, which needs an ACK to start from;
// but a receiver that acknowledges a burst with a single ACK (Linux
// compresses its ACKs while data arrives out of order) leaves a recovery
// with nothing to clock it out if that ACK is lost, and only the
// retransmission timer would end the wait. Measured over a link losing 5%
// each way, those waits were most of the time a transfer took.
func (c *Conn) probeMode() bool {
	return c.rec.mode == modeOpen || c.rec.mode == modeSACK && c.rackOn()
}

// lossProbe sends the probe (RFC 8985, 7.3): new data if the window
// allows, else the last segment again. With RACK the probe is always the
// last segment: a duplicate draws an immediate ACK from any receiver,
// where new data is one segment that a receiver may acknowledge only when
// its delayed-ACK timer fires (40 ms for Linux). Measured over a link
// losing 5% each way, where the probe mostly stands in for a lost ACK,
// new data as the probe cost such a wait most times.
func (c *Conn) lossProbe(e *env) {
	if !c.probeMode() || c.snd.una == c.snd.nxt || !c.canSendData() {
		return
	}
	e.st.LossProbes++
	c.tm.tlpSent++
	mss := c.payloadMax()
	if !c.rackOn() && c.dataEnd().GreaterThan(c.snd.nxt) && c.windowRoom() > 0 && c.sendNew(e, mss, mss, true) {
		return
	}
	s := c.snd.una
	if n := seqnum.Size(mss); c.snd.una.Size(c.snd.nxt) > n {
		s = c.snd.nxt.Sub(n)
	}
	c.rack.probe = seqRange{s, c.snd.nxt}
	c.sendRange(e, s, c.snd.nxt)
}
