package usertcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"saturn/netproc/header"
	"saturn/netproc/link"
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
// after its retransmissions give up (docs/restart.md). Resuming those is
// the next step: the record already holds all the core and the shell need
// (the state, the bytes, the listener a queued child waits on). What is
// missing:
//
//   - the handler's side: each record naming its owner (the app's channel
//     and the handle), so that the next incarnation rebuilds each app's
//     table of handles when the channel comes back, and resets what no
//     channel claims;
//   - exactly-once across the ring: a recv the dead incarnation took may
//     have consumed bytes whose completion never reached the app, and a
//     send may have been queued without its completion. Both need the
//     app's stream offset in the entry (the core's ISS, IRS, SndUna,
//     Buffered, RcvNxt and Readable give ours, modulo 2^32), with received
//     bytes consumed only once a later recv shows the app has them, so that
//     appproc can replay both instead of failing them; likewise an accept
//     or connect must answer its replay with the handle it already gave;
//   - a record torn by the death (a Step half done) told apart from a
//     whole one (a sequence word around Step), and reset alone.
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

// RemoveLeftNamespace removes the namespace that a netproc of this
// instance created, as recorded in the header of the connection table in
// persist (netproc's persistent memory), if it is want (the configured
// one) and still exists, and clears the record. The supervisor calls it
// once the instance has stopped: a netproc that stops removes its
// namespace itself (Stack.Close), but one that was killed and not started
// again (the instance stopped while it was down) cannot. It returns the
// namespace it removed, or "". Memory that holds no table of ours is left
// alone.
func RemoveLeftNamespace(persist *os.File, want string) (string, error) {
	hdr := make([]byte, headerSize)
	if _, err := persist.ReadAt(hdr, 0); err != nil {
		return "", fmt.Errorf("usertcp: reading the table's header: %w", err)
	}
	if string(hdr[hMagic:hMagic+8]) != tableMagic || binary.LittleEndian.Uint32(hdr[hVersion:]) != tableVersion {
		return "", nil
	}
	rec := hdr[hNetns : hNetns+1+netnsMax]
	n := int(rec[0])
	if n == 0 || n > netnsMax || string(rec[1:1+n]) != want {
		return "", nil
	}
	exists, err := link.NamespaceExists(want)
	if err == nil && exists {
		err = link.DeleteNamespace(want)
	}
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return "", fmt.Errorf("usertcp: removing namespace %q: %w", want, err)
	}
	if _, err := persist.WriteAt(make([]byte, 1+netnsMax), hNetns); err != nil {
		return "", fmt.Errorf("usertcp: clearing the table's namespace record: %w", err)
	}
	if !exists {
		return "", nil
	}
	return want, nil
}
