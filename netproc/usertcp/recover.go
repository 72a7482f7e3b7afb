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
// A connection an app still held is reset: the handler's table of handles
// does not survive a restart yet (see package backend, "Restarts"), so no
// app could ever use it again, and a RST tells the peer at once rather than
// after its retransmissions give up. Resuming those is the next step: the
// record already holds all the core and the shell need (the state, the
// bytes, the listener a queued child waits on); what is missing is the
// handler's side, restoring each app's handles onto the recovered
// connections.
func (s *Stack) recover() {
	t := s.tab
	for i := int32(0); i < t.used; i++ {
		st := t.stateWord(i).Load()
		if st == recFree {
			t.free = append(t.free, i)
			continue
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
		c := s.newConn(i, k, snd, rcv)
		c.dirty = true // whatever it held, punch it when it goes
		c.markBuffers()
		c.closed = true
		s.orphans++
		if tc.State() == tcp.StateTimeWait {
			s.tw++
		}
		s.link(c)
		if st := tc.State(); st == tcp.StateEstablished || st == tcp.StateCloseWait {
			s.stats.CurrEstab++ // the core counts it out when it closes
		}
		if st == recOrphan && tc.Info().AppClosed {
			s.shell.Recovered++
			s.step(c, tcp.Input{Kind: tcp.InTimer})
			continue
		}
		s.shell.RecoveredRST++
		t.setState(i, recOrphan)
		s.step(c, tcp.Input{Kind: tcp.InAbort}) // CLOSED and released at once
	}
	if n := s.shell.Recovered + s.shell.RecoveredRST; n > 0 {
		s.log.Info("usertcp: took over the connection table of an earlier netproc",
			"incarnation", t.incarnation, "resumed (closed by their apps)", s.shell.Recovered, "reset (held by apps)", s.shell.RecoveredRST)
	}
}
