package usertcp

import (
	"encoding/binary"
	"net/netip"
	"time"

	"saturn/netproc/backend"
	"saturn/netproc/header"
	"saturn/netproc/tcp"
)

// Listeners that survive netproc's death (Config.Resume). A listener is
// plain settings (its address, backlog and the options its connections
// get); its children are connections in the table already, each naming
// its listener's port (rListen). So a listener keeps a record of the
// connection table too, in state recListen, and the next incarnation
// rebuilds it from the record before it recovers the connections, puts
// back in its SYN backlog and accept queue the children still waiting
// there, and keeps it for its app's channel to claim, as it keeps the
// app's connections (resume.go). A client whose SYN reached the dead
// incarnation finishes its handshake with the next one (the SYN-ACK is
// sent again when its timer falls due), one whose handshake was complete
// is accepted, and SYN cookies keep working, their secret being in the
// table's header.
//
// A listener's record, from connOffset (the record's first bytes are as
// for a connection: state, sizes (its connections' buffer sizes), listen
// (its port), seq (odd while being written), owner, handle, call):
//
//	64 laddr     [4]byte  the local address it takes (zero: every one)
//	68 asked     [16]byte the address the app asked for (for LocalAddr)
//	84 flags     uint8    lfAsked4, lfV6Only, lfReusePort, lfNoDelay, lfKeepAlive
//	85 keepCount uint8
//	88 backlog   uint32
//	96 keepIdle  int64    nanoseconds
//	104 keepIntvl int64   nanoseconds
const (
	lLaddr     = connOffset + 0
	lAsked     = connOffset + 4
	lFlags     = connOffset + 20
	lKeepCount = connOffset + 21
	lBacklog   = connOffset + 24
	lKeepIdle  = connOffset + 32
	lKeepIntvl = connOffset + 40
)

const (
	lfAsked4 = 1 << iota
	lfV6Only
	lfReusePort
	lfNoDelay
	lfKeepAlive
)

// persist writes l's record, taking one the first time. Without resume
// there is no record: nothing would read it. A full table leaves the
// listener without one (it works, and does not survive a death). Loop
// only.
func (l *listener) persist() {
	s := l.s
	if !s.cfg.Resume || l.closed {
		return
	}
	t := s.tab
	if l.slot < 0 {
		i, ok := t.alloc(l.sndBuf, l.rcvBuf, l.port)
		if !ok {
			s.shell.TableFull++
			return
		}
		t.setState(i, recFree) // unpublished while we write; held, not on the free list
		l.slot = i
		l.write()
		t.setState(i, recListen)
		return
	}
	seq := t.seqWord(l.slot)
	seq.Add(1) // odd: a death from here on leaves the record torn
	l.write()
	seq.Add(1)
}

// write lays out l's settings in its record.
func (l *listener) write() {
	r := l.s.tab.rec(l.slot)
	le := binary.LittleEndian
	le.PutUint32(r[rSndSize:], uint32(l.sndBuf))
	le.PutUint32(r[rRcvSize:], uint32(l.rcvBuf))
	le.PutUint16(r[rListen:], l.port)
	copy(r[lLaddr:lLaddr+4], l.laddr[:])
	a16 := l.asked.Addr().As16()
	copy(r[lAsked:lAsked+16], a16[:])
	var f uint8
	if l.asked.Addr().Is4() {
		f |= lfAsked4
	}
	if l.v6only {
		f |= lfV6Only
	}
	if l.reusePort {
		f |= lfReusePort
	}
	if l.connCfg.NoDelay {
		f |= lfNoDelay
	}
	if l.connCfg.KeepAlive {
		f |= lfKeepAlive
	}
	r[lFlags] = f
	r[lKeepCount] = l.connCfg.KeepCount
	le.PutUint32(r[lBacklog:], uint32(l.backlog))
	le.PutUint64(r[lKeepIdle:], uint64(l.connCfg.KeepIdle))
	le.PutUint64(r[lKeepIntvl:], uint64(l.connCfg.KeepInterval))
}

// unpersist gives l's record back. Loop only.
func (l *listener) unpersist() {
	if l.slot >= 0 {
		l.s.tab.release(l.slot)
		l.slot = -1
	}
}

// Leave implements backend.Leaver: netproc stops (a restart or an
// upgrade) and lets go of the listener without closing it. With its
// record (resume on), it stays for the next incarnation, with its
// children; without one, it closes.
func (l *listener) Leave() {
	if l.slot < 0 {
		l.Close()
		return
	}
	l.notify = nil
}

// SetOwner implements backend.Origin.
func (l *listener) SetOwner(owner, handle uint64) {
	if l.slot >= 0 && !l.closed {
		l.s.tab.setOwner(l.slot, owner, handle)
	}
}

// SetOrigin implements backend.Origin.
func (l *listener) SetOrigin(call uint64) {
	if l.slot >= 0 && !l.closed {
		l.s.tab.setCall(l.slot, call)
	}
}

// recoverListener rebuilds the listener record i holds, checked as
// hostile as any record: nil (and the record freed) if it does not hold
// one this stack could have made. Loop only, before the connections are
// recovered.
func (s *Stack) recoverListener(i int32) *listener {
	t := s.tab
	r := t.rec(i)
	le := binary.LittleEndian
	snd, rcv := t.sizes(i)
	port := t.listenPort(i)
	var laddr header.IPv4Addr
	copy(laddr[:], r[lLaddr:lLaddr+4])
	var a16 [16]byte
	copy(a16[:], r[lAsked:lAsked+16])
	f := r[lFlags]
	asked := netip.AddrFrom16(a16)
	if f&lfAsked4 != 0 {
		asked = asked.Unmap()
	}
	backlog := int(le.Uint32(r[lBacklog:]))
	idle, intvl := time.Duration(le.Uint64(r[lKeepIdle:])), time.Duration(le.Uint64(r[lKeepIntvl:]))
	ok := t.seqWord(i).Load()&1 == 0 && port != 0 && backlog > 0 && backlog <= 1<<20 &&
		snd >= minBufSize && snd <= t.sndCap && snd%pageSize == 0 && rcv >= minBufSize && rcv <= t.rcvCap && rcv%pageSize == 0 &&
		(laddr == header.IPv4Addr{} || s.isLocal(laddr)) && idle >= 0 && intvl >= 0 && (f&lfAsked4 == 0 || asked.Is4())
	if ok {
		for _, o := range s.listeners[port] {
			if f&lfReusePort == 0 || !o.reusePort {
				ok = false // a port taken twice: not what Listen allows
			}
		}
	}
	if !ok {
		t.setState(i, recFree) // recover's next pass puts it on the free list
		return nil
	}
	cfg := s.cfg.Conn
	cfg.NoDelay, cfg.KeepAlive = f&lfNoDelay != 0, f&lfKeepAlive != 0
	cfg.KeepIdle, cfg.KeepInterval, cfg.KeepCount = idle, intvl, r[lKeepCount]
	l := &listener{s: s, slot: i, port: port, laddr: laddr, asked: netip.AddrPortFrom(asked, port), backlog: backlog,
		v6only: f&lfV6Only != 0, reusePort: f&lfReusePort != 0, sndBuf: snd, rcvBuf: rcv, connCfg: cfg, children: map[*conn]struct{}{}}
	l.remake()
	s.listeners[port] = append(s.listeners[port], l)
	return l
}

// adoptChild puts c, a child that waited on a listener of the dead
// incarnation, back in the books of l, the listener rebuilt for it: in
// the SYN backlog or the accept queue, as its state says. False if its
// state has no place there (it is then reset).
func (l *listener) adoptChild(c *conn, st tcp.State) bool {
	switch {
	case st == tcp.StateSynReceived:
		c.inSynQ = true
		l.halfOpen++
	case st == tcp.StateEstablished || st == tcp.StateCloseWait:
		c.inAcceptQ = true
		l.acceptQ = append(l.acceptQ, c)
	default:
		return false
	}
	c.ln = l
	l.children[c] = struct{}{}
	return true
}

// resumedListener is what Resume hands the handler for l.
func (l *listener) resumed(handle uint64) backend.Resumed {
	return backend.Resumed{Handle: handle, Listener: l, Call: l.s.tab.call(l.slot),
		Options: backend.ListenOptions{Backlog: l.backlog, V6Only: l.v6only, ReusePort: l.reusePort}}
}
