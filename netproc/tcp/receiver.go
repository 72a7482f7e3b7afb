package tcp

import (
	"saturn/netproc/tcp/seqnum"
)

// recvState is the receive sequence space (RFC 9293, 3.3.1) and the
// receive buffer. The buffer holds, from head on, the readable bytes, then
// room for the window, in which out-of-order data sits at its own offset:
// byte RCV.NXT+k lives at head+readable+k (modulo the size). The ranges
// table only describes that data, so the out-of-order queue never needs
// memory beyond the receive buffer.
type recvState struct {
	irs   seqnum.Value
	nxt   seqnum.Value // RCV.NXT
	adv   seqnum.Value // right edge of the window we advertised: RCV.NXT+RCV.WND
	shift uint8        // our window scale

	head     uint32 // offset of the first readable byte
	readable uint32 // in-order bytes the application has not consumed

	nOOO  uint8
	ooo   [oooSlots]oooRange // out-of-order data, sorted, disjoint, above RCV.NXT
	stamp uint32             // recency counter for SACK block order

	finPending bool         // a FIN arrived out of order
	finSeq     seqnum.Value // its sequence number
	finRcvd    bool         // the FIN has been taken in order

	// dsack: a duplicate segment arrived; dsackRange is what it
	// duplicated, reported in the first SACK block of the next segment
	// (RFC 2883).
	dsack      bool
	dsackRange seqRange

	ackNow      bool         // an ACK must go out in this Step
	unacked     uint8        // full segments received since our last ACK
	lastAckSent seqnum.Value // Last.ACK.sent of RFC 7323, 4.3
}

// oooRange is a range of out-of-order data and when it last grew.
type oooRange struct {
	start, end seqnum.Value
	stamp      uint32
}

// ackPending reports whether received data awaits acknowledgment.
func (r *recvState) ackPending() bool { return r.ackNow || r.unacked > 0 }

// rcvMSS is the segment size we expect from the peer, for the
// receiver-side SWS rule and delayed ACKs.
func (c *Conn) rcvMSS() uint32 { return uint32(c.cfg.MSS) }

// windowField returns the window to advertise, moving the right edge
// forward when the receiver's SWS avoidance allows (RFC 9293, 3.8.6.2.2:
// only by at least min(RCV.BUFF/2, MSS)). The edge never moves back
// (RFC 9293, 3.8.6: shrinking the window is strongly discouraged).
func (c *Conn) windowField() uint16 {
	r := &c.rcv
	if r.adv.LessThan(r.nxt) {
		r.adv = r.nxt
	}
	want := c.windowWanted()
	cur := uint32(r.nxt.Size(r.adv))
	if want > cur && want-cur >= min(c.rcvSize/2, c.rcvMSS()) {
		r.adv = r.nxt.Add(seqnum.Size(want))
		cur = want
	}
	return uint16(min(cur>>r.shift, 0xffff))
}

// windowWanted returns the window the free buffer space allows, in
// multiples of the scale unit so the peer sees exactly that edge.
func (c *Conn) windowWanted() uint32 {
	free := c.rcvSize - c.rcv.readable
	free = min(free, uint32(0xffff)<<c.rcv.shift)
	return free &^ (1<<c.rcv.shift - 1)
}

// windowUpdateDue reports whether the application freed enough space for a
// window update to be worth a segment: the window at least doubles and
// grows by the SWS amount (Linux's rule in tcp_cleanup_rbuf).
func (c *Conn) windowUpdateDue() bool {
	if c.rcv.finRcvd || !c.state.synchronized() {
		return false
	}
	cur := uint32(0)
	if c.rcv.nxt.LessThan(c.rcv.adv) {
		cur = uint32(c.rcv.nxt.Size(c.rcv.adv))
	}
	want := c.windowWanted()
	return want > cur && want-cur >= min(c.rcvSize/2, c.rcvMSS()) && want >= 2*cur
}

// acceptData places the payload of an acceptable, trimmed segment starting
// at seq into the receive buffer, and takes the FIN when its turn comes.
func (c *Conn) acceptData(e *env, seq seqnum.Value, payload []byte, fin bool) {
	r := &c.rcv
	if len(payload) > 0 {
		hadOOO := r.nOOO > 0
		if seq == r.nxt {
			c.copyIn(e.rcv, seq, payload)
			r.nxt = r.nxt.Add(seqnum.Size(len(payload)))
			r.readable += uint32(len(payload))
			c.pullOOO()
			e.out.Wake |= WakeReadable
			if hadOOO {
				r.ackNow = true // a hole was filled (RFC 5681, 4.2)
			} else {
				c.scheduleACK(e, len(payload))
			}
		} else {
			end := seq.Add(seqnum.Size(len(payload)))
			c.noteDuplicate(seq, end)
			if c.insertOOO(seq, end) {
				c.copyIn(e.rcv, seq, payload)
				e.st.OFOQueued++
			} else {
				e.st.Drops[DropOFOFull]++
			}
			// An out-of-order segment gets an immediate duplicate ACK,
			// with SACK blocks (RFC 5681, 4.2; RFC 2018, 4).
			r.ackNow = true
		}
	}
	if fin {
		r.finPending = true
		r.finSeq = seq.Add(seqnum.Size(len(payload)))
	}
	if r.finPending && r.finSeq == r.nxt {
		c.finArrived(e)
	}
}

// noteDuplicate records, for a D-SACK (RFC 2883), the part of the
// out-of-order data [s, e) that had already arrived: the first range it
// overlaps.
func (c *Conn) noteDuplicate(s, e seqnum.Value) {
	if !c.sack.ok {
		return
	}
	for i := 0; i < int(c.rcv.nOOO); i++ {
		o := c.rcv.ooo[i]
		if a, b, ok := seqnum.Overlap(s, e, o.start, o.end); ok {
			c.setDSACK(a, b)
			return
		}
	}
}

// setDSACK reports [s, e) as duplicated in the next segment's first SACK
// block.
func (c *Conn) setDSACK(s, e seqnum.Value) {
	if !c.sack.ok || !s.LessThan(e) {
		return
	}
	c.rcv.dsack, c.rcv.dsackRange = true, seqRange{s, e}
	c.rcv.ackNow = true
}

// scheduleACK applies the delayed-ACK rules to in-order data: ACK at least
// every second full-sized segment, and within DelayedACK otherwise
// (RFC 9293, 3.8.6.3; RFC 5681, 4.2). While the application leaves more
// than half of the receive buffer unread, the ACK of two full segments
// waits for its next read instead (consume sends it, with the window that
// read opens), as Linux's does (__tcp_ack_snd_check sends at once only
// while the window's right edge keeps up): sent at once, it would
// advertise the sliver left free and cost a segment that lets nothing
// more through. DelayedACK still bounds the wait.
func (c *Conn) scheduleACK(e *env, n int) {
	r := &c.rcv
	if c.cfg.DelayedACK < 0 {
		r.ackNow = true
		return
	}
	// A segment larger than the MSS (coalesced by the link: GRO, or the
	// kernel's TSO handed up through a TUN device) counts as the full-sized
	// segments it stands for, so that it is acknowledged at once rather than
	// with every second such segment: holding back the ACK of 64 KiB would
	// stall a sender whose window is a few of them.
	full := uint32(n) / c.rcvMSS()
	if full == 0 && uint32(n) >= c.rcvMSS()/2 {
		full = 1
	}
	if full > 0 {
		r.unacked = uint8(min(uint32(r.unacked)+full, 255))
	} else if r.unacked == 0 {
		r.unacked = 1
	}
	if r.unacked >= 2 && r.readable <= c.rcvSize/2 {
		r.ackNow = true
		return
	}
	if c.tm.delack == 0 {
		c.tm.delack = e.now.Add(c.cfg.DelayedACK)
	}
}

// copyIn writes payload, which starts at seq (>= RCV.NXT), at its place in
// the circular receive buffer.
func (c *Conn) copyIn(buf []byte, seq seqnum.Value, payload []byte) {
	r := &c.rcv
	off := (r.head + r.readable + uint32(r.nxt.Size(seq))) % c.rcvSize
	n := copy(buf[off:], payload)
	copy(buf, payload[n:])
}

// insertOOO records [s, e) as received out of order, merging it with
// ranges it touches. It returns false when the table is full.
func (c *Conn) insertOOO(s, e seqnum.Value) bool {
	r := &c.rcv
	r.stamp++
	n := int(r.nOOO)
	i := 0
	for i < n && r.ooo[i].end.LessThan(s) {
		i++
	}
	j := i
	for j < n && r.ooo[j].start.LessThanEq(e) {
		s = seqnum.Min(s, r.ooo[j].start)
		e = seqnum.Max(e, r.ooo[j].end)
		j++
	}
	nr := oooRange{start: s, end: e, stamp: r.stamp}
	if j > i {
		r.ooo[i] = nr
		copy(r.ooo[i+1:], r.ooo[j:n])
		r.nOOO = uint8(n - (j - i) + 1)
		return true
	}
	if n == len(r.ooo) {
		return false
	}
	copy(r.ooo[i+1:n+1], r.ooo[i:n])
	r.ooo[i] = nr
	r.nOOO = uint8(n + 1)
	return true
}

// pullOOO moves out-of-order ranges that RCV.NXT has reached into the
// readable part.
func (c *Conn) pullOOO() {
	r := &c.rcv
	k := 0
	for k < int(r.nOOO) && r.ooo[k].start.LessThanEq(r.nxt) {
		if end := r.ooo[k].end; end.GreaterThan(r.nxt) {
			r.readable += uint32(r.nxt.Size(end))
			r.nxt = end
		}
		k++
	}
	if k > 0 {
		copy(r.ooo[:], r.ooo[k:r.nOOO])
		r.nOOO -= uint8(k)
	}
}

// finArrived takes the peer's FIN in order (RFC 9293, 3.10.7.4, eighth
// step).
func (c *Conn) finArrived(e *env) {
	r := &c.rcv
	r.finPending = false
	r.finRcvd = true
	r.nxt++
	r.nOOO = 0 // nothing can follow a FIN
	r.ackNow = true
	e.out.Wake |= WakePeerClosed | WakeReadable
	switch c.state {
	case StateSynReceived, StateEstablished:
		c.setState(e, StateCloseWait)
	case StateFinWait1:
		if c.snd.finAcked() {
			c.enterTimeWait(e)
		} else {
			c.setState(e, StateClosing)
		}
	case StateFinWait2:
		c.enterTimeWait(e)
	}
}

// enterTimeWait starts TIME-WAIT (RFC 9293, 3.10.7.4).
func (c *Conn) enterTimeWait(e *env) {
	c.setState(e, StateTimeWait)
	tm := &c.tm
	tm.rto, tm.persist, tm.keep, tm.delack = 0, 0, 0, 0
	tm.close = e.now.Add(c.cfg.TimeWait)
}
