package usertcp

import (
	"errors"
	"io"
	"syscall"

	"saturn/netproc/backend"
	"saturn/netproc/tcp"
)

// Resuming connections across netproc's death (Config.Resume; see
// recover.go for what the next incarnation does with the table, and
// docs/restart.md for what apps see).
//
// Exactly once across the ring. An entry the dead incarnation took and
// never answered is replayed by the app to the next one; the app's stream
// offsets (proto.FlagStream) make the replay harmless:
//
//   - A send carries the stream position of its first byte. Our own
//     position is the bytes the core has queued since the SYN (the send
//     buffer's end, less ISS+1), which the table keeps; bytes of a replayed
//     send below it were queued by the dead incarnation and are skipped.
//   - A receive carries the bytes the app has received. Bytes are released
//     from the receive buffer only when a later receive (or the close)
//     shows the app has them: ReadAt releases what lies below the app's
//     offset, then copies what follows without consuming it. So a receive
//     whose completion died with the process finds its bytes again. The
//     cost is that the bytes of the last completed receive hold room in the
//     receive buffer until the app's next call, which with a buffer of
//     several times the app's receive size keeps the window open; the
//     alternative, keeping a copy of delivered bytes elsewhere in the
//     record, would cost a copy per receive and memory the record has not.
//
// Positions are kept modulo 2^32 (they are sequence-number differences)
// and extended against the app's 64-bit offset: the two never differ by
// more than the buffers hold, far below 2^31.

var (
	_ backend.Resumer    = (*Stack)(nil)
	_ backend.StreamConn = (*conn)(nil)
	_ backend.Origin     = (*conn)(nil)
	_ backend.Origin     = (*listener)(nil)
	_ backend.Leaver     = (*conn)(nil)
	_ backend.Leaver     = (*listener)(nil)
)

// stepRecord runs the core's Step on tc, record c's connection, with the
// record's step sequence odd while the record may be half written (see
// recover: a record a death leaves odd is reset).
//
// With resume on, a connection should survive a death at any instant, and
// a bulk transfer spends much of netproc's time inside Steps; so the Step
// runs on a private copy, which is then written back whole, and only that
// copy-back (a few hundred bytes) is the window in which a death tears the
// record. A Step left unfinished by a death leaves the record as it was
// before it, which is whole: what the Step wrote into the buffers lies
// outside what the old state covers (InSend writes past the queued bytes,
// a segment's payload lands in the window past the readable ones, at its
// own sequence number, where the same bytes may already lie), and nothing
// of it was acted on (its segments were not sent, the handler did not
// complete the app's call), so the app's replay and the peer's
// retransmission redo it.
func (s *Stack) stepRecord(c *conn, tc *tcp.Conn, in tcp.Input) error {
	seq := s.tab.seqWord(c.slot)
	if !s.cfg.Resume {
		seq.Add(1) // odd: a death from here on leaves the record torn
		err := tc.Step(in, s.now, s.mem(c), &s.out)
		seq.Add(1)
		return err
	}
	work := &s.resumed.scratch
	*work = *tc
	err := work.Step(in, s.now, s.mem(c), &s.out)
	seq.Add(1)
	*tc = *work
	seq.Add(1)
	return err
}

// resumeState holds the connections recover kept for their apps, by the
// owning channel, until the channel claims them or the grace ends.
type resumeState struct {
	byOwner map[uint64][]resumedConn
	timer   backend.Timer
	scratch tcp.Conn // where stepRecord steps a connection
}

// resumedConn is a connection or (l set) a listener kept for its app.
type resumedConn struct {
	handle uint64
	c      *conn
	l      *listener
}

func (r *resumeState) add(owner uint64, rc resumedConn) {
	if r.byOwner == nil {
		r.byOwner = map[uint64][]resumedConn{}
	}
	r.byOwner[owner] = append(r.byOwner[owner], rc)
}

// resumable reports whether a connection an app held in state st can go
// on: it is synchronized (an app may still read or write it), or it is
// an active open still connecting (connecting: no listener made it, and
// the app's connect is recorded), which the next incarnation finishes.
func resumable(st tcp.State, connecting bool) bool {
	if connecting {
		return st == tcp.StateSynSent || st == tcp.StateSynReceived || resumable(st, false)
	}
	return st >= tcp.StateEstablished && st != tcp.StateTimeWait
}

// Resuming implements backend.Resumer.
func (s *Stack) Resuming() bool { return s.cfg.Resume }

// Resume implements backend.Resumer.
func (s *Stack) Resume(owner uint64, notify func(handle uint64) backend.Notify) []backend.Resumed {
	list := s.resumed.byOwner[owner]
	if len(list) == 0 {
		return nil
	}
	delete(s.resumed.byOwner, owner)
	out := make([]backend.Resumed, 0, len(list))
	for _, r := range list {
		if r.l != nil {
			if r.l.closed {
				continue
			}
			r.l.notify = notify(r.handle)
			out = append(out, r.l.resumed(r.handle))
			if len(r.l.acceptQ) > 0 {
				s.wake(&r.l.waker, backend.Readable)
			}
			s.shell.Claimed++
			continue
		}
		if r.c.freed || r.c.closed {
			continue
		}
		r.c.notify = notify(r.handle)
		out = append(out, backend.Resumed{Handle: r.handle, Conn: r.c, CloseAt: s.tab.closeAt(r.c.slot), Call: s.tab.call(r.c.slot)})
		s.shell.Claimed++
	}
	s.log.Info("usertcp: resumed connections for their app", "channel", owner, "connections", len(out))
	return out
}

// startGrace arms the end of the grace for what recover kept.
func (s *Stack) startGrace() {
	if len(s.resumed.byOwner) == 0 {
		return
	}
	s.resumed.timer = s.env.AfterFunc(s.cfg.ResumeGrace, func() {
		s.resumed.timer = nil
		s.enter(false)
		defer s.exit()
		n := 0
		for owner, list := range s.resumed.byOwner {
			for _, r := range list {
				if r.l != nil {
					if !r.l.closed {
						r.l.Close() // its children are reset
						n++
					}
					continue
				}
				if !r.c.freed && !r.c.closed {
					s.resetUnclaimed(r.c)
					n++
				}
			}
			delete(s.resumed.byOwner, owner)
		}
		if n > 0 {
			s.log.Info("usertcp: reset connections (and closed listeners) no app claimed", "sockets", n, "grace", s.cfg.ResumeGrace)
		}
	})
}

// resetUnclaimed resets a resumed connection nobody claimed.
func (s *Stack) resetUnclaimed(c *conn) {
	c.closed = true
	c.notify = nil
	s.orphans++
	s.shell.RecoveredRST++
	s.tab.setState(c.slot, recOrphan)
	s.step(c, tcp.Input{Kind: tcp.InAbort})
}

// extend widens v, a position modulo 2^32, to the 64-bit offset nearest
// near.
func extend(near uint64, v uint32) uint64 {
	return near + uint64(int64(int32(v-uint32(near))))
}

// SetOwner implements backend.StreamConn. An accepted child leaves its
// listener's books in the table only now: a death before it puts the
// child back in the accept queue, for the app's replayed accept.
func (c *conn) SetOwner(owner, handle uint64) {
	if !c.freed {
		c.s.tab.setOwner(c.slot, owner, handle)
		c.s.tab.setListen(c.slot, 0)
	}
}

// Leave implements backend.Leaver: netproc stops (SIGTERM: a restart or an
// upgrade) and lets go of the connection without closing it. With resume
// on, its record stays as a death would leave it, for the next
// incarnation to resume; without, it closes.
func (c *conn) Leave() {
	if !c.s.cfg.Resume {
		c.Close()
		return
	}
	c.notify = nil
}

// SetOrigin implements backend.Origin.
func (c *conn) SetOrigin(call uint64) {
	if !c.freed {
		c.s.tab.setCall(c.slot, call)
	}
}

// Closing implements backend.StreamConn.
func (c *conn) Closing(end uint64) {
	if !c.freed {
		c.s.tab.setCloseAt(c.slot, end)
	}
}

// Sent implements backend.StreamConn: the bytes queued since the SYN.
func (c *conn) Sent(near uint64) uint64 {
	if c.freed {
		return near // its record may be another connection's by now
	}
	tc := c.tcp()
	u := tc.BufferUse()
	return extend(near, uint32(u.SendSeq-(tc.Info().ISS+1)))
}

// consumed is the bytes released from the receive buffer since the SYN,
// extended against near.
func (c *conn) consumed(tc *tcp.Conn, near uint64) uint64 {
	in := tc.Info()
	v := uint32(in.RcvNxt-(in.IRS+1)) - in.Readable
	if in.PeerFIN {
		v-- // the FIN takes a sequence number, and no byte
	}
	return extend(near, v)
}

// release consumes the bytes before off; false if off lies outside what
// was received and not yet released. In an operation.
func (c *conn) release(off uint64) bool {
	tc := c.tcp()
	done := c.consumed(tc, off)
	if off < done || off-done > uint64(tc.Readable()) {
		return false
	}
	if n := int(off - done); n > 0 {
		c.s.step(c, tcp.Input{Kind: tcp.InConsume, N: n})
		c.s.touched(c)
	}
	return true
}

// ReadAt implements backend.StreamConn.
func (c *conn) ReadAt(b []byte, off uint64) (int, error) {
	if c.freed || c.closed {
		return 0, syscall.EBADF
	}
	if c.rdShut {
		return 0, nil
	}
	s := c.s
	s.enter(true)
	defer s.exit()
	if !c.release(off) {
		return 0, syscall.EINVAL
	}
	tc := c.tcp()
	if tc.Readable() > 0 {
		x, y := tc.ReadableViews(s.mem(c).Recv)
		n := copy(b, x)
		n += copy(b[n:], y)
		return n, nil
	}
	// Nothing to read: the end, the failure, or wait (InRead consumes
	// nothing when nothing is readable).
	_, err := s.step(c, tcp.Input{Kind: tcp.InRead, Data: b[:0]})
	switch {
	case errors.Is(err, io.EOF):
		return 0, nil
	case err != nil:
		return 0, errnoOf(err)
	}
	return 0, syscall.EAGAIN
}

// Release implements backend.StreamConn.
func (c *conn) Release(off uint64) {
	if c.freed || c.closed {
		return
	}
	c.s.enter(true)
	defer c.s.exit()
	c.release(off)
}
