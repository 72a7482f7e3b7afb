package usertcp

import (
	"time"

	"saturn/netproc/tcp/seqnum"
)

// Page reclaim. Every connection has a buffer slot as large as its buffers
// may grow, in memory that costs nothing until written (a memfd's pages are
// allocated on first touch). A circular buffer walks through its whole
// slot as data passes, so a connection that once moved a few megabytes
// would keep all its pages for good. The reclaimer gives them back: once
// a connection's data has stopped passing for reclaimAfter and a buffer is
// empty (every byte sent was acknowledged, every byte received was read),
// the pages that buffer touched since the last reclaim are punched
// (MADV_REMOVE, which for a memfd is fallocate's PUNCH_HOLE): they read as
// zeros and cost no memory until written again. What a buffer touched is
// known from where it stood at the last reclaim (a sequence number and an
// offset) and where it stands now (tcp.Conn.BufferUse): a circular buffer
// writes forward, so it is the range between the two, or all of it once a
// whole buffer's worth has passed.
//
// An idle connection thus holds its record (a quarter page) and nothing in
// its buffers. A busy one keeps its pages: punching them between requests
// would only make the next request fault them in again.

const (
	reclaimAfter  = time.Second
	reclaimBudget = 4096 // connections examined per housekeeping round
)

// markBuffers records where c's buffers stand: nothing is touched yet.
func (c *conn) markBuffers() {
	u := c.tcp().BufferUse()
	c.sndMarkSeq, c.sndMarkOff = u.SendSeq, u.SendNext
	c.rcvMarkSeq, c.rcvMarkOff = u.RecvSeq, u.RecvNext
}

// touched notes that data passed through c's buffers.
func (s *Stack) touched(c *conn) {
	c.dirty = true
	c.lastActive = s.now
	if !c.reclaimQueued {
		c.reclaimQueued = true
		s.reclaimQ = append(s.reclaimQ, c)
	}
}

// reclaimSweep examines up to reclaimBudget queued connections and punches
// the emptied buffers of those idle for reclaimAfter.
func (s *Stack) reclaimSweep() {
	q := s.reclaimQ
	n := min(len(q), reclaimBudget)
	var kept []*conn
	for _, c := range q[:n] {
		switch {
		case c.freed:
		case s.now.Sub(c.lastActive) < reclaimAfter || !s.reclaimIdle(c):
			kept = append(kept, c)
			continue
		}
		c.reclaimQueued = false
	}
	rest := append(q[:0], q[n:]...)
	s.reclaimQ = append(rest, kept...)
}

// reclaimIdle punches what c's empty buffers touched; true when both were
// empty (nothing is left to reclaim until data passes again).
func (s *Stack) reclaimIdle(c *conn) bool {
	u := c.tcp().BufferUse()
	done := true
	if u.SendEmpty {
		s.punchRing(c, 0, c.sndSize, &c.sndMarkSeq, &c.sndMarkOff, u.SendSeq, u.SendNext)
	} else {
		done = false
	}
	if u.RecvEmpty {
		s.punchRing(c, uint32(s.tab.sndCap), c.rcvSize, &c.rcvMarkSeq, &c.rcvMarkOff, u.RecvSeq, u.RecvNext)
	} else {
		done = false
	}
	if done {
		c.dirty = false
	}
	return done
}

// punchRing punches the pages a circular buffer of size bytes at base (in
// c's slot) touched since it stood at (markSeq, markOff); it now stands at
// (seq, next).
func (s *Stack) punchRing(c *conn, base, size uint32, markSeq *seqnum.Value, markOff *uint32, seq seqnum.Value, next uint32) {
	written := uint32(seq - *markSeq)
	start := *markOff
	*markSeq, *markOff = seq, next
	switch {
	case written == 0:
		return
	case written >= size:
		s.punch(c, base, 0, size)
		return
	}
	lo := uint32(alignDown(int(start), pageSize))
	hi := min(uint32(alignUp(int(next), pageSize)), size)
	if start < next {
		s.punch(c, base, lo, hi)
	} else {
		s.punch(c, base, lo, size)
		s.punch(c, base, 0, hi)
	}
}

// punch gives back the pages of [lo, hi) of the buffer at base in c's slot.
func (s *Stack) punch(c *conn, base, lo, hi uint32) {
	if hi <= lo {
		return
	}
	if err := s.tab.punch(c.slot, int(base+lo), int(base+hi)); err == nil {
		s.shell.ReclaimPunch++
		s.shell.ReclaimPages += uint64((hi - lo + pageSize - 1) / pageSize)
	}
}

// reclaimAll punches both of c's buffers whole, when it is freed with
// pages touched since the last reclaim.
func (s *Stack) reclaimAll(c *conn) {
	if !c.dirty {
		return
	}
	s.punch(c, 0, 0, c.sndSize)
	s.punch(c, uint32(s.tab.sndCap), 0, c.rcvSize)
	c.dirty = false
}

// housekeep is the periodic work of the loop.
func (s *Stack) housekeep() {
	s.reclaimSweep()
	s.ip.Expire(s.wallNow(), s.sendIP)
	s.publish()
}
