package tcp

import "saturn/netproc/tcp/seqnum"

// Undo of window reductions found spurious, with RACK (Config.
// FastLossRecovery and SACK): a reordered or delayed segment taken for a
// lost one must not shrink the window for good.
//
//   - A fast recovery is undone when every segment it retransmitted is
//     reported by a D-SACK as having arrived twice (RFC 3708, 3.2, the
//     way Linux counts undo_retrans): the originals were not lost.
//   - A retransmission timeout is undone when the first ACK that advances
//     SND.UNA after it echoes a timestamp older than the retransmission
//     (the Eifel detection, RFC 3522, 3.2): it acknowledges the original
//     transmission, which was only delayed.
//
// The response (RFC 4015, as Linux's tcp_undo_cwnd_reduction) restores
// cwnd and ssthresh to what they were before the reduction, if larger;
// CUBIC's W_max keeps its reduced value.
type undoState struct {
	valid    bool   // a reduction may still be undone
	cwnd     uint32 // cwnd and ssthresh before the reduction
	ssthresh uint32
	retrans  uint32 // bytes retransmitted in the recovery and not D-SACKed since
	rtoTS    uint32 // TSval of the timeout's first retransmission (0: not after a timeout)
	ended    bool   // the recovery ended with D-SACKs still due: they may still undo it
	// from and to bound what the recovery may have retransmitted: SND.UNA
	// and SND.NXT when it began. Only a D-SACK within counts.
	from, to seqnum.Value
}

// undoStart records the window before a reduction.
func (c *Conn) undoStart(afterRTO bool, cwnd, ssthresh uint32, now Time) {
	u := &c.rack.undo
	*u = undoState{valid: true, cwnd: cwnd, ssthresh: ssthresh, from: c.snd.una, to: c.snd.nxt}
	if afterRTO && c.ts.ok {
		u.rtoTS = c.tsNow(now)
	} else if afterRTO {
		u.valid = false // no way to tell
	}
}

// undoRetransmitted counts bytes retransmitted during a fast recovery.
func (c *Conn) undoRetransmitted(n uint32) {
	if c.rec.mode == modeSACK {
		c.rack.undo.retrans += n
	}
}

// undoDSACK takes a D-SACK of [s, e): one retransmission fewer was
// needed. The D-SACK of the last retransmission often comes after the ACK
// that ended the recovery (the original arrived first); it still undoes
// it, as Linux's tcp_try_undo_dsack does.
func (c *Conn) undoDSACK(e *env, b seqRange) {
	u := &c.rack.undo
	if !u.valid || !(c.rec.mode == modeSACK || u.ended && c.rec.mode == modeOpen) ||
		b.start.LessThan(u.from) || b.end.GreaterThan(u.to) {
		return
	}
	n := uint32(b.start.Size(b.end))
	u.retrans -= min(n, u.retrans)
	if u.ended && u.retrans == 0 {
		u.valid = false
		e.st.SpuriousRecoveries++
		c.undo()
	}
}

// undoOnAck runs when an ACK advances SND.UNA: after a timeout, the
// Eifel test on its timestamp echo; at the end of a fast recovery, the
// D-SACK count. It reports whether it undid the reduction.
func (c *Conn) undoOnAck(e *env, seg *Segment, endsRecovery bool) bool {
	u := &c.rack.undo
	if !u.valid {
		return false
	}
	switch c.rec.mode {
	case modeLoss:
		// Only the first ACK after the timeout can tell, and when it can,
		// its verdict stands (F-RTO's included, frto.go).
		rtoTS := u.rtoTS
		eifel := rtoTS != 0 && seg.Options.TS && seg.Options.TSEcr != 0
		u.rtoTS = 0
		if eifel && int32(seg.Options.TSEcr-rtoTS) < 0 {
			c.undoTimeout(e)
			return true
		}
		if eifel || c.rec.frto == frtoOff {
			c.frtoStop()
		}
	case modeSACK:
		if endsRecovery {
			if u.retrans == 0 {
				u.valid = false
				e.st.SpuriousRecoveries++
				c.undo()
				return true
			}
			u.ended = true
		}
	}
	return false
}

// undoTimeout undoes a timeout found spurious. RACK took the ACK of the
// first segment for the ACK of its retransmission, unless it came quicker
// than any round trip (RFC 8985, 6.2, step 2), and would now deem lost
// everything sent before it: that delivery is forgotten, and the next
// ACK's sets RACK's reference again.
func (c *Conn) undoTimeout(e *env) {
	e.st.SpuriousRTOs++
	c.undo()
	c.rack.valid = false
}

// undo restores the window saved by undoStart.
func (c *Conn) undo() {
	u := &c.rack.undo
	c.cc.Cwnd = max(c.cc.Cwnd, u.cwnd)
	c.cc.Ssthresh = max(c.cc.Ssthresh, u.ssthresh)
	c.rec.mode = modeOpen
	c.rec.frto = frtoOff
	// What the timeout marked lost was not: the marks go, so that pipe
	// counts it in flight again until it is acknowledged.
	l := &c.rack.log
	for i := 0; i < int(l.n); i++ {
		l.r[i].flags &^= txLost
	}
	l.coalesce()
}
