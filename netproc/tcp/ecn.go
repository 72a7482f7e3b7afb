package tcp

import "saturn/netproc/tcp/seqnum"

// Explicit Congestion Notification (RFC 3168), with Config.ECN; off by
// default. The core decides and the shell carries the bits it cannot see:
// a received Segment's CE says its IP header carried Congestion
// Experienced, and an output Segment's ECT asks the shell to mark its IP
// header ECN-Capable (ECT(0)).
//
//   - Negotiation (6.1.1): our SYN carries ECE and CWR; a SYN-ACK with ECE
//     and without CWR agrees. A listener agrees to a SYN with ECE and CWR
//     with a SYN-ACK carrying ECE, unless it answers with a SYN cookie,
//     which cannot remember it.
//   - Only new data is ECT: not SYNs, pure ACKs, retransmissions or
//     probes (6.1.5, 6.1.6).
//   - As a receiver (6.1.3): a CE mark makes every ACK carry ECE until a
//     segment with CWR arrives.
//   - As a sender (6.1.2): an ACK with ECE reduces the window as a loss
//     would, at most once a window, and the next new data carries CWR.
//     During loss recovery the window is already reduced and ECE is
//     ignored.
type ecnState struct {
	ok      bool         // negotiated
	echo    bool         // CE seen: set ECE on our ACKs until CWR arrives
	cwr     bool         // reduced: set CWR on the next new data
	recover seqnum.Value // no further reduction before SND.UNA passes this
}

// ecnSYNFlags returns the ECN flags of our SYN or SYN-ACK.
func (c *Conn) ecnSYNFlags() Flags {
	if !c.cfg.ECN {
		return 0
	}
	if c.state == StateSynSent {
		return FlagECE | FlagCWR
	}
	if c.ecn.ok {
		return FlagECE
	}
	return 0
}

// ecnNegotiated records the peer's answer: a SYN-ACK (active) or a SYN
// (passive).
func (c *Conn) ecnNegotiated(syn *Segment, active bool) {
	if !c.cfg.ECN {
		return
	}
	c.ecn.recover = c.snd.iss
	if active {
		c.ecn.ok = syn.Flags&(FlagECE|FlagCWR) == FlagECE
	} else {
		c.ecn.ok = syn.Flags&(FlagECE|FlagCWR) == FlagECE|FlagCWR
	}
}

// ecnArrived takes the ECN bits of an acceptable segment: CWR ends our
// echo, CE starts it (RFC 3168, 6.1.3, in that order), and ECE on an ACK
// may reduce the window.
func (c *Conn) ecnArrived(e *env, seg *Segment) {
	if !c.ecn.ok {
		return
	}
	if seg.Flags&FlagCWR != 0 {
		c.ecn.echo = false
	}
	if seg.CE {
		e.st.ECNCEReceived++
		if !c.ecn.echo {
			c.rcv.ackNow = true // tell the sender at once
		}
		c.ecn.echo = true
	}
	if seg.Flags&FlagECE != 0 && seg.Flags&FlagSYN == 0 && c.rec.mode == modeOpen &&
		c.snd.una != c.snd.nxt && !c.snd.una.LessThan(c.ecn.recover) {
		e.st.ECNReductions++
		ev := c.ccEvent(e)
		ev.Flight = uint32(c.snd.una.Size(c.snd.nxt))
		c.cwvBeforeReduction(ev.Flight)
		ccFor(c.cc.Algo).OnCongestion(&c.cc, ev)
		c.cc.Cwnd = max(c.cc.Cwnd, uint32(c.snd.mss))
		c.ecn.cwr = true
		c.ecn.recover = c.snd.nxt
	}
}

// ecnMark sets the ECN flags of an outgoing segment: ECE on ACKs while
// echoing; for new data, ECT and, after a reduction, CWR.
func (c *Conn) ecnMark(seg *Segment, newData bool) {
	if !c.ecn.ok || seg.Flags&(FlagSYN|FlagRST) != 0 {
		return
	}
	if c.ecn.echo && seg.Flags&FlagACK != 0 {
		seg.Flags |= FlagECE
	}
	if newData && seg.PayloadLen() > 0 {
		seg.ECT = true
		if c.ecn.cwr {
			seg.Flags |= FlagCWR
			c.ecn.cwr = false
		}
	}
}
