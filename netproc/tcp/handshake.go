package tcp

import (
	"saturn/netproc/header"
	"saturn/netproc/tcp/seqnum"
)

// windowShiftFor returns the smallest window scale that lets a 16-bit
// window field cover a receive buffer of size bytes (RFC 7323, 2.3).
func windowShiftFor(size uint32) uint8 {
	var s uint8
	for s < maxWindowShift && size>>s > 0xffff {
		s++
	}
	return s
}

// open resets c for a new connection over buffers of the given sizes.
func (c *Conn) open(cfg Config, t Tuple, sndSize, rcvSize uint32, iss seqnum.Value, tsOffset uint32) {
	cfg = cfg.withDefaults()
	*c = Conn{cfg: cfg, tuple: t, sndSize: sndSize, rcvSize: rcvSize}
	c.snd.iss = iss
	c.snd.una = iss
	c.snd.nxt = iss
	c.snd.bufStart = iss + 1
	c.snd.mss = cfg.MSS
	c.rec.recover = iss
	c.rec.highRxt = iss
	c.rtt.retxEnd = iss
	c.ts.offset = tsOffset
	c.rtt.rto = cfg.InitialRTO
	c.cc.Algo = cfg.Congestion
	if !cfg.DisableWindowScale {
		c.rcv.shift = windowShiftFor(rcvSize)
	}
}

// connect performs an active open (RFC 9293, 3.10.1).
func (c *Conn) connect(e *env, p *ConnectParams) error {
	if c.state != StateClosed || c.appClosed {
		return ErrAlreadyOpen
	}
	if len(e.snd) == 0 || len(e.rcv) == 0 {
		return ErrBufferSize
	}
	c.open(p.Config, p.Tuple, uint32(len(e.snd)), uint32(len(e.rcv)), p.ISS, p.TSOffset)
	c.setState(e, StateSynSent)
	e.st.ActiveOpens++
	c.sendSYN(e)
	c.armRTO(e)
	return nil
}

// sendSYN sends our SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED). The window in
// a SYN is never scaled (RFC 7323, 2.2). In SYN-SENT every option we
// support is offered; in SYN-RECEIVED only those the peer offered are
// answered.
func (c *Conn) sendSYN(e *env) {
	seg := Segment{Seq: c.snd.iss, Flags: FlagSYN, Options: NoOptions()}
	seg.Window = uint16(min(c.rcvSize, 0xffff))
	o := &seg.Options
	o.MSS = c.cfg.MSS
	active := c.state == StateSynSent
	if !c.cfg.DisableWindowScale && (active || c.snd.wsAgreed) {
		o.WScale = int8(c.rcv.shift)
	}
	if !c.cfg.DisableSACK && (active || c.sack.ok) {
		o.SACKPermitted = true
	}
	if !c.cfg.DisableTimestamps && (active || c.ts.ok) {
		o.TS = true
		o.TSVal = c.tsNow(e.now)
		if !active {
			o.TSEcr = c.ts.recent
		}
	}
	seg.Flags |= c.ecnSYNFlags()
	if c.state == StateSynReceived {
		seg.Flags |= FlagACK
		c.rcv.adv = c.rcv.nxt.Add(seqnum.Size(seg.Window))
	}
	if c.snd.nxt == c.snd.iss {
		c.snd.nxt = c.snd.iss + 1
		if !c.ts.ok {
			c.rtt.timing = true
			c.rtt.timedSeq = c.snd.nxt
			c.rtt.timedSent = e.now
		}
	}
	c.transmit(e, seg)
}

// negotiate applies the options of the peer's SYN (RFC 9293, 3.7.1;
// RFC 7323, 2.2 and 3.2; RFC 2018, 2).
func (c *Conn) negotiate(e *env, o *header.TCPOptions) {
	mss := uint16(defaultPeerMSS)
	if o.MSS != 0 {
		mss = o.MSS
	}
	c.snd.mss = max(min(mss, c.cfg.MSS), minMSS)
	if !c.cfg.DisableWindowScale && o.WScale >= 0 {
		c.snd.wsAgreed = true
		c.snd.shift = uint8(min(int(o.WScale), maxWindowShift))
	} else {
		c.snd.shift = 0
		c.rcv.shift = 0
	}
	c.sack.ok = !c.cfg.DisableSACK && o.SACKPermitted
	c.ts.ok = !c.cfg.DisableTimestamps && o.TS
	if c.ts.ok {
		c.ts.recent = o.TSVal
		c.ts.recentAt = e.now
	}
}

// synSentArrived handles a segment in SYN-SENT (RFC 9293, 3.10.7.3).
func (c *Conn) synSentArrived(e *env, seg *Segment) {
	ackOK := false
	if seg.Flags&FlagACK != 0 {
		// The ACK must acknowledge our SYN and nothing more.
		if seg.Ack.LessThanEq(c.snd.iss) || seg.Ack.GreaterThan(c.snd.nxt) {
			if seg.Flags&FlagRST == 0 {
				c.replyRST(e, seg)
			}
			e.st.Drops[DropSynSent]++
			return
		}
		ackOK = true
	}
	if seg.Flags&FlagRST != 0 {
		e.st.InRsts++
		if ackOK {
			c.closed(e, errRefused)
		} else {
			e.st.Drops[DropSynSent]++ // a RST must acknowledge our SYN (RFC 5961, 3)
		}
		return
	}
	if seg.Flags&FlagSYN == 0 {
		e.st.Drops[DropSynSent]++
		return
	}
	c.rcv.irs = seg.Seq
	c.rcv.nxt = seg.Seq + 1
	c.rcv.lastAckSent = c.rcv.nxt
	c.negotiate(e, &seg.Options)
	// Our SYN advertised an unscaled window of this size.
	c.rcv.adv = c.rcv.nxt.Add(seqnum.Size(min(c.rcvSize, 0xffff)))
	if !ackOK {
		// Simultaneous open (RFC 9293, 3.5, figure 8): answer with a
		// SYN-ACK from the same ISS; the peer's ACK completes it.
		c.setState(e, StateSynReceived)
		c.snd.wnd = uint32(seg.Window)
		c.snd.maxWnd = c.snd.wnd
		c.snd.wl1, c.snd.wl2 = seg.Seq, c.snd.una
		c.sendSYN(e)
		return
	}
	c.snd.wnd = uint32(seg.Window) // unscaled in a SYN (RFC 7323, 2.2)
	c.snd.maxWnd = c.snd.wnd
	c.snd.wl1, c.snd.wl2 = seg.Seq, seg.Ack
	c.ecnNegotiated(seg, true)
	c.synAcked(e, seg)
	c.rcv.ackNow = true
	// Data or FIN carried with the SYN-ACK follows the SYN.
	if n := seg.PayloadLen(); n > 0 || seg.Flags&FlagFIN != 0 {
		payload := seg.Payload
		if uint32(len(payload)) > c.rcvSize-c.rcv.readable {
			payload = payload[:c.rcvSize-c.rcv.readable]
		}
		c.acceptData(e, seg.Seq+1, payload, seg.Flags&FlagFIN != 0 && len(payload) == n)
	}
	c.output(e)
}

// synAcked completes the handshake when our SYN is acknowledged: from
// SYN-SENT by the SYN-ACK, from SYN-RECEIVED by the ACK.
func (c *Conn) synAcked(e *env, seg *Segment) {
	if c.rtt.timing && seg.Ack.GreaterThanEq(c.rtt.timedSeq) && !c.rtt.synRetx {
		c.sample(e.now.Sub(c.rtt.timedSent))
	} else if c.ts.ok && seg.Options.TS && seg.Options.TSEcr != 0 && !c.rtt.synRetx {
		c.sample(msDuration(c.tsNow(e.now) - seg.Options.TSEcr))
	}
	c.rtt.timing = false
	if c.rtt.synRetx && !c.rtt.sampled {
		c.rtt.rto = max(c.rtt.rto, handshakeRTO) // RFC 6298, 5.7
	}
	c.rtt.backoff = 0
	c.snd.una = seg.Ack
	c.rec.highRxt = c.snd.una
	c.rec.recover = c.snd.una
	c.tm.rto = 0
	ccFor(c.cc.Algo).Init(&c.cc, CCEvent{Now: e.now, MSS: uint32(c.snd.mss)})
	if c.rtt.synRetx {
		c.cc.Cwnd = uint32(c.snd.mss) // RFC 5681, 3.1: IW is one segment after a lost SYN
	}
	c.snd.lastSend = e.now
	if c.snd.finQueued {
		c.setState(e, StateFinWait1) // shutdown was requested before the handshake ended
	} else {
		c.setState(e, StateEstablished)
	}
	e.out.Wake |= WakeConnected
	if c.snd.buffered < c.sndSize && !c.snd.finQueued {
		e.out.Wake |= WakeWritable
	}
	c.heardFromPeer(e)
}

// replyRST answers an unacceptable segment with the reset RFC 9293,
// 3.10.7.1 prescribes for it.
func (c *Conn) replyRST(e *env, seg *Segment) {
	if r, ok := ResetFor(seg); ok {
		e.st.OutRsts++
		e.st.OutSegs++
		e.out.Segments = append(e.out.Segments, r)
	}
}
