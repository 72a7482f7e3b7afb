package tcp

import "saturn/netproc/tcp/seqnum"

// F-RTO (RFC 5682), with Config.FastLossRecovery: telling a spurious
// retransmission timeout from a real one without timestamps. A timeout is
// spurious when the path only held the data up for longer than the RTO (a
// delay spike, a link-layer retransmission, a route change); the data was
// not lost, and retransmitting the whole window and collapsing cwnd to one
// segment is all loss.
//
// After the timeout's retransmission of the first segment (step 1), the
// sender waits for the ACK that advances SND.UNA (step 2). If it covers
// everything sent before the timeout ("recover"), nothing can be told and
// recovery goes on as usual (2a). Otherwise the sender sends up to two
// new segments instead of retransmitting (2b), and the next ACK decides
// (step 3): if it acknowledges data sent before the timeout and never
// retransmitted, that data was not lost and the timeout was spurious
// (3b); if instead it acknowledges only the new data, by SACK or as a
// duplicate ACK, the older segments are still missing and the loss was
// real (3a). This is RFC 5682's SACK-enhanced version (section 3.1) when
// SACK was agreed (the transmission log of rack.go tells retransmitted
// from original ranges and old from new), and its basic version (section
// 2.1) otherwise, where a cumulative ACK that advances is the original's
// and a duplicate ACK the new data's.
//
// A spurious timeout is undone as a fast recovery found spurious is
// (undo.go: cwnd and ssthresh go back, RFC 4015's response; the loss marks
// go) and counted in Stats.SpuriousRTOs. With timestamps, the Eifel test
// on the first ACK after the timeout (RFC 3522) decides alone, either
// way: an echo of the retransmission's TSval shows that the first segment
// itself was lost, which F-RTO's later steps cannot see. F-RTO starts only
// on a first timeout out of the open state: after a fast recovery or a
// timeout of the same data, the window is already the loss window
// (RFC 5682, 2.1, step 1).
type frtoStep uint8

const (
	frtoOff     frtoStep = iota
	frtoWaitAck          // step 2: waiting for the ACK that advances SND.UNA
	frtoWaitNew          // step 3: new data sent in its place; the next ACK decides
)

// frtoAcked is what the ACK being processed delivered, as far as F-RTO
// cares: ranges sent before the timeout and never retransmitted (orig),
// and ranges sent after it (above recover).
type frtoAcked struct {
	orig, above bool
}

// frtoStart runs step 1 after a timeout: F-RTO begins if the timeout came
// out of the open state and is not a repeated one. cwnd and ssthresh are
// the window before the timeout, for the undo.
func (c *Conn) frtoStart(e *env, ok bool, cwnd, ssthresh uint32) {
	c.rec.frto = frtoOff
	if !ok || !c.cfg.FastLossRecovery {
		return
	}
	if !c.rackOn() {
		// Without RACK, the undo state is kept for F-RTO alone.
		c.undoStart(true, cwnd, ssthresh, e.now)
	}
	c.rec.frto = frtoWaitAck
	c.rack.undo.valid = true
}

// frtoNoteDelivered records a range the ACK being processed delivers
// (from rackDelivered, so with SACK only).
func (c *Conn) frtoNoteDelivered(e *env, r txRange) {
	if c.rec.frto == frtoOff {
		return
	}
	if r.end.GreaterThan(c.rec.recover) {
		e.frto.above = true
	} else if r.flags&txRetx == 0 {
		e.frto.orig = true
	}
}

// frtoOnAck runs steps 2 and 3 for an acceptable ACK. una is SND.UNA
// before the ACK; dup says it was a duplicate ACK (RFC 5681, 2).
func (c *Conn) frtoOnAck(e *env, una seqnum.Value, dup bool) {
	if c.rec.frto == frtoOff {
		return
	}
	if c.rec.mode != modeLoss {
		// The ACK covered recover (step 2a, or an ACK of everything in
		// step 3), or the Eifel test undid the timeout.
		c.frtoStop()
		return
	}
	advanced := c.snd.una.GreaterThan(una)
	switch c.rec.frto {
	case frtoWaitAck:
		if !advanced {
			return // step 2: a duplicate only updates the scoreboard
		}
		// Step 2b: new data in place of retransmissions, if there is any
		// and the peer's window takes it; otherwise recovery as usual.
		if !c.dataEnd().GreaterThan(c.snd.nxt) || c.windowRoom() == 0 {
			c.frtoStop()
			return
		}
		c.rec.frto = frtoWaitNew
		mss := c.payloadMax()
		for i := 0; i < 2 && c.sendNew(e, mss, mss, true); i++ {
		}
	case frtoWaitNew:
		orig, above := e.frto.orig, e.frto.above
		if !c.rackOn() {
			// The basic version: an advancing ACK acknowledges originals
			// (only the first segment was retransmitted, and acknowledged
			// in step 2); a duplicate is the new data arriving past a hole.
			orig, above = advanced, dup
		}
		switch {
		case orig:
			// Step 3b: spurious.
			c.undoTimeout(e)
		case above:
			// Step 3a: the loss was real. Recovery goes on from a window
			// of at most three segments, retransmitting what was lost.
			c.frtoStop()
			c.cc.Cwnd = min(c.cc.Cwnd, 3*uint32(c.snd.mss))
		}
	}
}

// frtoStop ends F-RTO without finding the timeout spurious.
func (c *Conn) frtoStop() {
	c.rec.frto = frtoOff
	c.rack.undo.valid = false
}

// frtoHolding reports whether output must send nothing: in step 3 the new
// segments went in place of the retransmissions, and the next ACK says
// which to send.
func (c *Conn) frtoHolding() bool { return c.rec.frto == frtoWaitNew }
