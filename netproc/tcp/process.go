package tcp

import (
	"time"

	"saturn/netproc/tcp/seqnum"
)

// limits holds the rate limiters that keep a connection from being turned
// into an ACK generator.
type limits struct {
	chalStart Time   // start of the current challenge-ACK second
	chalCount uint16 // challenge ACKs sent in it
	oowACK    Time   // when we last answered an out-of-window bare segment
}

// oowInterval is the least time between ACKs that answer unacceptable
// segments carrying no data (Linux tcp_invalid_ratelimit): such ACKs matter
// for nothing but could otherwise ping-pong forever.
const oowInterval = 500 * time.Millisecond

// paws24Days is the age past which TS.Recent is no longer trusted
// (RFC 7323, 5.5).
const paws24Days = 24 * 24 * time.Hour

// segmentArrived dispatches a received segment by state.
func (c *Conn) segmentArrived(e *env, seg *Segment) {
	e.st.InSegs++
	switch c.state {
	case StateClosed:
		if seg.Flags&FlagRST != 0 {
			e.st.InRsts++
		}
		e.st.Drops[DropClosed]++
		c.replyRST(e, seg)
	case StateSynSent:
		c.synSentArrived(e, seg)
	case StateTimeWait:
		c.timeWaitArrived(e, seg)
	default:
		c.synchronizedArrived(e, seg)
	}
}

// synchronizedArrived handles a segment in SYN-RECEIVED and the
// synchronized states but TIME-WAIT (RFC 9293, 3.10.7.4, with RFC 5961 and
// RFC 7323).
func (c *Conn) synchronizedArrived(e *env, seg *Segment) {
	f := seg.Flags
	if f&FlagSYN != 0 {
		var ok bool
		if seg, ok = c.synInSynchronized(e, seg); !ok {
			return
		}
		f = seg.Flags
	}
	if c.ts.ok && !seg.Options.TS && f&FlagRST == 0 {
		e.st.Drops[DropNoTimestamp]++ // RFC 7323, 3.2
		return
	}
	hasData := seg.PayloadLen() > 0 || f&FlagFIN != 0
	// PAWS (RFC 7323, 5.3, R1): a timestamp older than TS.Recent marks an
	// old duplicate, unless TS.Recent itself is too old to trust. A stale
	// TS.Recent is replaced only once the segment has passed every check
	// (RFC 7323, 5.5; Linux's tcp_replace_ts_recent).
	tsStale := false
	if c.ts.ok && seg.Options.TS && f&FlagRST == 0 && int32(seg.Options.TSVal-c.ts.recent) < 0 {
		if e.now.Sub(c.ts.recentAt) <= paws24Days {
			e.st.PAWSRejected++
			e.st.Drops[DropPAWS]++
			c.oowACK(e, hasData)
			return
		}
		tsStale = true
	}
	// The sequence-number test (first check of 3.10.7.4).
	seq, payload, fin := seg.Seq, seg.Payload, f&FlagFIN != 0
	var dup [2]seqnum.Value // the part already received, for a D-SACK
	ackNow := false         // the segment calls for an immediate ACK, once accepted
	wnd := uint32(0)
	if c.rcv.nxt.LessThan(c.rcv.adv) {
		wnd = uint32(c.rcv.nxt.Size(c.rcv.adv))
	}
	if !acceptable(seq, seg.SeqLen(), c.rcv.nxt, wnd) {
		if wnd == 0 && seq == c.rcv.nxt {
			// A zero window still takes valid ACKs and RSTs and a bare FIN
			// (RFC 9293, 3.10.7.4: "special allowance"); data is dropped
			// and acknowledged so the peer keeps probing.
			if len(payload) > 0 {
				payload, fin = nil, false
				ackNow = true
			}
		} else {
			if f&FlagRST == 0 {
				if end := seq.Add(seqnum.Size(len(payload))); len(payload) > 0 && end.LessThanEq(c.rcv.nxt) {
					// An old duplicate: report it (RFC 2883, 4.1).
					c.setDSACK(seq, end)
				}
				c.oowACK(e, hasData)
			}
			e.st.Drops[DropOutOfWindow]++
			return
		}
	}
	// Keep only the part inside the window.
	if seq.LessThan(c.rcv.nxt) {
		d := uint32(seq.Size(c.rcv.nxt))
		if len(payload) > 0 {
			dup = [2]seqnum.Value{seq, seqnum.Min(c.rcv.nxt, seq.Add(seqnum.Size(len(payload))))}
		}
		if d >= uint32(len(payload)) {
			fin = fin && d == uint32(len(payload))
			payload = nil
		} else {
			payload = payload[d:]
		}
		seq = c.rcv.nxt
		ackNow = true // part was a duplicate: tell the peer where we are
	}
	if edge := seqnum.Max(c.rcv.adv, c.rcv.nxt); seq.Add(seqnum.Size(len(payload))).GreaterThan(edge) {
		payload = payload[:seq.Size(edge)]
		fin = false
	}
	if c.rcv.finPending && seq.Add(seqnum.Size(len(payload))).GreaterThan(c.rcv.finSeq) {
		// Nothing follows a FIN: ignore bytes a peer claims beyond it.
		payload = payload[:seq.Size(seqnum.Max(c.rcv.finSeq, seq))]
	}
	if f&FlagRST != 0 {
		c.resetArrived(e, seg)
		return
	}
	if f&FlagACK == 0 {
		e.st.Drops[DropNoACK]++
		return
	}
	if c.state == StateSynReceived {
		// The ACK must acknowledge our SYN (fifth check, SYN-RECEIVED).
		if seg.Ack.LessThanEq(c.snd.una) || seg.Ack.GreaterThan(c.snd.nxt) {
			e.st.Drops[DropBadAck]++
			c.replyRST(e, seg)
			return
		}
	} else if !c.ackAcceptable(e, seg) {
		return
	}
	// The segment is acceptable: from here on it may change the
	// connection. Record the timestamp to echo (RFC 7323, 4.3 and 5.3, R3).
	if c.ts.ok && seg.Options.TS && (tsStale || int32(seg.Options.TSVal-c.ts.recent) >= 0) &&
		seg.Seq.LessThanEq(c.rcv.lastAckSent) {
		c.ts.recent = seg.Options.TSVal
		c.ts.recentAt = e.now
	}
	if ackNow {
		c.rcv.ackNow = true
	}
	c.ecnArrived(e, seg)
	c.heardFromPeer(e)
	if c.state == StateSynReceived {
		c.snd.wnd = uint32(seg.Window) << c.snd.shift
		c.snd.maxWnd = max(c.snd.maxWnd, c.snd.wnd)
		c.snd.wl1, c.snd.wl2 = seg.Seq, seg.Ack
		c.synAcked(e, seg)
	} else if !c.ackArrived(e, seg) {
		return
	}
	switch c.state {
	case StateEstablished, StateFinWait1, StateFinWait2:
		if c.appClosed && len(payload) > 0 {
			// The application is gone: nobody will read this. Reset, as
			// Linux does and RFC 2525, 2.17 recommends.
			e.st.AbortOnData++
			c.sendRST(e)
			c.closed(e, errAborted)
			return
		}
		if dup[0] != dup[1] {
			c.setDSACK(dup[0], dup[1])
		}
		c.acceptData(e, seq, payload, fin)
	default:
		if len(payload) > 0 || fin {
			e.st.Drops[DropAfterFIN]++
		}
	}
	c.output(e)
}

// acceptable is the table of RFC 9293, 3.10.7.4 (first check), with two
// deliberate widenings, both Linux's (tcp_sequence). A segment that covers
// the whole window (starting before RCV.NXT and ending beyond it) is
// acceptable, although the table's two endpoint tests would reject it while
// its middle is exactly the data expected next. And an empty segment at
// exactly RCV.NXT+RCV.WND is acceptable: a peer that has sent up to the
// edge of our window sends its ACKs from there, and while a lost segment
// holds RCV.NXT back, refusing them would leave us blind to the peer's
// acknowledgments; when it is our data that is lost too, each end drops
// the other's ACKs and both time out.
func acceptable(seq seqnum.Value, segLen seqnum.Size, nxt seqnum.Value, wnd uint32) bool {
	if segLen == 0 {
		if wnd == 0 {
			return seq == nxt
		}
		return seq.InWindow(nxt, seqnum.Size(wnd)+1)
	}
	if wnd == 0 {
		return false
	}
	_, _, ok := seqnum.Overlap(seq, seq.Add(segLen), nxt, nxt.Add(seqnum.Size(wnd)))
	return ok
}

// oowACK answers an unacceptable segment with an ACK. Segments without
// data are answered at most every oowInterval.
func (c *Conn) oowACK(e *env, hasData bool) {
	if !hasData {
		if c.lim.oowACK != 0 && e.now.Sub(c.lim.oowACK) < oowInterval {
			return
		}
		c.lim.oowACK = e.now
	}
	c.sendACK(e)
}

// synInSynchronized handles a SYN in SYN-RECEIVED or a synchronized state.
// It returns the segment to go on with, or false when it was consumed.
func (c *Conn) synInSynchronized(e *env, seg *Segment) (*Segment, bool) {
	f := seg.Flags
	if c.state == StateSynReceived && seg.Seq == c.rcv.irs && f&FlagRST == 0 {
		if f&FlagACK == 0 {
			// The peer retransmitted its SYN: our SYN-ACK was lost.
			e.st.RetransSegs++
			c.sendSYN(e)
			return nil, false
		}
		// Simultaneous open: the peer's SYN-ACK. Its SYN we have; its
		// ACK completes the handshake (RFC 9293, 3.5, figure 8).
		s := *seg
		s.Seq++
		s.Flags &^= FlagSYN
		return &s, true
	}
	// RFC 5961, 4.2: whatever its sequence number, answer with a challenge
	// ACK; a genuine peer that restarted will then send a RST.
	e.st.Drops[DropSYN]++
	if f&FlagRST == 0 {
		c.challengeACK(e)
	}
	return nil, false
}

// challengeACK sends an RFC 5961 challenge ACK, rate-limited per second
// (RFC 5961, 7).
func (c *Conn) challengeACK(e *env) {
	if e.now.Sub(c.lim.chalStart) >= time.Second || c.lim.chalStart == 0 {
		c.lim.chalStart = e.now
		c.lim.chalCount = 0
	}
	if c.lim.chalCount >= c.cfg.ChallengeACKLimit {
		e.st.Drops[DropChallengeLimit]++
		return
	}
	c.lim.chalCount++
	e.st.ChallengeACKs++
	c.sendACK(e)
}

// resetArrived handles an in-window RST (RFC 5961, 3.2): only one exactly
// at RCV.NXT resets; any other gets a challenge ACK.
func (c *Conn) resetArrived(e *env, seg *Segment) {
	e.st.InRsts++
	if seg.Seq != c.rcv.nxt {
		e.st.Drops[DropRST]++
		c.challengeACK(e)
		return
	}
	switch c.state {
	case StateSynReceived:
		if c.passive {
			c.closed(e, errReset) // back to LISTEN, silently
		} else {
			c.closed(e, errRefused)
		}
	case StateClosing, StateLastAck:
		c.closed(e, errNone)
	default:
		c.closed(e, errReset)
	}
}

// ackAcceptable does the acceptability test of the fifth check for the
// synchronized states (RFC 9293, 3.10.7.4; RFC 5961, 5.2): an ACK of data
// not yet sent is dropped and answered with an ACK, one older than the
// largest window the peer offered gets a challenge ACK.
func (c *Conn) ackAcceptable(e *env, seg *Segment) bool {
	ack := seg.Ack
	if ack.GreaterThan(c.snd.nxt) {
		e.st.Drops[DropBadAck]++
		c.oowACK(e, seg.PayloadLen() > 0)
		return false
	}
	if ack.LessThan(c.snd.una.Sub(seqnum.Size(c.snd.maxWnd))) {
		e.st.Drops[DropBadAck]++
		c.challengeACK(e)
		return false
	}
	return true
}

// ackArrived does the rest of the fifth check for the synchronized states
// (RFC 9293, 3.10.7.4), for an acceptable ACK. It returns false if the
// connection ended.
func (c *Conn) ackArrived(e *env, seg *Segment) bool {
	ack := seg.Ack
	newSACK := false
	var delivered uint32
	sackedBefore := uint32(0)
	if c.bbrOn() && !c.rackOn() {
		sackedBefore = c.sack.sackedIn(c.snd.una, c.snd.nxt)
	}
	if c.sack.ok && seg.Options.NumSACK > 0 {
		n := min(int(seg.Options.NumSACK), len(seg.Options.SACK))
		blocks := seg.Options.SACK[:n]
		if c.isDSACK(blocks, ack) {
			e.st.DSACKsRecv++
			d := seqRange{seqnum.Value(blocks[0].Start), seqnum.Value(blocks[0].End)}
			c.undoDSACK(e, d)
			c.rackDSACK(d)
			blocks = blocks[1:]
		}
		if c.rackOn() {
			var rb [len(seg.Options.SACK)]seqRange
			for i, b := range blocks {
				rb[i] = seqRange{seqnum.Value(b.Start), seqnum.Value(b.End)}
			}
			delivered = c.rackOnAck(e, ack, rb[:len(blocks)])
		}
		newSACK = c.sack.update(blocks, seqnum.Max(ack, c.snd.una), c.snd.nxt)
	} else if c.rackOn() {
		delivered = c.rackOnAck(e, ack, nil)
	}
	una, dup := c.snd.una, false
	if ack.GreaterThan(c.snd.una) {
		c.newAck(e, seg)
	} else if ack == c.snd.una && c.isDupAck(seg, newSACK) {
		dup = true
		c.duplicateAck(e)
	}
	if newSACK {
		c.lostRetransmit(e)
	}
	// Window update, guarded against old segments by WL1/WL2.
	if c.snd.wl1.LessThan(seg.Seq) || (c.snd.wl1 == seg.Seq && c.snd.wl2.LessThanEq(ack)) {
		c.snd.wnd = uint32(seg.Window) << c.snd.shift
		c.snd.maxWnd = max(c.snd.maxWnd, c.snd.wnd)
		c.snd.wl1, c.snd.wl2 = seg.Seq, ack
	}
	c.frtoOnAck(e, una, dup)
	if c.rackOn() {
		c.rackAfterAck(e, delivered)
	}
	if c.bbrOn() {
		if !c.rackOn() {
			// What the ACK delivered: SND.UNA's advance and the bytes
			// newly SACKed.
			delivered = uint32(una.Size(c.snd.una)) + c.sack.sackedIn(c.snd.una, c.snd.nxt)
			delivered -= min(delivered, sackedBefore)
		}
		c.bbrOnAck(e, delivered)
	}
	switch c.state {
	case StateFinWait1:
		if c.snd.finAcked() {
			c.setState(e, StateFinWait2)
			if c.appClosed {
				c.tm.close = e.now.Add(c.cfg.FinWait2Timeout)
			}
		}
	case StateClosing:
		if c.snd.finAcked() {
			c.enterTimeWait(e)
		}
	case StateLastAck:
		if c.snd.finAcked() {
			c.closed(e, errNone)
			return false
		}
	}
	return true
}

// isDupAck applies the duplicate-ACK definition (RFC 5681, 2; with SACK,
// RFC 6675, 2 and 5: an ACK that brings new SACK information counts even
// if it carries data).
func (c *Conn) isDupAck(seg *Segment, newSACK bool) bool {
	if c.snd.una == c.snd.nxt || seg.Flags&(FlagSYN|FlagFIN) != 0 {
		return false
	}
	if c.sack.ok {
		return newSACK
	}
	return seg.PayloadLen() == 0 && uint32(seg.Window)<<c.snd.shift == c.snd.wnd
}

// newAck processes an ACK that advances SND.UNA.
func (c *Conn) newAck(e *env, seg *Segment) {
	ack := seg.Ack
	acked := uint32(c.snd.una.Size(ack))
	// RTT measurement: from the timestamp echo (RFC 7323, 4) or the one
	// timed segment (RFC 6298, 3, with Karn's rule applied when sending).
	if c.ts.ok && seg.Options.TS && seg.Options.TSEcr != 0 {
		if !c.snd.una.LessThan(c.rtt.retxEnd) {
			c.sample(msDuration(c.tsNow(e.now) - seg.Options.TSEcr))
		}
	} else if c.rtt.timing && ack.GreaterThanEq(c.rtt.timedSeq) {
		c.sample(e.now.Sub(c.rtt.timedSent))
		c.rtt.timing = false
	}
	c.snd.una = ack
	c.pmtuOnAck(e)
	c.tm.tlp, c.tm.tlpSent = 0, 0 // an ACK of new data restarts the probe timer
	if ack.GreaterThan(c.snd.bufStart) {
		n := min(uint32(c.snd.bufStart.Size(ack)), c.snd.buffered)
		c.snd.head = (c.snd.head + n) % c.sndSize
		c.snd.buffered -= n
		c.snd.bufStart = c.snd.bufStart.Add(seqnum.Size(n))
		e.out.Freed += int(n)
		if n > 0 && !c.snd.finQueued {
			e.out.Wake |= WakeWritable
		}
	}
	c.sack.advance(ack)
	c.rtt.backoff = 0
	if c.rackOn() {
		c.undoOnAck(e, seg, c.rec.mode == modeSACK && ack.GreaterThanEq(c.rec.recover))
	}
	c.cwvOnAck(e, acked)
	if c.recoveryOnAck(e, acked) && !c.cwvHoldsCwnd() {
		ccFor(c.cc.Algo).OnAck(&c.cc, CCEvent{
			Now: e.now, MSS: uint32(c.snd.mss), Acked: acked, Flight: c.pipe(), SRTT: c.rtt.srtt,
		})
	}
	// RFC 6298, 5.2 and 5.3.
	if c.snd.una == c.snd.nxt {
		c.tm.rto = 0
	} else {
		c.tm.rto = e.now.Add(c.currentRTO())
	}
}

// msDuration converts a difference of millisecond timestamps to a
// duration; a negative difference (a bogus echo) gives -1.
func msDuration(d uint32) time.Duration {
	if int32(d) < 0 {
		return -1
	}
	return time.Duration(d) * time.Millisecond
}

// timeWaitArrived handles a segment in TIME-WAIT (RFC 9293, 3.10.7.4).
func (c *Conn) timeWaitArrived(e *env, seg *Segment) {
	f := seg.Flags
	if f&FlagRST != 0 {
		// RFC 1337: a RST must not cut TIME-WAIT short.
		e.st.InRsts++
		e.st.Drops[DropRST]++
		return
	}
	if f&FlagSYN != 0 && f&FlagACK == 0 {
		// A new incarnation may start if its SYN is clearly newer: by
		// timestamp when both used them (RFC 6191), else by sequence number.
		newer := seg.Seq.GreaterThan(c.rcv.nxt)
		if c.ts.ok && seg.Options.TS {
			newer = int32(seg.Options.TSVal-c.ts.recent) > 0
		}
		if newer {
			e.st.TimeWaitRecycled++
			c.closed(e, errNone)
			e.out.Reuse = true
			return
		}
	}
	if f&FlagFIN != 0 {
		// The peer did not hear our ACK of its FIN: again, and restart
		// the 2*MSL wait.
		c.tm.close = e.now.Add(c.cfg.TimeWait)
		c.sendACK(e)
		return
	}
	if seg.PayloadLen() > 0 || f&FlagSYN != 0 {
		c.oowACK(e, true)
	}
}
