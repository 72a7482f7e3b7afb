package tcp

import (
	"saturn/netproc/header"
	"saturn/netproc/tcp/seqnum"
)

// CookieMode says when a listener answers SYNs with SYN cookies.
type CookieMode uint8

// The cookie modes.
const (
	CookiesWhenFull CookieMode = iota // when the SYN backlog is full (the default)
	CookiesAlways                     // for every SYN: no state until the ACK
	CookiesNever                      // drop SYNs when the backlog is full
)

// ListenerConfig configures a Listener.
type ListenerConfig struct {
	// Conn is the configuration of the connections the listener creates.
	Conn Config
	// SendBuf and RecvBuf are the sizes of the buffers the caller gives
	// each child; they set the window our SYN-ACK advertises.
	SendBuf, RecvBuf uint32
	// Backlog is the number of SYN-RECEIVED children kept before SYNs are
	// answered with cookies (or dropped). Default 256.
	Backlog uint32
	Cookies CookieMode
	// Secret keys the listener's ISNs, timestamp offsets and cookies.
	// Changing it invalidates the cookies handed out before.
	Secret Secret
}

// DefaultBacklog is the SYN backlog used when ListenerConfig.Backlog is 0.
const DefaultBacklog = 256

// Listener is a socket in the LISTEN state (RFC 9293, 3.10.7.2). Like Conn
// it is plain data. It keeps no list of children: the caller holds them,
// tells Step how many are half-open, and keeps its own accept queue.
type Listener struct {
	cfg        ListenerConfig
	lastCookie Time // when we last sent a cookie
}

// NewListener returns a listener with the given configuration.
func NewListener(cfg ListenerConfig) Listener {
	if cfg.Backlog == 0 {
		cfg.Backlog = DefaultBacklog
	}
	cfg.Conn = cfg.Conn.withDefaults()
	return Listener{cfg: cfg}
}

// Config returns the listener's configuration.
func (l *Listener) Config() ListenerConfig { return l.cfg }

// ListenInput is a segment for a listener: one that matched no connection.
type ListenInput struct {
	Seg   Segment
	Tuple Tuple // the segment's tuple, seen from our side
	// HalfOpen is the number of this listener's children the caller holds
	// in SYN-RECEIVED.
	HalfOpen int
	// AcceptQueueFull makes the listener drop SYNs and cookie ACKs, as
	// Linux does when the accept queue overflows.
	AcceptQueueFull bool
}

// ListenResult says what a listener did with a segment.
type ListenResult uint8

// The listener results.
const (
	// ListenDropped: nothing to do.
	ListenDropped ListenResult = iota
	// ListenReplied: out holds a reply (a RST or a cookie SYN-ACK); the
	// listener kept no state.
	ListenReplied
	// ListenNewConn: *child now holds a new connection for the tuple,
	// using the buffers of mem; the caller adds it to its table. It is in
	// SYN-RECEIVED after a SYN (its SYN-ACK is in out), or already
	// ESTABLISHED (or beyond) after a valid cookie, in which case it
	// belongs on the accept queue now; otherwise it goes there with
	// WakeConnected.
	ListenNewConn
)

// Step handles a segment that matched no connection. child points at
// storage for a new connection and mem at its buffers, whose sizes must be
// the configured SendBuf and RecvBuf; child may be nil when the caller has
// no room, and the listener then answers SYNs with cookies only. mem.Stats
// receives the listener's counters.
func (l *Listener) Step(in *ListenInput, now Time, child *Conn, mem Mem, out *Output) ListenResult {
	e := newEnv(now, mem, out)
	if child != nil && (uint32(len(mem.Send)) != l.cfg.SendBuf || uint32(len(mem.Recv)) != l.cfg.RecvBuf ||
		l.cfg.SendBuf == 0 || l.cfg.RecvBuf == 0) {
		panic(ErrBufferSize)
	}
	seg := &in.Seg
	e.st.InSegs++
	f := seg.Flags
	switch {
	case f&FlagRST != 0:
		e.st.InRsts++
		e.st.Drops[DropListen]++
		return ListenDropped
	case f&FlagACK != 0 && f&FlagSYN == 0:
		return l.cookieACK(&e, in, child)
	case f&FlagACK != 0:
		// Any acknowledgment is bad in LISTEN (RFC 9293, 3.10.7.2).
		return l.reset(&e, seg)
	case f&FlagSYN == 0:
		e.st.Drops[DropListen]++
		return ListenDropped
	}
	if in.AcceptQueueFull {
		e.st.ListenOverflows++
		e.st.Drops[DropListen]++
		return ListenDropped
	}
	full := in.HalfOpen >= int(l.cfg.Backlog) || child == nil
	if l.cfg.Cookies == CookiesAlways || (full && l.cfg.Cookies == CookiesWhenFull) {
		l.sendCookie(&e, in)
		return ListenReplied
	}
	if full {
		e.st.Drops[DropListen]++
		return ListenDropped
	}
	iss := ISN(l.cfg.Secret, in.Tuple, now)
	child.open(l.cfg.Conn, in.Tuple, l.cfg.SendBuf, l.cfg.RecvBuf, iss, TSOffset(l.cfg.Secret, in.Tuple))
	child.acceptSYN(&e, seg)
	e.st.PassiveOpens++
	child.sendSYN(&e)
	child.armRTO(&e)
	out.Timer = child.nextDeadline()
	return ListenNewConn
}

// acceptSYN makes a freshly opened child the SYN-RECEIVED end of the SYN
// (RFC 9293, 3.10.7.2). Data in the SYN is not kept; the peer sends it
// again after the handshake.
func (c *Conn) acceptSYN(e *env, syn *Segment) {
	c.passive = true
	c.state = StateSynReceived
	c.rcv.irs = syn.Seq
	c.rcv.nxt = syn.Seq + 1
	c.rcv.lastAckSent = c.rcv.nxt
	c.negotiate(e, &syn.Options)
	c.ecnNegotiated(syn, false)
	c.snd.wnd = uint32(syn.Window) // unscaled in a SYN (RFC 7323, 2.2)
	c.snd.maxWnd = c.snd.wnd
	c.snd.wl1 = syn.Seq
	c.snd.wl2 = c.snd.iss
}

// reset answers seg with the RST RFC 9293, 3.10.7.1 prescribes.
func (l *Listener) reset(e *env, seg *Segment) ListenResult {
	r, ok := ResetFor(seg)
	if !ok {
		return ListenDropped
	}
	e.st.OutRsts++
	e.st.OutSegs++
	e.out.Segments = append(e.out.Segments, r)
	return ListenReplied
}

// sendCookie answers a SYN with a SYN-ACK whose ISS is a cookie.
func (l *Listener) sendCookie(e *env, in *ListenInput) {
	syn := &in.Seg
	var tmp Conn // used only to build the SYN-ACK as a child would
	peerMSS := syn.Options.MSS
	if peerMSS == 0 {
		peerMSS = defaultPeerMSS
	}
	idx := cookieMSSIndex(min(peerMSS, l.cfg.Conn.MSS))
	iss := makeCookie(l.cfg.Secret, in.Tuple, syn.Seq, e.now, idx)
	opts := syn.Options
	if !opts.TS || l.cfg.Conn.DisableTimestamps {
		// Nothing would remember the peer's window scale and SACK.
		opts.WScale, opts.SACKPermitted, opts.TS = -1, false, false
	}
	opts.MSS = cookieMSS[idx]
	s := *syn
	s.Options = opts
	tmp.open(l.cfg.Conn, in.Tuple, l.cfg.SendBuf, l.cfg.RecvBuf, iss, TSOffset(l.cfg.Secret, in.Tuple))
	tmp.acceptSYN(e, &s)
	tmp.ecn.ok = false // a cookie cannot remember ECN
	start := len(e.out.Segments)
	tmp.sendSYN(e)
	if o := &e.out.Segments[start].Options; o.TS {
		o.TSVal = cookieTSVal(o.TSVal, opts.WScale, opts.SACKPermitted && !l.cfg.Conn.DisableSACK)
	}
	l.lastCookie = e.now
	e.st.SyncookiesSent++
}

// cookieACK handles a bare ACK to the listener: the end of a handshake we
// answered with a cookie, or a stray.
func (l *Listener) cookieACK(e *env, in *ListenInput, child *Conn) ListenResult {
	seg := &in.Seg
	recent := l.lastCookie != 0 && e.now.Sub(l.lastCookie) <= cookieMaxAge*cookiePeriod
	if l.cfg.Cookies == CookiesNever || !recent {
		return l.reset(e, seg)
	}
	irs, iss := seg.Seq-1, seg.Ack-1
	idx, ok := checkCookie(l.cfg.Secret, in.Tuple, irs, iss, e.now)
	opts := header.TCPOptions{WScale: -1, MSS: 0}
	if ok && seg.Options.TS {
		opts.WScale, opts.SACKPermitted, ok = cookieTSDecode(seg.Options.TSEcr)
		opts.TS, opts.TSVal = true, seg.Options.TSVal
	}
	if !ok || child == nil || in.AcceptQueueFull {
		e.st.SyncookiesFailed++
		e.st.Drops[DropListen]++
		// While cookies are in use a failed check is dropped, not reset:
		// it is most often a data segment whose predecessor (carrying the
		// cookie-bearing SEQ) was lost, and the peer's retransmission of
		// that one will succeed.
		return ListenDropped
	}
	opts.MSS = cookieMSS[idx]
	syn := Segment{Seq: irs, Flags: FlagSYN, Window: seg.Window, Options: opts}
	child.open(l.cfg.Conn, in.Tuple, l.cfg.SendBuf, l.cfg.RecvBuf, iss, TSOffset(l.cfg.Secret, in.Tuple))
	child.acceptSYN(e, &syn)
	// As if our SYN-ACK had been sent: it advertised an unscaled window.
	child.snd.nxt = iss + 1
	child.rcv.adv = child.rcv.nxt.Add(seqnum.Size(min(l.cfg.RecvBuf, 0xffff)))
	e.st.SyncookiesRecv++
	e.st.PassiveOpens++
	e.st.InSegs-- // the child counts the segment again
	child.segmentArrived(e, seg)
	e.out.Timer = child.nextDeadline()
	e.out.Readable = int(child.rcv.readable)
	return ListenNewConn
}
