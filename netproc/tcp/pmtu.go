package tcp

import (
	"fmt"
	"time"

	"saturn/netproc/tcp/seqnum"
)

// Path MTU discovery. The send MSS agreed in the handshake assumes that
// every link on the way carries packets as large as the two ends' own; a
// tunnel or a smaller link in the middle breaks that, and the segments
// that do not fit are lost. Two mechanisms lower the MSS to what the path
// carries, and one raises it again:
//
//   - RFC 1191: a router that cannot forward a packet with DF set (saturn
//     sets it on every segment) answers with an ICMP "fragmentation needed"
//     naming its next-hop MTU. The shell hands it to the connection as
//     InPacketTooBig. It is checked as RFC 5927 asks, since anyone can
//     forge one: the quoted sequence number must lie in SND.UNA..SND.NXT-1
//     (5927, 4.1 and 7.2); an MTU below 68 (RFC 791) is bogus and ignored,
//     one below 576 counts as 576 (the least an IPv4 host must take, RFC
//     1122, 3.3.2; Linux clamps at 552), and one that would not lower the
//     MSS is ignored (RFC 1191, 3: an MSS is never raised by ICMP), but
//     for one about a probe in flight, which lowers the probing's ceiling
//     to what the router names (RFC 8899, 4.6.2). The response is Linux's
//     tcp_simple_retransmit: the new MSS at once, and everything in flight
//     resent in segments of that size without any reduction of cwnd or
//     ssthresh, since nothing was lost to congestion.
//
//   - Packetization-layer PMTU discovery (RFC 4821, RFC 8899; Linux's
//     tcp_mtu_probing) for paths that drop the ICMP: a black hole is
//     presumed when the retransmission timer expires twice in a row on a
//     segment that a smaller MSS would make smaller (blackholeRTOs; Linux
//     waits for three). The MSS falls to pmtuBaseMSS, then by halves, as
//     far as it takes to make that segment smaller, never below
//     pmtuFloorMSS; each further timeout in a row may lower it again. The
//     timeouts themselves are handled as any other.
//
//   - Probing: after a reduction the sender searches upward, by halving the
//     interval between the MSS in use (known to pass) and the largest not
//     known to fail. A probe is one segment of new data of the size being
//     tried, sent only in the open state with enough data queued behind it
//     for its loss to be noticed by SACK or duplicate ACKs. Acknowledged,
//     it becomes the MSS; lost (the first hole, and the only loss), it
//     lowers the ceiling, and its bytes are resent in segments of the
//     present size, again without a congestion response (RFC 4821, 7.5;
//     RFC 8899, 4.4). When the interval is smaller than probeThreshold the
//     search ends, and begins again after pmtuRaiseInterval with the
//     handshake's MSS as the ceiling (RFC 1191, 6.3; RFC 8899's
//     PMTU_RAISE_TIMER): a path that grew back is found again.
//
// Probing (and the black-hole detection) is on unless
// Config.DisableMTUProbing. It costs nothing on a clean path: nothing
// happens before a reduction, and a reduction needs ICMP or two timeouts
// in a row of the same data. On a lossy path that times out twice in a row
// it costs a smaller MSS for the few round trips the search takes.
const (
	// ipTCPHeaders is what an MTU holds beside the MSS: the IPv4 and TCP
	// headers without options (RFC 9293, 3.7.1). A shell for IPv6 passes
	// its MTU less 20.
	ipTCPHeaders = 40
	// minIPv4MTU is the least MTU of any IPv4 link (RFC 791); a message
	// naming less is bogus (RFC 1191, 3).
	minIPv4MTU = 68
	// pmtuFloorMSS is the least MSS path MTU discovery leads to: 576 bytes
	// less the headers, the datagram every IPv4 host must accept. A forged
	// message cannot push segments below it (RFC 5927, 7.2).
	pmtuFloorMSS = 576 - ipTCPHeaders
	// pmtuBaseMSS is the first MSS tried on finding a black hole (Linux's
	// tcp_base_mss): it passes 1280-byte links (IPv6's minimum, common in
	// tunnels) with room for encapsulation.
	pmtuBaseMSS = 1024
	// blackholeRTOs is how many timeouts in a row of a full-sized segment
	// make a black hole.
	blackholeRTOs = 2
	// probeThreshold ends the search when the interval left is smaller
	// (Linux's tcp_probe_threshold).
	probeThreshold = 8
	// pmtuRaiseInterval is how long a finished search rests before the
	// next (RFC 1191, 6.3: ten minutes).
	pmtuRaiseInterval = 10 * time.Minute
	// maxProbeTries is how many probes of one size may end inconclusive
	// (retransmitted for another loss) before the size counts as failed
	// (RFC 8899's MAX_PROBES).
	maxProbeTries = 3
)

// PacketTooBig is what an ICMP "fragmentation needed and DF set" message
// (type 3, code 4; RFC 1191, 4) says about one of the connection's
// segments: the input of InPacketTooBig. The shell checks that the quoted
// header names the connection (addresses, ports, TCP) and that the quoted
// datagram had DF set; the core checks the rest.
type PacketTooBig struct {
	// MTU is the next-hop MTU the router reports; zero from a router that
	// predates RFC 1191, which says nothing (section 5).
	MTU uint16
	// Size is the total length of the quoted IP datagram: with MTU zero,
	// the next lower plateau of RFC 1191's table (section 7) is used.
	Size uint16
	// Seq is the sequence number in the quoted TCP header.
	Seq seqnum.Value
}

// pmtuState is the path MTU search. The MSS in use (sendState.mss) is
// its lower bound.
type pmtuState struct {
	max      uint16   // the MSS after the handshake: the search's ceiling (0: not yet recorded)
	high     uint16   // the largest MSS not known to fail
	probeMSS uint16   // the MSS of the probe in flight (0: none)
	tries    uint8    // probes of this size that ended inconclusive
	probe    seqRange // the probe's sequence space
	next     Time     // no probe before this
}

// mtuPlateaus is RFC 1191's table of common MTUs (section 7), for a
// message that names no MTU.
var mtuPlateaus = [...]uint16{32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, minIPv4MTU}

// pmtuInit records the handshake's MSS the first time path MTU discovery
// needs it (the handshake is over by then).
func (c *Conn) pmtuInit() {
	if c.pmtu.max == 0 {
		c.pmtu.max, c.pmtu.high = c.snd.mss, c.snd.mss
	}
}

// packetTooBig reacts to an ICMP "fragmentation needed" (RFC 1191, with
// RFC 5927's checks; see the top of this file).
func (c *Conn) packetTooBig(e *env, p *PacketTooBig) {
	e.st.PMTUMessages++
	if !c.canSendData() || !(c.snd.una.LessThanEq(p.Seq) && p.Seq.LessThan(c.snd.nxt)) {
		e.st.PMTUIgnored++ // nothing of ours in flight has that sequence number
		return
	}
	mtu := p.MTU
	if mtu == 0 {
		for _, m := range mtuPlateaus {
			if m < p.Size {
				mtu = m
				break
			}
		}
	}
	if mtu < minIPv4MTU {
		e.st.PMTUIgnored++
		return
	}
	mss := max(max(mtu, pmtuFloorMSS+ipTCPHeaders)-ipTCPHeaders, minMSS)
	if pr := &c.pmtu; pr.probeMSS != 0 && mss < pr.probeMSS && mss >= c.snd.mss &&
		pr.probe.start.LessThanEq(p.Seq) && p.Seq.LessThan(pr.probe.end) {
		// About the probe in flight: the path takes less than the probe,
		// and no less than the MSS in use (RFC 8899, 4.6.2). The ceiling
		// falls to what the router names, so the search ends sooner; the
		// probe's loss is left to loss detection (pmtuProbeLost).
		pr.high = min(pr.high, mss)
		return
	}
	if mss >= c.snd.mss {
		e.st.PMTUIgnored++ // it would not lower the MSS
		return
	}
	c.pmtuInit()
	e.st.PMTUReductions++
	c.snd.mss = mss
	c.pmtu.high = mss
	c.pmtu.probeMSS, c.pmtu.tries = 0, 0
	c.pmtuSettle(e.now)
	c.pmtuRetransmit(e, c.snd.nxt)
	c.output(e)
}

// pmtuSettle ends the search once the interval left is too small to be
// worth a probe: it rests for pmtuRaiseInterval, then starts again under
// the handshake's ceiling.
func (c *Conn) pmtuSettle(now Time) {
	p := &c.pmtu
	if p.high < c.snd.mss+probeThreshold {
		p.high = p.max
		p.next = now.Add(pmtuRaiseInterval)
	}
}

// pmtuRetransmit resends, in segments of the present MSS, the unSACKed
// bytes in flight below upTo, in the loss state but without a congestion
// response: cwnd and ssthresh are kept, and no reduction is left to undo
// (Linux's tcp_simple_retransmit).
func (c *Conn) pmtuRetransmit(e *env, upTo seqnum.Value) {
	if c.snd.una == c.snd.nxt {
		return
	}
	if c.rackOn() {
		l := &c.rack.log
		if l.n == 0 || l.r[0].start != c.snd.una {
			c.rackOnTimeout(e, false) // makes the log cover SND.UNA
		}
		for i := 0; i < int(l.n); i++ {
			if r := &l.r[i]; r.flags&txSACKed == 0 && r.start.LessThan(upTo) {
				r.flags |= txLost
			}
		}
		c.rack.undo.valid = false
	}
	recover := upTo
	if c.rec.mode == modeLoss {
		recover = seqnum.Max(recover, c.rec.recover)
	}
	c.rec = recovery{mode: modeLoss, recover: recover, highRxt: c.snd.una}
	c.rtt.timing = false // Karn: nothing in flight may be timed
}

// pmtuOnTimeout is called when the retransmission timer expires on data,
// with the back-off already counted. A probe that timed out at the head
// of the flight failed, and its bytes are resent without a congestion
// response: it returns true, and the caller skips its own. Otherwise it
// looks for a black hole, and lowers the MSS if it finds one; the caller
// then goes on with the timeout.
func (c *Conn) pmtuOnTimeout(e *env) bool {
	if c.cfg.DisableMTUProbing {
		return false
	}
	c.pmtuInit()
	p := &c.pmtu
	if p.probeMSS != 0 && c.rec.mode == modeOpen && c.pmtuProbeAtHead() {
		c.pmtuProbeFailed(e)
		c.pmtuRetransmit(e, p.probe.end)
		return true
	}
	if c.rtt.backoff < blackholeRTOs || c.snd.mss <= pmtuFloorMSS {
		return false
	}
	// The next MSS down: pmtuBaseMSS, then halves, until the segment
	// that timed out would be smaller.
	full := c.payloadMax()
	seg := min(uint32(c.snd.una.Size(c.snd.nxt)), full)
	mss := c.snd.mss
	for mss > pmtuFloorMSS && seg <= full-uint32(c.snd.mss-mss) {
		if mss > pmtuBaseMSS {
			mss = pmtuBaseMSS
		} else {
			mss = max(mss/2, pmtuFloorMSS)
		}
	}
	if seg <= full-uint32(c.snd.mss-mss) {
		return false // the segment is as small as the floor makes it
	}
	// A segment too large for a smaller MSS timed out again: presume a
	// black hole.
	e.st.PMTUBlackholes++
	p.high = c.snd.mss - 1
	c.snd.mss = mss
	p.probeMSS, p.tries = 0, 0
	p.next = e.now // search upward as soon as the loss is repaired
	c.pmtuSettle(e.now)
	return false
}

// pmtuProbeAtHead reports whether everything before the probe has been
// acknowledged, so that the probe is the first hole.
func (c *Conn) pmtuProbeAtHead() bool {
	return c.pmtu.probe.start.LessThanEq(c.snd.una) && c.snd.una.LessThan(c.pmtu.probe.end)
}

// pmtuProbeLost is called when loss detection would start a recovery. If
// the only loss is the probe, at the head of the flight, the probe failed:
// its bytes are resent without a congestion response and it returns true,
// and no recovery starts.
func (c *Conn) pmtuProbeLost(e *env) bool {
	p := &c.pmtu
	if p.probeMSS == 0 || c.rec.mode != modeOpen || !c.pmtuProbeAtHead() {
		return false
	}
	if c.rackOn() {
		l := &c.rack.log
		for i := 0; i < int(l.n); i++ {
			if r := l.r[i]; r.flags&txLost != 0 && r.end.GreaterThan(p.probe.end) {
				return false // other segments were lost too: congestion
			}
		}
	}
	c.pmtuProbeFailed(e)
	c.pmtuRetransmit(e, p.probe.end)
	return true
}

// pmtuProbeFailed lowers the search's ceiling below the probe's size.
func (c *Conn) pmtuProbeFailed(e *env) {
	p := &c.pmtu
	e.st.PMTUProbeFailures++
	p.high = min(p.high, p.probeMSS-1)
	p.probeMSS, p.tries = 0, 0
	c.pmtuSettle(e.now)
}

// pmtuOnAck is called when an ACK has advanced SND.UNA: a probe wholly
// acknowledged makes its size the MSS, unless its bytes were retransmitted
// meanwhile (for some other loss), which proves nothing.
func (c *Conn) pmtuOnAck(e *env) {
	p := &c.pmtu
	if p.probeMSS == 0 || c.snd.una.LessThan(p.probe.end) {
		return
	}
	if c.rtt.retxEnd.GreaterThan(p.probe.start) {
		if p.tries++; p.tries >= maxProbeTries {
			c.pmtuProbeFailed(e)
		} else {
			p.probeMSS = 0
		}
		return
	}
	c.snd.mss = p.probeMSS
	p.probeMSS, p.tries = 0, 0
	c.pmtuSettle(e.now)
}

// pmtuProbe sends a probe if the search calls for one and the flight
// allows it: the open state, data already in flight, no probe out, room
// in cwnd and the peer's window for the probe, and data queued for it and
// for dupThresh segments behind it. room is what cwnd leaves. It reports
// whether it sent.
func (c *Conn) pmtuProbe(e *env, room uint32) bool {
	p := &c.pmtu
	if c.cfg.DisableMTUProbing || p.max == 0 || p.probeMSS != 0 || c.rec.mode != modeOpen ||
		e.now < p.next || p.high < c.snd.mss+probeThreshold || c.snd.una == c.snd.nxt {
		// Nor does a probe start a flight: the first segment after an
		// idle period goes through sendNew, which restarts the window.
		return false
	}
	size := c.snd.mss + (p.high-c.snd.mss+1)/2
	mss := c.payloadMax()
	payload := mss + uint32(size-c.snd.mss)
	nxt := c.snd.nxt
	if !nxt.LessThan(c.dataEnd()) || uint32(nxt.Size(c.dataEnd())) < payload+dupThresh*mss ||
		room < payload || c.windowRoom() < payload {
		return false
	}
	e.st.PMTUProbes++
	p.probeMSS = size
	p.probe = seqRange{nxt, nxt.Add(seqnum.Size(payload))}
	c.sendRange(e, p.probe.start, p.probe.end)
	if c.rackOn() {
		// The probe's range in RACK's log keeps to itself, so that a loss
		// of the probe alone is told from a loss of its neighbours.
		l := &c.rack.log
		l.split(p.probe.start)
		for i := 0; i < int(l.n); i++ {
			if l.r[i].start == p.probe.start {
				l.r[i].flags |= txProbe
			}
		}
	}
	return true
}

// txProbe marks the range of RACK's log that holds a path MTU probe: a
// range so marked is never merged with its neighbours.
const txProbe uint8 = 1 << 7

// checkPMTU verifies the send MSS and the search (for Check): the MSS is
// at least minMSS and at most what the handshake agreed, and a probe in
// flight is larger than the MSS, no larger than the ceiling, and lies
// below SND.NXT.
func (c *Conn) checkPMTU() error {
	if !c.state.synchronized() {
		return nil
	}
	p, mss := &c.pmtu, c.snd.mss
	if mss < minMSS || mss > c.cfg.MSS || p.max != 0 && mss > p.max {
		return fmt.Errorf("%w: %s: send MSS %d outside [%d, %d] (handshake %d)", ErrCorrupt, c.state, mss, minMSS, c.cfg.MSS, p.max)
	}
	if p.probeMSS != 0 && (p.probeMSS <= mss || p.probeMSS > p.max || p.probe.end.GreaterThan(c.snd.nxt) || !p.probe.start.LessThan(p.probe.end)) {
		return fmt.Errorf("%w: %s: path MTU probe of %d at [%d,%d), MSS %d, ceiling %d, snd.nxt %d",
			ErrCorrupt, c.state, p.probeMSS, p.probe.start, p.probe.end, mss, p.max, c.snd.nxt)
	}
	return nil
}
