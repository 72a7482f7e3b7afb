package tcp

import (
	"math"
	"time"

	"saturn/netproc/tcp/seqnum"
)

// BBR (draft-cardwell-iccrg-bbr-congestion-control-00, "BBR v1"), with
// Config.Congestion = CCBBR. Loss-based algorithms read a random loss as
// congestion and halve their window for it; on a path that loses a few
// percent of its packets whatever the load, they never fill it. BBR
// instead models the path: its bottleneck bandwidth (the largest delivery
// rate measured over the last ten round trips) and its round-trip
// propagation time (the least RTT measured over ten seconds). It sends at
// a pacing rate of a gain times the bandwidth, and keeps in flight at most
// a gain times their product (the BDP), cycling the gains to probe for
// more bandwidth and draining the queue the probe made. A loss changes
// neither estimate: during a recovery the window only keeps packet
// conservation for a round trip (draft, 4.2.3.4).
//
// Everything is in integers, so that the model, like CUBIC's window, is
// the same on every architecture: rates are in bytes per second, times in
// microseconds, gains are fractions of bbrUnit.
//
// The delivery rate is estimated as draft-cheng-iccrg-delivery-rate-
// estimation describes, with one departure for the sake of a fixed-size
// connection: the per-packet state (P.delivered, P.delivered_time,
// P.first_sent_time, P.is_app_limited) is kept for a few segments at a
// time, not for every one. A snapshot of the connection's delivery
// counters is taken with a segment sent when a slot is free and the last
// snapshot is at least min_rtt/bbrSnaps old, which yields several samples
// per round trip; the ACK or SACK that delivers a snapshotted segment makes
// the rate sample from it. Samples are only what the max filter and the
// round counting read, so fewer samples mean only a slower filter.

// BBR's modes (draft, 4.3).
const (
	bbrStartup uint8 = iota
	bbrDrain
	bbrProbeBW
	bbrProbeRTT
)

var bbrModeNames = [...]string{"startup", "drain", "probe_bw", "probe_rtt"}

const (
	bbrUnit = 256 // gains are fractions of bbrUnit
	// bbrHighGain is 2/ln(2), the smallest gain that doubles the sending
	// rate every round trip (draft, 4.3.1.1).
	bbrHighGain = bbrUnit*2885/1000 + 1
	// bbrDrainGain is its inverse (draft, 4.3.2).
	bbrDrainGain = bbrUnit * 1000 / 2885
	// bbrCwndGain is ProbeBW's cwnd gain (draft, 4.3.3).
	bbrCwndGain = 2 * bbrUnit
	// bbrBwRounds is the max filter's window in round trips (draft, 4.1.1).
	bbrBwRounds = 10
	// bbrMinRTTWindow is the min filter's window (draft, 4.1.2).
	bbrMinRTTWindow = 10 * time.Second
	// bbrProbeRTTTime is the least time spent in ProbeRTT (draft, 4.3.4).
	bbrProbeRTTTime = 200 * time.Millisecond
	// bbrMinPipeSegs is the least cwnd, in segments (draft, 4.2.3.3).
	bbrMinPipeSegs = 4
	// bbrFullBwThresh and bbrFullBwCount: the pipe is full when three round
	// trips in a row did not raise the bandwidth by a quarter (draft,
	// 4.3.1.2).
	bbrFullBwThresh = bbrUnit * 5 / 4
	bbrFullBwCount  = 3
	// bbrPacingMargin: pace at 1% below the estimate, so that the queue
	// the estimate's error builds drains (draft, 4.2.1).
	bbrPacingMarginPct = 1
	// bbrSnaps is the number of delivery snapshots in flight at once.
	bbrSnaps = 6
	// paceQuantum is how far ahead of its pacing schedule the sender may
	// run: segments go in bursts of about this much time's worth, so that
	// a shell's timer wakes up at most about once per quantum.
	paceQuantum = time.Millisecond
)

// bbrCycleGains are ProbeBW's pacing gains, one per phase of a round trip
// (draft, 4.3.3): probe up by a quarter, drain what that queued, cruise.
var bbrCycleGains = [...]uint16{bbrUnit * 5 / 4, bbrUnit * 3 / 4, bbrUnit, bbrUnit, bbrUnit, bbrUnit, bbrUnit, bbrUnit}

// bbrSnap is the per-packet state of draft-cheng's section 3.2 for one
// segment: the connection's delivery counters when it was sent.
type bbrSnap struct {
	seq         seqnum.Value // the end of the segment: delivered once it is acknowledged or SACKed
	sent        uint32       // P.sent_time, usec
	delivered   uint32       // P.delivered, bytes modulo 2^32
	deliveredAt uint32       // P.delivered_time, usec
	firstSent   uint32       // P.first_sent_time, usec
	appLimited  bool         // P.is_app_limited
}

// bbrBwSample is one entry of the max filter.
type bbrBwSample struct {
	bw    uint32 // bytes per second
	round uint32 // the round trip it was measured in
}

// bbrState is BBR's part of CCState. Times are usec modulo 2^32 (compared
// by difference) except those that may lie further apart.
type bbrState struct {
	// Delivery-rate estimation (draft-cheng, 3.1).
	delivered   uint32 // C.delivered
	deliveredAt uint32 // C.delivered_time
	firstSent   uint32 // C.first_sent_time
	appLimited  uint32 // C.app_limited: 0, or the delivered count that ends it
	snaps       [bbrSnaps]bbrSnap
	nSnaps      uint8 // snaps[:nSnaps], oldest first

	mode        uint8
	cycle       uint8 // ProbeBW's phase, an index into bbrCycleGains
	filledPipe  bool
	fullBwCount uint8
	roundStart  bool
	conserve    bool // packet conservation, the first round of a recovery
	inRecovery  bool // the recovery state seen by the last ACK
	idleRestart bool
	probeRTTRnd bool // ProbeRTT has lasted a round trip

	pacingGain, cwndGain uint16
	bw                   [3]bbrBwSample // max filter: best, second, third best in the window
	fullBw               uint32
	roundCount           uint32
	nextRound            uint32 // next_round_delivered
	cycleAt              uint32 // when the ProbeBW phase began, usec
	minRTT               uint32 // usec; 0: none yet
	priorCwnd            uint32
	pacingRate           uint32 // bytes per second; 0: not set yet
	minRTTAt             Time
	probeRTTDone         Time // 0: not yet timed
	nextSend             Time // pacing: the earliest the next segment may go
}

// bbr is BBR v1. Most of its work is done by the connection on every ACK
// (bbrOnAck), which these methods cannot see; they keep CCState coherent
// with the connection's recovery machinery.
type bbr struct{}

func (bbr) Init(s *CCState, ev CCEvent) {
	s.Cwnd = initialWindow(ev.MSS)
	s.Ssthresh = infiniteSsthresh
	s.acked = 0
	s.bbr = bbrState{minRTTAt: ev.Now}
	s.bbr.enterStartup()
}

// OnAck: BBR sets cwnd on every ACK from its model (bbrOnAck).
func (bbr) OnAck(*CCState, CCEvent) {}

// OnCongestion (a fast recovery or an ECN echo) saves the window to come
// back to when recovery ends (draft, 4.2.3.4); the recovery's own cwnd is
// set by bbrOnAck. Ssthresh is what the connection restores at the end of
// a recovery: the window before it.
func (bbr) OnCongestion(s *CCState, ev CCEvent) {
	s.bbr.saveCwnd(s.Cwnd)
	s.Ssthresh = max(s.Cwnd, 2*ev.MSS)
}

// OnTimeout collapses cwnd to one segment, as every algorithm does after a
// timeout, saving the window to restore (draft, 4.2.3.4); the snapshots in
// flight are forgotten, for what they describe is lost.
func (bbr) OnTimeout(s *CCState, ev CCEvent) {
	if !ev.Repeated {
		s.bbr.saveCwnd(s.Cwnd)
		s.Ssthresh = max(s.Cwnd, 2*ev.MSS)
	}
	s.Cwnd = ev.MSS
	s.bbr.nSnaps = 0
}

func (b *bbrState) saveCwnd(cwnd uint32) {
	if !b.inRecovery && b.mode != bbrProbeRTT {
		b.priorCwnd = cwnd
	} else {
		b.priorCwnd = max(b.priorCwnd, cwnd)
	}
}

func (b *bbrState) enterStartup() {
	b.mode = bbrStartup
	b.pacingGain, b.cwndGain = bbrHighGain, bbrHighGain
}

func (b *bbrState) enterDrain() {
	b.mode = bbrDrain
	b.pacingGain, b.cwndGain = bbrDrainGain, bbrHighGain
}

// enterProbeBW starts the gain cycle at a phase other than the drain
// phase (draft, 4.3.3). The draft draws the phase at random; the core
// draws no random numbers, so it comes from the round count, which differs
// between flows that started apart.
func (b *bbrState) enterProbeBW(now uint32, seed uint32) {
	b.mode = bbrProbeBW
	b.cwndGain = bbrCwndGain
	b.cycle = uint8(seed % (uint32(len(bbrCycleGains)) - 1))
	if b.cycle >= 1 {
		b.cycle++ // skip the drain phase
	}
	b.cycleAt = now
	b.pacingGain = bbrCycleGains[b.cycle]
}

// maxBw returns the max filter's estimate (draft, 4.1.1).
func (b *bbrState) maxBw() uint32 { return b.bw[0].bw }

// updateMaxBw adds a sample to the windowed max filter: three entries,
// the best, the best since it, and the best since that, each dropped when
// it ages out of the window of bbrBwRounds round trips.
func (b *bbrState) updateMaxBw(bw uint32) {
	r := b.roundCount
	s := bbrBwSample{bw: bw, round: r}
	if bw >= b.bw[0].bw || r-b.bw[2].round >= bbrBwRounds {
		b.bw = [3]bbrBwSample{s, s, s}
		return
	}
	if bw >= b.bw[1].bw {
		b.bw[1], b.bw[2] = s, s
	} else if bw >= b.bw[2].bw {
		b.bw[2] = s
	}
	// Age out the best while the next one stays within the window.
	for r-b.bw[0].round >= bbrBwRounds {
		b.bw[0], b.bw[1], b.bw[2] = b.bw[1], b.bw[2], s
	}
	// Keep the later entries spread over the window, so that one remains
	// when the best ages out.
	if b.bw[1].round == b.bw[0].round && r-b.bw[0].round > bbrBwRounds/4 {
		b.bw[1], b.bw[2] = s, s
	} else if b.bw[2].round == b.bw[1].round && r-b.bw[1].round > bbrBwRounds/2 {
		b.bw[2] = s
	}
}

// bdp returns gain times the estimated bandwidth-delay product, in bytes
// (draft, 4.2.3.2), or zero before there is one.
func (b *bbrState) bdp(gain uint16) uint32 {
	if b.minRTT == 0 || b.maxBw() == 0 {
		return 0
	}
	v := uint64(b.maxBw()) * uint64(b.minRTT) / 1e6 * uint64(gain) / bbrUnit
	return uint32(min(v, infiniteSsthresh))
}

// bbrOn reports whether the connection runs BBR.
func (c *Conn) bbrOn() bool { return c.cc.Algo == CCBBR }

// bbrSent takes note of a segment [s, end) of n bytes of data sent now:
// the pacing schedule moves on, and a delivery snapshot may be taken
// (draft-cheng, 3.2, "Transmitting a data packet").
func (c *Conn) bbrSent(e *env, s, end seqnum.Value, n uint32, nothingInFlight bool) {
	b := &c.cc.bbr
	now := usec(e.now)
	if nothingInFlight {
		b.firstSent, b.deliveredAt = now, now
	}
	if rate := c.bbrPacingRate(); rate > 0 && n > 0 {
		at := max(b.nextSend, e.now)
		b.nextSend = at + Time(uint64(n)*1e9/uint64(rate))
	}
	// Only new data is snapshotted: the ACK of a retransmission may be the
	// original's, and its RTT and rate would be the original's too (Karn).
	if n == 0 || int(b.nSnaps) == bbrSnaps || !end.GreaterThan(c.snd.nxt) {
		return
	}
	if b.nSnaps > 0 {
		last := b.snaps[b.nSnaps-1]
		if !last.seq.LessThan(end) || usDur(now-last.sent) < usDur(b.minRTT/bbrSnaps) || now == last.sent {
			return
		}
	}
	b.snaps[b.nSnaps] = bbrSnap{
		seq: end, sent: now, delivered: b.delivered, deliveredAt: b.deliveredAt,
		firstSent: b.firstSent, appLimited: b.appLimited != 0,
	}
	b.nSnaps++
}

// bbrPacingRate returns the pacing rate, starting from the initial window
// over the smoothed RTT times the high gain before the model has a
// bandwidth (draft, 4.2.1).
func (c *Conn) bbrPacingRate() uint32 {
	b := &c.cc.bbr
	if b.pacingRate != 0 {
		return b.pacingRate
	}
	rtt := max(c.rtt.srtt, time.Millisecond)
	rate := uint64(c.cc.Cwnd) * uint64(time.Second) / uint64(rtt) * bbrHighGain / bbrUnit
	return uint32(min(rate, math.MaxUint32))
}

// bbrPaceHold reports whether pacing holds the next segment back, and if
// so arms the pacing timer for when it may go. With no new data and no
// recovery there is nothing to hold, and no timer to arm.
func (c *Conn) bbrPaceHold(e *env) bool {
	b := &c.cc.bbr
	if b.nextSend <= e.now.Add(paceQuantum) || c.rec.mode == modeOpen && !c.dataEnd().GreaterThan(c.snd.nxt) {
		return false
	}
	c.tm.pace = b.nextSend - Time(paceQuantum)
	return true
}

// bbrAppLimited marks the connection application-limited when it has sent
// all it has and the window is not full (draft-cheng, 3.4): the rate
// samples taken until what is in flight now is delivered say nothing of
// the path's bandwidth.
func (c *Conn) bbrAppLimited() {
	if c.dataEnd().GreaterThan(c.snd.nxt) || c.snd.finQueued && c.snd.nxt == c.dataEnd() {
		return
	}
	if pipe := c.pipe(); pipe < c.cc.Cwnd {
		b := &c.cc.bbr
		b.appLimited = max(b.delivered+pipe, 1)
	}
}

// bbrIdleRestart runs when data goes out after an idle period (draft,
// 4.2.1, "restarting from idle"): in ProbeBW the pacing rate falls back to
// the estimate itself, without the gain of the phase.
func (c *Conn) bbrIdleRestart(e *env) {
	b := &c.cc.bbr
	if c.snd.una != c.snd.nxt || b.appLimited == 0 {
		return
	}
	b.idleRestart = true
	if b.mode == bbrProbeBW {
		c.bbrSetPacingRate(bbrUnit)
	}
}

// bbrSetPacingRate sets the pacing rate to gain times the bandwidth
// estimate, less the margin; in Startup it only rises (draft, 4.2.1).
func (c *Conn) bbrSetPacingRate(gain uint16) {
	b := &c.cc.bbr
	bw := b.maxBw()
	if bw == 0 {
		return
	}
	rate := uint64(bw) * uint64(gain) / bbrUnit * (100 - bbrPacingMarginPct) / 100
	rate = min(rate, math.MaxUint32)
	if b.filledPipe || uint32(rate) > b.pacingRate {
		b.pacingRate = uint32(max(rate, 1))
	}
}

// bbrOnAck runs BBR for an acceptable ACK that delivered the given bytes
// (cumulatively acknowledged or newly SACKed): the delivery-rate sample,
// the model, the state machine, then pacing rate and cwnd (draft, 4.2 and
// 4.3; draft-cheng, 3.3).
func (c *Conn) bbrOnAck(e *env, delivered uint32) {
	b := &c.cc.bbr
	now := usec(e.now)
	mss := uint32(c.snd.mss)
	if delivered > 0 {
		b.delivered += delivered
		b.deliveredAt = now
	}
	if b.appLimited != 0 && int32(b.delivered-b.appLimited) > 0 {
		b.appLimited = 0
	}
	// The newest snapshot delivered gives the rate sample; older ones are
	// delivered too, or lost, and go.
	var p bbrSnap
	found := -1
	for i := int(b.nSnaps) - 1; i >= 0; i-- {
		sn := b.snaps[i]
		if sn.seq.LessThanEq(c.snd.una) || c.sack.sackedIn(sn.seq-1, sn.seq) == 1 {
			found, p = i, sn
			break
		}
	}
	b.roundStart = false
	var rtt uint32
	if found >= 0 {
		copy(b.snaps[:], b.snaps[found+1:b.nSnaps])
		b.nSnaps -= uint8(found + 1)
		b.firstSent = p.sent
		rtt = now - p.sent
		// Rounds (draft, 4.1.1.3): a round trip ends when a segment sent
		// after the previous one ended is delivered.
		if int32(p.delivered-b.nextRound) >= 0 {
			b.nextRound = b.delivered
			b.roundCount++
			b.roundStart = true
		}
		interval := max(p.sent-p.firstSent, now-p.deliveredAt)
		bytes := b.delivered - p.delivered
		// An interval shorter than the least RTT would overstate the rate
		// (draft-cheng, 3.3).
		if int32(interval) > 0 && int32(rtt) > 0 && (b.minRTT == 0 || interval >= b.minRTT) && int32(bytes) > 0 {
			bw := uint32(min(uint64(bytes)*1e6/uint64(interval), math.MaxUint32))
			if !p.appLimited || bw >= b.maxBw() {
				b.updateMaxBw(bw)
			}
		}
	}
	c.bbrUpdateState(e, rtt, delivered)
	c.bbrSetPacingRate(b.pacingGain)
	c.bbrSetCwnd(delivered, mss)
	if delivered > 0 {
		b.idleRestart = false
	}
}

// bbrUpdateState runs the state machine (draft, 4.3).
func (c *Conn) bbrUpdateState(e *env, rtt, delivered uint32) {
	b := &c.cc.bbr
	now := usec(e.now)
	mss := uint32(c.snd.mss)
	pipe := c.pipe()
	// Startup's end: three round trips without a quarter more bandwidth
	// (draft, 4.3.1.2).
	if !b.filledPipe && b.roundStart && b.appLimited == 0 {
		if uint64(b.maxBw()) >= uint64(b.fullBw)*bbrFullBwThresh/bbrUnit {
			b.fullBw, b.fullBwCount = b.maxBw(), 0
		} else if b.fullBwCount++; b.fullBwCount >= bbrFullBwCount {
			b.filledPipe = true
		}
	}
	if b.mode == bbrStartup && b.filledPipe {
		b.enterDrain()
	}
	// Drain's end: what is in flight fits the BDP (draft, 4.3.2).
	if b.mode == bbrDrain && pipe <= b.bdp(bbrUnit) {
		b.enterProbeBW(now, b.roundCount^uint32(c.snd.iss))
	}
	// ProbeBW's gain cycle (draft, 4.3.3): a phase lasts about min_rtt;
	// probing up lasts until the inflight it aims at is reached or a loss
	// says the path has no room; draining ends early once inflight is
	// down to the BDP.
	if b.mode == bbrProbeBW {
		elapsed := b.minRTT == 0 || usDur(now-b.cycleAt) > usDur(b.minRTT)
		prior := pipe + delivered
		advance := elapsed
		switch g := b.pacingGain; {
		case g > bbrUnit:
			advance = elapsed && (c.rec.mode != modeOpen || prior >= b.bdp(g))
		case g < bbrUnit:
			advance = elapsed || prior <= b.bdp(bbrUnit)
		}
		if advance {
			b.cycle = (b.cycle + 1) % uint8(len(bbrCycleGains))
			b.cycleAt = now
			b.pacingGain = bbrCycleGains[b.cycle]
		}
	}
	// The min RTT filter and ProbeRTT (draft, 4.1.2 and 4.3.4).
	expired := e.now.Sub(b.minRTTAt) > bbrMinRTTWindow
	if int32(rtt) > 0 && (b.minRTT == 0 || rtt <= b.minRTT || expired) {
		b.minRTT, b.minRTTAt = rtt, e.now
	}
	if expired && !b.idleRestart && b.mode != bbrProbeRTT {
		b.saveCwnd(c.cc.Cwnd)
		b.mode = bbrProbeRTT
		b.pacingGain, b.cwndGain = bbrUnit, bbrUnit
		b.probeRTTDone = 0
	}
	if b.mode == bbrProbeRTT {
		// Stay until inflight has been at the floor for 200 ms and a
		// round trip.
		if b.appLimited == 0 {
			b.appLimited = max(b.delivered+pipe, 1)
		}
		if b.probeRTTDone == 0 && pipe <= bbrMinPipeSegs*mss {
			b.probeRTTDone = e.now.Add(bbrProbeRTTTime)
			b.probeRTTRnd = false
			b.nextRound = b.delivered
		} else if b.probeRTTDone != 0 {
			if b.roundStart {
				b.probeRTTRnd = true
			}
			if b.probeRTTRnd && e.now >= b.probeRTTDone {
				b.minRTTAt = e.now
				c.cc.Cwnd = max(c.cc.Cwnd, b.priorCwnd)
				if b.filledPipe {
					b.enterProbeBW(now, b.roundCount^uint32(c.snd.iss))
				} else {
					b.enterStartup()
				}
			}
		}
	}
}

// bbrSetCwnd sets cwnd from the model (draft, 4.2.3): gain times the BDP
// plus room for delayed and stretched ACKs, reached by growing with what
// is delivered; packet conservation in a recovery's first round trip,
// the window saved before it restored at its end; never below four
// segments, and at four in ProbeRTT.
func (c *Conn) bbrSetCwnd(delivered, mss uint32) {
	b := &c.cc.bbr
	cwnd := c.cc.Cwnd
	pipe := c.pipe()
	recovering := c.rec.mode != modeOpen
	switch {
	case recovering && !b.inRecovery:
		b.conserve = true
		b.nextRound = b.delivered // the conservation lasts one round trip
		cwnd = pipe + max(delivered, mss)
	case !recovering && b.inRecovery:
		b.conserve = false
		cwnd = max(cwnd, b.priorCwnd)
	}
	b.inRecovery = recovering
	if b.conserve && b.roundStart {
		b.conserve = false
	}
	if b.conserve {
		cwnd = max(cwnd, pipe+delivered)
	} else if target := b.bdp(b.cwndGain); target == 0 {
		cwnd += delivered // no model yet: slow start
	} else {
		target += 3 * mss
		if b.filledPipe {
			cwnd = min(cwnd+delivered, target)
		} else if cwnd < target || b.delivered < initialWindow(mss) {
			cwnd += delivered
		}
	}
	cwnd = max(cwnd, bbrMinPipeSegs*mss)
	if b.mode == bbrProbeRTT {
		cwnd = min(cwnd, bbrMinPipeSegs*mss)
	}
	c.cc.Cwnd = min(cwnd, infiniteSsthresh)
	if !recovering {
		c.cc.Ssthresh = max(c.cc.Cwnd, 2*mss)
	}
}

// BBRInfo is a snapshot of a BBR connection's model, for status output
// and tests.
type BBRInfo struct {
	Mode       string
	Bw         uint32 // bytes per second
	MinRTT     time.Duration
	PacingRate uint32 // bytes per second
	PacingGain uint16 // in 256ths
	CwndGain   uint16
	Phase      uint8 // ProbeBW's phase: 0 probes up, 1 drains, 2 to 7 cruise
	FilledPipe bool
	Rounds     uint32
}

// BBR returns the BBR model of a connection running BBR.
func (c *Conn) BBR() BBRInfo {
	b := &c.cc.bbr
	return BBRInfo{
		Mode: bbrModeNames[b.mode%4], Bw: b.maxBw(), MinRTT: usDur(b.minRTT),
		PacingRate: c.bbrPacingRate(), PacingGain: b.pacingGain, CwndGain: b.cwndGain,
		FilledPipe: b.filledPipe, Rounds: b.roundCount, Phase: b.cycle,
	}
}
