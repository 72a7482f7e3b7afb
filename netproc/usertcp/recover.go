package usertcp

import (
	"saturn/netproc/header"
	"saturn/netproc/tcp"
)

// recover takes over what an earlier incarnation of netproc left in the
// connection table (duty 9 of package tcp). Every record in use is checked
// as hostile (its buffer sizes against the slot, its tuple against our
// addresses, the core's invariants with tcp.Conn.Check); one that fails is
// freed.
//
// A connection its app had closed (an orphan finishing FIN-WAIT, CLOSING,
// LAST-ACK or TIME-WAIT) needs nobody but the stack: it is taken over and
// stepped with InTimer, which runs what fell due while no netproc was
// there and reports the deadline to arm; it then ends as it would have.
//
// A record whose step sequence is odd was torn: the dead process was
// writing it (inside a Step, or, with resume on, writing a Step's result
// back: see stepRecord), and its state may be half written. It is
// reset (if the core's checks pass, with a RST from its state; otherwise it
// is freed and the peer's next segment meets a RST), whatever else it is.
//
// A connection an app still held is reset, unless resume is on
// (Config.Resume): the handler's table of handles did not survive, so no
// app could use it again, and a RST tells the peer at once rather than
// after its retransmissions give up (docs/restart.md). With resume on, a
// synchronized connection whose record names its owner (the app's channel
// and the handle, written by the handler through SetOwner) is kept: it
// serves the peer at once (its due timers run now, retransmitting what the
// peer had not acknowledged), and waits for the channel to come back and
// claim it (Resume), for Config.ResumeGrace, after which it is reset.
// With resume on, listeners are kept too (listenrec.go): each is rebuilt
// from its record first, and kept for its app as a connection is; a child
// that waited on one (half-open, or in the accept queue) goes back in its
// books, and a connection still connecting whose app's connect is recorded
// (SetOrigin) goes on connecting, for the app's replayed connect. See
// resume.go for how sends and receives the dead incarnation took are
// replayed exactly once.
func (s *Stack) recover() {
	t := s.tab
	if s.cfg.Resume {
		s.recoverListeners()
	}
	for i := int32(0); i < t.used; i++ {
		st := t.stateWord(i).Load()
		if st == recFree {
			t.free = append(t.free, i)
			continue
		}
		if st == recListen {
			if !s.cfg.Resume {
				t.release(i)
			}
			continue // rebuilt above
		}
		tc := t.conn(i)
		snd, rcv := t.sizes(i)
		k := keyOf(tc.Tuple())
		ok := st <= recOrphan && snd >= minBufSize && snd <= t.sndCap && rcv >= minBufSize && rcv <= t.rcvCap &&
			tc.Check() == nil && tc.State() != tcp.StateClosed && (k.laddr == s.addr || isLoopback(k.laddr)) &&
			k.lport != 0 && k.rport != 0 && k.raddr != (header.IPv4Addr{}) && s.demux[k] == nil
		if !ok {
			t.release(i)
			continue
		}
		torn := t.seqWord(i).Load()&1 != 0
		if torn {
			t.seqWord(i).Store(0)
			s.shell.Torn++
		}
		c := s.newConn(i, k, snd, rcv)
		c.dirty = true // whatever it held, punch it when it goes
		c.markBuffers()
		if tc.State() == tcp.StateTimeWait {
			s.tw++
		}
		s.link(c)
		if st := tc.State(); st == tcp.StateEstablished || st == tcp.StateCloseWait {
			s.stats.CurrEstab++ // the core counts it out when it closes
		}
		owner, handle := t.owner(i)
		port := t.listenPort(i)
		opening := owner != 0 && port == 0 && t.call(i) != 0 && (tc.State() == tcp.StateSynSent || tc.State() == tcp.StateSynReceived)
		if s.cfg.Resume && st == recOpen && !torn && owner != 0 && handle != 0 && resumable(tc.State(), opening) {
			// An app held it: keep it for the app's channel to claim
			// (Resume), and run what fell due meanwhile (a retransmission,
			// at once: the peer may have heard nothing for a while).
			s.shell.Resumed++
			if opening {
				c.connecting = true
				s.shell.ResumedOpens++
			}
			s.resumed.add(owner, resumedConn{handle: handle, c: c})
			s.step(c, tcp.Input{Kind: tcp.InTimer})
			continue
		}
		if s.cfg.Resume && st == recOpen && !torn && owner == 0 && port != 0 {
			// A child of a listener, not accepted yet: back in its queue.
			if l := s.listenerFor(k); l != nil && l.port == port && l.adoptChild(c, tc.State()) {
				s.shell.ResumedKids++
				s.step(c, tcp.Input{Kind: tcp.InTimer})
				continue
			}
		}
		c.closed = true
		s.orphans++
		if st == recOrphan && tc.Info().AppClosed && !torn {
			s.shell.Recovered++
			s.step(c, tcp.Input{Kind: tcp.InTimer})
			continue
		}
		s.shell.RecoveredRST++
		t.setState(i, recOrphan)
		s.step(c, tcp.Input{Kind: tcp.InAbort}) // CLOSED and released at once
	}
	s.startGrace()
	if n := s.shell.Recovered + s.shell.RecoveredRST + s.shell.Resumed + s.shell.ResumedLn; n > 0 {
		s.log.Info("usertcp: took over the connection table of an earlier netproc",
			"incarnation", t.incarnation, "resumed (closed by their apps)", s.shell.Recovered, "reset (held by apps)", s.shell.RecoveredRST,
			"kept for their apps", s.shell.Resumed, "of which connecting", s.shell.ResumedOpens,
			"listeners kept", s.shell.ResumedLn, "children requeued", s.shell.ResumedKids, "torn", s.shell.Torn)
	}
}

// recoverListeners rebuilds the listeners the dead incarnation's apps held
// (listenrec.go), before any connection is recovered, so that children
// find theirs. One no app held (its record names no owner) is not kept.
func (s *Stack) recoverListeners() {
	t := s.tab
	for i := int32(0); i < t.used; i++ {
		if t.stateWord(i).Load() != recListen {
			continue
		}
		owner, handle := t.owner(i)
		if owner == 0 || handle == 0 {
			t.setState(i, recFree) // the next pass frees it
			continue
		}
		if l := s.recoverListener(i); l != nil {
			s.shell.ResumedLn++
			s.resumed.add(owner, resumedConn{handle: handle, l: l})
		}
	}
}
