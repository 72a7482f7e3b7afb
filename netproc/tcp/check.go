package tcp

import (
	"errors"
	"fmt"

	"saturn/netproc/tcp/seqnum"
)

// ErrCorrupt reports a connection whose state breaks an invariant.
var ErrCorrupt = errors.New("tcp: corrupt connection state")

// Check verifies the connection's invariants. Tests call it after every
// Step; a shell that maps connection state left behind by a crashed
// process calls it before trusting that state, and discards (resets) a
// connection that fails.
func (c *Conn) Check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, c.state, fmt.Sprintf(format, args...))
	}
	if c.state >= numStates {
		return bad("unknown state %d", c.state)
	}
	if c.state == StateClosed {
		return nil
	}
	if c.sndSize == 0 || c.rcvSize == 0 {
		return bad("no buffers")
	}
	s, r := &c.snd, &c.rcv
	if s.una.GreaterThan(s.nxt) {
		return bad("snd.una %d after snd.nxt %d", s.una, s.nxt)
	}
	if s.buffered > c.sndSize || s.head >= c.sndSize {
		return bad("send buffer %d/%d at %d", s.buffered, c.sndSize, s.head)
	}
	// The send buffer starts at SND.UNA (or just after the SYN) and
	// everything sent lies within it, plus SYN and FIN.
	if c.state != StateSynSent && c.state != StateSynReceived {
		if s.bufStart != s.una && !(s.una == s.iss && s.bufStart == s.iss+1) &&
			!(s.finQueued && s.una == s.finSeq()+1 && s.bufStart == s.finSeq()) {
			return bad("buffer start %d != snd.una %d", s.bufStart, s.una)
		}
	}
	limit := c.dataEnd()
	if s.finQueued {
		limit++
	}
	if s.nxt.GreaterThan(limit) {
		return bad("snd.nxt %d beyond data end %d", s.nxt, limit)
	}
	if r.readable > c.rcvSize || r.head >= c.rcvSize {
		return bad("receive buffer %d/%d at %d", r.readable, c.rcvSize, r.head)
	}
	if c.state != StateSynSent {
		// Everything the window admits must fit in the free buffer space.
		if r.nxt.LessThan(r.adv) && uint32(r.nxt.Size(r.adv)) > c.rcvSize-r.readable {
			return bad("window %d exceeds free space %d", r.nxt.Size(r.adv), c.rcvSize-r.readable)
		}
	}
	if int(r.nOOO) > len(r.ooo) {
		return bad("%d out-of-order ranges", r.nOOO)
	}
	prev := r.nxt
	for i := 0; i < int(r.nOOO); i++ {
		o := r.ooo[i]
		if !prev.LessThan(o.start) || !o.start.LessThan(o.end) || o.end.GreaterThan(seqnum.Max(r.adv, r.nxt)) {
			return bad("out-of-order range %d [%d,%d) after %d, edge %d", i, o.start, o.end, prev, r.adv)
		}
		prev = o.end
	}
	if int(c.sack.n) > len(c.sack.blocks) {
		return bad("%d SACK ranges", c.sack.n)
	}
	prev = s.una
	for i := 0; i < int(c.sack.n); i++ {
		b := c.sack.blocks[i]
		if b.start.LessThan(prev) || !b.start.LessThan(b.end) || b.end.GreaterThan(s.nxt) {
			return bad("SACK range %d [%d,%d) outside [%d,%d]", i, b.start, b.end, prev, s.nxt)
		}
		prev = b.end
	}
	l := &c.rack.log
	if int(l.n) > len(l.r) {
		return bad("%d transmission-log ranges", l.n)
	}
	prev = s.una
	for i := 0; i < int(l.n); i++ {
		r := l.r[i]
		if r.start.LessThan(prev) || !r.start.LessThan(r.end) || r.end.GreaterThan(s.nxt) {
			return bad("transmission-log range %d [%d,%d) outside [%d,%d]", i, r.start, r.end, prev, s.nxt)
		}
		prev = r.end
	}
	if c.state.synchronized() && c.state != StateTimeWait && c.cc.Cwnd == 0 {
		return bad("zero cwnd")
	}
	if c.cc.Algo > CCBBR {
		return bad("congestion control %d", c.cc.Algo)
	}
	if b := &c.cc.bbr; int(b.nSnaps) > len(b.snaps) || b.mode > bbrProbeRTT || int(b.cycle) >= len(bbrCycleGains) {
		return bad("BBR state: %d snapshots, mode %d, phase %d", b.nSnaps, b.mode, b.cycle)
	}
	return c.checkPMTU()
}
