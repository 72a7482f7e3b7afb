package tcp

import (
	"saturn/netproc/header"
	"saturn/netproc/tcp/seqnum"
)

// maxSegmentsPerStep bounds the segments one Step may emit, so a Step's
// work and Output stay bounded whatever the window; the rest is sent on the
// next ACK or timer.
const maxSegmentsPerStep = 1024

// Option sizes on the wire, padded to 4 bytes as stacks send them.
const (
	tsOptionLen       = 12 // NOP NOP TS(10)
	sackOptionBase    = 4  // NOP NOP SACK kind and length
	sackOptionPerBlk  = 8
	maxSACKBlocksTS   = 3 // blocks that fit beside timestamps (RFC 2018, 3)
	maxSACKBlocksNoTS = 4
)

// canSendData reports whether the state allows sending data or FIN.
func (c *Conn) canSendData() bool {
	switch c.state {
	case StateEstablished, StateCloseWait, StateFinWait1, StateClosing, StateLastAck:
		return true
	}
	return false
}

// sackBlocksToSend returns how many SACK blocks our next segment carries.
func (c *Conn) sackBlocksToSend() int {
	n := int(c.rcv.nOOO)
	if c.rcv.dsack {
		n++
	}
	if !c.sack.ok || n == 0 {
		return 0
	}
	limit := maxSACKBlocksNoTS
	if c.ts.ok {
		limit = maxSACKBlocksTS
	}
	return min(n, limit)
}

// payloadMax returns the data bytes a full segment carries: the send MSS
// less the options every segment carries (RFC 9293, 3.7.1: the MSS counts
// the TCP header with its options).
func (c *Conn) payloadMax() uint32 {
	m := uint32(c.snd.mss)
	if c.ts.ok {
		m -= tsOptionLen
	}
	if n := c.sackBlocksToSend(); n > 0 {
		m -= uint32(sackOptionBase + sackOptionPerBlk*n)
	}
	return m
}

// dataEnd returns the sequence number after the last queued byte.
func (c *Conn) dataEnd() seqnum.Value { return c.snd.bufStart.Add(seqnum.Size(c.snd.buffered)) }

// windowRoom returns how many bytes beyond SND.NXT the peer's window allows.
func (c *Conn) windowRoom() uint32 {
	end := c.snd.una.Add(seqnum.Size(c.snd.wnd))
	if !c.snd.nxt.LessThan(end) {
		return 0
	}
	return uint32(c.snd.nxt.Size(end))
}

// output sends what the windows, Nagle and the recovery state allow, then
// any ACK still owed.
func (c *Conn) output(e *env) {
	if c.canSendData() {
		for i := 0; i < maxSegmentsPerStep && c.sendOne(e); i++ {
		}
		if c.bbrOn() {
			c.bbrAppLimited()
		}
		c.armPersist(e)
	}
	c.armLossProbe(e)
	if c.rcv.ackNow && c.state != StateClosed {
		c.sendACK(e)
	}
}

// sendOne sends one segment if allowed: during recovery a lost segment
// first, else new data (RFC 6675's NextSeg(), rules 1 and 2).
func (c *Conn) sendOne(e *env) bool {
	if c.bbrOn() && c.bbrPaceHold(e) {
		return false
	}
	mss := c.payloadMax()
	cwnd := c.cc.Cwnd
	pipe := c.pipe()
	if c.rackOn() && pipe < cwnd {
		// Linux's loss recovery counts the window in segments: a segment
		// may go while pipe is below cwnd (tcp_cwnd_test). Counted in
		// bytes, a window that is not a multiple of the segment size
		// (after a multiplicative decrease) would leave its last fraction
		// unused, and a window of a few segments would lose one of them.
		cwnd = pipe + (cwnd-pipe+mss-1)/mss*mss
	}
	switch c.rec.mode {
	case modeSACK, modeLoss:
		if pipe >= cwnd || cwnd-pipe < mss || c.frtoHolding() {
			return false
		}
		if c.rackOn() {
			if s, end, ok := c.rackNextLost(); ok {
				c.sendRange(e, s, seqnum.Min(end, s.Add(seqnum.Size(mss))))
				return true
			}
		} else if s, ok := c.nextLost(); ok {
			end := c.retransmitFrom(e, s)
			c.rec.highRxt = seqnum.Max(c.rec.highRxt, end)
			return end != s
		}
		return c.sendNew(e, mss, cwnd-pipe, false)
	}
	limit := cwnd
	if c.rec.mode == modeOpen && !c.sack.ok && c.rec.dupAcks < dupThresh {
		// Limited transmit (RFC 3042): each of the first two duplicate ACKs
		// lets one new segment out.
		limit += uint32(c.rec.dupAcks) * uint32(c.snd.mss)
	}
	var room uint32
	if pipe < limit {
		room = limit - pipe
	}
	return c.pmtuProbe(e, room) || c.sendNew(e, mss, room, false)
}

// sendNew sends new data, at most mss bytes and what room (congestion) and
// the peer's window allow, applying the sender's SWS avoidance and Nagle's
// algorithm (RFC 9293, 3.8.6.2.1 and 3.7.4) unless force. It sends a FIN
// after the last byte once shutdown was requested.
func (c *Conn) sendNew(e *env, mss, room uint32, force bool) bool {
	nxt, dataEnd := c.snd.nxt, c.dataEnd()
	var avail uint32
	if nxt.LessThan(dataEnd) {
		avail = uint32(nxt.Size(dataEnd))
	}
	finToSend := c.snd.finQueued && nxt.LessThanEq(dataEnd)
	if avail == 0 {
		if !finToSend {
			return false
		}
		// A bare FIN needs neither window nor congestion room: it carries
		// no data and a receiver takes it at RCV.NXT even with a zero
		// window (as Linux does).
		c.sendRange(e, nxt, nxt+1)
		return true
	}
	c.restartAfterIdle(e)
	n := min(avail, mss, c.windowRoom(), room)
	if n == 0 {
		return false
	}
	if !force {
		if n < avail && n < mss && n < c.snd.maxWnd/2 {
			return false // sender SWS avoidance: wait for a useful window
		}
		if n == avail && n < mss && !c.cfg.NoDelay && !c.snd.finQueued && c.snd.una != c.snd.nxt {
			return false // Nagle: one small segment in flight at a time
		}
	}
	end := nxt.Add(seqnum.Size(n))
	if c.snd.finQueued && n == avail {
		end++ // the FIN rides on the last data
	}
	c.sendRange(e, nxt, end)
	return true
}

// sendRange sends the segment covering [s, end) of the send sequence space:
// data from the send buffer and the FIN if the range holds its sequence
// number. It serves new data and retransmissions alike.
func (c *Conn) sendRange(e *env, s, end seqnum.Value) {
	dataEnd := c.dataEnd()
	seg := Segment{Seq: s, Flags: FlagACK}
	if dEnd := seqnum.Min(end, dataEnd); s.LessThan(dEnd) {
		seg.Payload, seg.Payload2 = c.sendView(e.snd, s, dEnd)
		if dEnd == dataEnd {
			seg.Flags |= FlagPSH
		}
	}
	if c.snd.finQueued && end.GreaterThan(dataEnd) {
		seg.Flags |= FlagFIN
	}
	c.ecnMark(&seg, !s.LessThan(c.snd.nxt))
	c.transmit(e, seg)
	if c.bbrOn() {
		c.bbrSent(e, s, s.Add(seg.SeqLen()), uint32(len(seg.Payload)+len(seg.Payload2)), c.snd.una == c.snd.nxt)
	}
	if c.rackOn() {
		c.rackSent(e, s, s.Add(seg.SeqLen()))
	}
	if s.LessThan(c.snd.nxt) {
		e.st.RetransSegs++
		c.rtt.timing = false // Karn's algorithm (RFC 6298, 3)
		c.rtt.retxEnd = seqnum.Max(c.rtt.retxEnd, s.Add(seg.SeqLen()))
	}
	if segEnd := s.Add(seg.SeqLen()); segEnd.GreaterThan(c.snd.nxt) {
		c.tm.tlp = 0 // new data restarts the probe timer (RFC 8985, 7.2)
		if !c.rtt.timing && !c.ts.ok {
			c.rtt.timing = true
			c.rtt.timedSeq = segEnd
			c.rtt.timedSent = e.now
		}
		c.snd.nxt = segEnd
	}
	c.snd.lastSend = e.now
	c.armRTO(e)
}

// sendView returns the send-buffer bytes for [s, end) as up to two slices.
func (c *Conn) sendView(buf []byte, s, end seqnum.Value) ([]byte, []byte) {
	off := (c.snd.head + uint32(c.snd.bufStart.Size(s))) % c.sndSize
	n := uint32(s.Size(end))
	if off+n <= c.sndSize {
		return buf[off : off+n], nil
	}
	return buf[off:], buf[:off+n-c.sndSize]
}

// transmit completes seg (acknowledgment, window, timestamps, SACK blocks)
// and appends it to the output. SYN segments bring their own window and
// options.
func (c *Conn) transmit(e *env, seg Segment) {
	if seg.Flags&FlagSYN == 0 {
		seg.Options = NoOptions()
		if seg.Flags&FlagRST == 0 {
			seg.Window = c.windowField()
		}
		if c.ts.ok {
			// Timestamps go on every segment once negotiated, RSTs
			// included (RFC 7323, 3.2).
			seg.Options.TS = true
			seg.Options.TSVal = c.tsNow(e.now)
			seg.Options.TSEcr = c.ts.recent
		}
		if seg.Flags&FlagRST == 0 {
			c.fillSACK(&seg.Options, e)
		}
	}
	if seg.Flags&FlagACK != 0 {
		seg.Ack = c.rcv.nxt
		c.rcv.ackNow = false
		c.rcv.unacked = 0
		c.rcv.lastAckSent = c.rcv.nxt
		c.tm.delack = 0
	}
	if seg.Flags&FlagRST != 0 {
		e.st.OutRsts++
	}
	e.st.OutSegs++
	e.out.Segments = append(e.out.Segments, seg)
}

// fillSACK adds our SACK blocks: a D-SACK first if a duplicate arrived
// (RFC 2883, 4: reported once), then the most recently changed range, then
// the others by recency (RFC 2018, 4).
func (c *Conn) fillSACK(o *header.TCPOptions, e *env) {
	n := c.sackBlocksToSend()
	if n == 0 {
		return
	}
	k0 := 0
	if c.rcv.dsack {
		o.SACK[0] = header.SACKBlock{Start: uint32(c.rcv.dsackRange.start), End: uint32(c.rcv.dsackRange.end)}
		c.rcv.dsack = false
		e.st.DSACKsSent++
		k0 = 1
	}
	var used [oooSlots]bool
	for k := k0; k < n; k++ {
		best := -1
		for i := 0; i < int(c.rcv.nOOO); i++ {
			if !used[i] && (best < 0 || c.rcv.ooo[i].stamp > c.rcv.ooo[best].stamp) {
				best = i
			}
		}
		used[best] = true
		r := c.rcv.ooo[best]
		o.SACK[k] = header.SACKBlock{Start: uint32(r.start), End: uint32(r.end)}
	}
	o.NumSACK = uint8(n)
}

// sendACK sends a bare ACK: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
func (c *Conn) sendACK(e *env) {
	seg := Segment{Seq: c.snd.nxt, Flags: FlagACK}
	c.ecnMark(&seg, false)
	c.transmit(e, seg)
}

// sendRST sends <SEQ=SND.NXT><CTL=RST>, as an abort does
// (RFC 9293, 3.10.5).
func (c *Conn) sendRST(e *env) {
	c.transmit(e, Segment{Seq: c.snd.nxt, Flags: FlagRST})
}
