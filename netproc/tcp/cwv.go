package tcp

import "time"

// Congestion window validation (RFC 7661, "New CWV"), with
// Config.CwndValidation, in place of RFC 5681's restart after idle (4.1).
//
// cwnd is a measurement of the path only while the sender fills it. An
// application that sends less than the window (a request-response
// protocol, a rate-limited stream) leaves it unvalidated: growing it on
// the ACKs of a half-empty window would let it climb without bound, and
// the next burst would fall on the path with a window the path never
// carried. RFC 5681, 4.1 answers only idleness, and bluntly: after an RTO
// without sending, cwnd falls back to the initial window, which costs a
// connection that paused for a second its whole window.
//
// New CWV instead measures what the sender actually uses, pipeACK: the
// bytes acknowledged over one round trip, the largest such sample within
// the last max(3*RTT, 1 s) (RFC 7661, 4.1 and 4.2). While pipeACK is below
// half of cwnd the sender is in the non-validated phase (NVP), and then
// (RFC 7661, 4.3 and 4.4):
//
//   - cwnd does not grow;
//   - cwnd is kept across idle periods, rather than reset;
//   - a loss or a timeout reduces the window actually used,
//     max(pipeACK, FlightSize), rather than the unvalidated cwnd
//     (RFC 7661, 4.4.1, with the algorithm's own factor: CUBIC's 0.7);
//   - after five minutes in the phase (the NVP of RFC 7661, 5), ssthresh
//     becomes max(ssthresh, 3/4 cwnd) and cwnd max(cwnd/2, IW) (RFC 7661,
//     4.4.3), and so again for every further five minutes.
//
// Idleness counts as rate-limited use: a sender that sends again after
// more than an RTO without data in flight is in the phase from the moment
// it last sent, whatever it measured before. A sender with more queued
// than cwnd is not rate-limited, whatever pipeACK says (as XNU's New CWV
// checks its send buffer): a window-limited flow keeps its growth.
type cwvState struct {
	pipeACK  uint32 // pipeACK, bytes; 0: undefined (the validated phase)
	pipeAt   uint32 // when pipeACK was sampled, usec
	sample   uint32 // bytes acknowledged in the round trip being sampled
	sampleAt uint32 // when that round trip began, usec
	nvpStart Time   // when the non-validated phase began; 0: validated
	sampling bool   // sampleAt holds the start of a sample
}

const (
	// cwvNVP is the longest cwnd is kept unvalidated (RFC 7661, 5).
	cwvNVP = 5 * time.Minute
	// cwvMinPeriod is the shortest pipeACK sampling period (RFC 7661, 4.2).
	cwvMinPeriod = time.Second
	// cwvMinSample is the shortest pipeACK sample: the timestamp clock's
	// milliseconds make SRTT zero on a fast path, and a sample shorter than
	// the spacing of ACKs would measure one ACK, not a round trip.
	cwvMinSample = time.Millisecond
)

// cwvRTT is the round trip a pipeACK sample spans.
func (c *Conn) cwvRTT() time.Duration {
	return max(c.rtt.srtt, usDur(c.rack.minRTT), cwvMinSample)
}

// cwvOnAck takes an ACK that acknowledged acked new bytes: the pipeACK
// sample grows, and when a round trip's sample is complete the phase is
// judged again.
func (c *Conn) cwvOnAck(e *env, acked uint32) {
	if !c.cfg.CwndValidation {
		return
	}
	w := &c.cwv
	now := usec(e.now)
	if !w.sampling {
		// The first ACK after a pause starts a sample; what it
		// acknowledges was sent before it.
		w.sampling, w.sampleAt, w.sample = true, now, 0
		return
	}
	w.sample += acked
	rtt := c.cwvRTT()
	if usDur(now-w.sampleAt) < rtt {
		return
	}
	period := max(3*rtt, cwvMinPeriod)
	if w.sample >= w.pipeACK || usDur(now-w.pipeAt) > period || usDur(now-w.pipeAt) < 0 {
		w.pipeACK, w.pipeAt = w.sample, now
	}
	w.sampleAt, w.sample = now, 0
	if c.cwvRateLimited() {
		if w.nvpStart == 0 {
			w.nvpStart = e.now
		}
	} else {
		w.nvpStart = 0
	}
	c.cwvExpire(e)
}

// cwvRateLimited reports whether the sender uses less than half of cwnd
// (RFC 7661, 4.3) and is not held back by the window rather than by the
// application.
func (c *Conn) cwvRateLimited() bool {
	w := &c.cwv
	return w.pipeACK != 0 && w.pipeACK < c.cc.Cwnd/2 && c.snd.buffered <= c.cc.Cwnd
}

// cwvHoldsCwnd reports whether cwnd must not grow on this ACK: the sender
// is in the non-validated phase.
func (c *Conn) cwvHoldsCwnd() bool {
	return c.cfg.CwndValidation && c.cwv.nvpStart != 0
}

// cwvAfterIdle runs when the sender sends again after an idle period of
// more than an RTO (where RFC 5681, 4.1 would restart from IW): the phase
// began when the sender stopped, and if it has lasted longer than the NVP
// the window is reduced.
func (c *Conn) cwvAfterIdle(e *env) {
	w := &c.cwv
	if w.nvpStart == 0 {
		w.nvpStart = c.snd.lastSend
	}
	w.sampling = false // the next ACK starts a sample afresh
	c.cwvExpire(e)
}

// cwvExpire applies RFC 7661, 4.4.3 once for every NVP that has ended.
func (c *Conn) cwvExpire(e *env) {
	w := &c.cwv
	iw := initialWindow(uint32(c.snd.mss))
	for w.nvpStart != 0 && e.now.Sub(w.nvpStart) > cwvNVP {
		w.nvpStart = w.nvpStart.Add(cwvNVP)
		if c.cc.Cwnd <= iw {
			w.nvpStart = e.now
			break
		}
		c.cc.Ssthresh = max(c.cc.Ssthresh, c.cc.Cwnd/4*3)
		c.cc.Cwnd = max(c.cc.Cwnd/2, iw)
	}
}

// cwvBeforeReduction runs before a loss, a timeout or an ECN echo reduces
// the window. In the non-validated phase the reduction applies to the
// window in use, max(pipeACK, FlightSize), not to the unvalidated cwnd
// (RFC 7661, 4.4.1); the phase ends, since the reduced window is one the
// path carried.
func (c *Conn) cwvBeforeReduction(flight uint32) {
	if !c.cfg.CwndValidation || c.cwv.nvpStart == 0 {
		return
	}
	c.cc.Cwnd = max(min(c.cc.Cwnd, max(c.cwv.pipeACK, flight)), uint32(c.snd.mss))
	c.cwv.nvpStart = 0
}

// restartAfterIdle is what happens to cwnd when new data goes out after
// nothing was in flight for more than an RTO: RFC 7661's phase with
// Config.CwndValidation, else RFC 5681, 4.1's restart window.
func (c *Conn) restartAfterIdle(e *env) {
	if c.bbrOn() {
		c.bbrIdleRestart(e)
		return
	}
	if c.snd.una != c.snd.nxt || e.now.Sub(c.snd.lastSend) <= c.rtt.rto {
		return
	}
	if c.cfg.CwndValidation {
		c.cwvAfterIdle(e)
		return
	}
	c.cc.Cwnd = min(c.cc.Cwnd, initialWindow(uint32(c.snd.mss)))
}
