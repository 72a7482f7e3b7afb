package kernel

import (
	"time"

	"golang.org/x/sys/unix"

	"saturn/netproc/backend"
)

// Sockets that outlive netproc. With its persistent memory and the
// supervisor's descriptor store, the backend keeps every socket an app
// holds across netproc's death (backend.Resumer):
//
//   - once the handler gives a socket a handle (SetOwner), the backend
//     writes its record (table.go) and puts its descriptor in the store
//     (store.go); closing it frees the record, then drops it from the
//     store;
//   - reads are peeks (ReadAt, receive.go): bytes leave the socket only
//     after the app's next call shows it has them, so a receive whose
//     answer died with netproc finds its bytes again; the count of bytes
//     let go is in the record (consumed), and so is the count of bytes
//     written (sent), so that a replayed send skips what the kernel took
//     already;
//   - the next incarnation gets every descriptor back (Start), checks each
//     against its record and the record as hostile, and hands the sockets
//     to their apps' channels as they come back (Resume), under the same
//     handles; what no channel claims within resumeGrace is closed.

// resumeGrace is how long an adopted socket waits for its app's channel.
const resumeGrace = 10 * time.Second

// adopt takes over the descriptors the store handed back: each must match
// a live record, and be the kind of socket the record says; the others are
// closed and dropped, and the records without a descriptor freed.
func (b *Backend) adopt(back map[uint64]int) {
	recs := b.tab.load()
	matched := map[int]bool{}
	type ownerHandle struct{ owner, handle uint64 }
	seen := map[ownerHandle]bool{}
	bad := 0
	for key, fd := range back {
		slot, gen, ok := b.tab.slotOf(key)
		r, live := recs[slot]
		oh := ownerHandle{r.owner, r.handle}
		if !ok || !live || r.gen != gen || matched[slot] || seen[oh] || !checkFD(fd, r.kind) || !settle(fd, &r) {
			unix.Close(fd)
			b.store.drop(key)
			bad++
			continue
		}
		matched[slot], seen[oh] = true, true
		unix.SetNonblock(fd, true)
		// The dead incarnation's peek offset stays with the socket: off,
		// so that peeks start from the record's count (receive.go).
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, -1)
		s := &socket{b: b, fd: fd, rec: slot, key: key, kind: r.kind, flags: r.flags, backlog: r.backlog,
			owner: r.owner, handle: r.handle, call: r.call, sent: r.sent, consumed: r.consumed, closeAt: r.closeAt,
			released: r.consumed, peekAt: r.consumed,
			connecting: r.kind == kindDialed && r.flags&flagConnected == 0}
		if r.kind == kindListener {
			s.listener = true
		}
		if r.writing != 0 || r.discarding != 0 {
			b.tab.u64(slot, rSent).Store(r.sent)
			b.tab.u64(slot, rWriting).Store(0)
			b.tab.u64(slot, rConsumed).Store(r.consumed)
			b.tab.u64(slot, rDiscarding).Store(0)
		}
		b.adopted = append(b.adopted, s)
	}
	freed := 0
	for slot := range recs {
		if !matched[slot] {
			b.tab.release(slot)
			freed++
		}
	}
	b.Flush()
	if len(back) > 0 || len(recs) > 0 {
		b.env.Logger().Info("kernel: sockets taken over from the last incarnation", "sockets", len(b.adopted),
			"closed", bad, "records freed", freed)
	}
	if len(b.adopted) > 0 {
		b.grace = b.env.AfterFunc(resumeGrace, b.endGrace)
	}
}

// endGrace closes the adopted sockets that no channel claimed.
func (b *Backend) endGrace() {
	b.grace = nil
	if len(b.adopted) == 0 {
		return
	}
	b.env.Logger().Info("kernel: sockets no app came back for closed", "sockets", len(b.adopted), "after", resumeGrace)
	for _, s := range b.adopted {
		s.Close()
	}
	b.adopted = nil
	b.Flush()
}

// checkFD reports whether fd is a TCP socket of kind.
func checkFD(fd int, kind uint32) bool {
	typ, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	prot, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	dom, err3 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	acc, err4 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return err1 == nil && err2 == nil && err3 == nil && err4 == nil &&
		typ == unix.SOCK_STREAM && prot == unix.IPPROTO_TCP && (dom == unix.AF_INET || dom == unix.AF_INET6) &&
		(acc != 0) == (kind == kindListener)
}

// settle completes a record that a death left in the middle of a write or
// a consuming read: the kernel's own counts say how far it got, and must
// lie within what the record allows; false if they do not (the record is
// not this socket's, or is torn beyond repair).
func settle(fd int, r *record) bool {
	if r.writing != 0 {
		k, ok := kernelSent(fd, r)
		if !ok || k < r.sent || k > r.sent+r.writing {
			return false
		}
		r.sent = k
	}
	if r.discarding != 0 {
		k, ok := kernelConsumed(fd, r)
		if !ok || k < r.consumed || k > r.consumed+r.discarding {
			return false
		}
		r.consumed = k
	}
	return true
}

// TCP states (include/net/tcp_states.h).
const (
	tcpFinWait1  = 4
	tcpFinWait2  = 5
	tcpTimeWait  = 6
	tcpClose     = 7
	tcpCloseWait = 8
	tcpLastAck   = 9
	tcpClosing   = 11
)

// kernelSent is how many bytes the socket has taken from its writers:
// the bytes acknowledged and those still queued (SIOCOUTQ), less the SYN
// of an active open and our FIN, which the kernel counts in sequence
// space. Both readings are taken with no ACK between them (steadyQueue).
func kernelSent(fd int, r *record) (uint64, bool) {
	z, outq, ok := steadyQueue(fd, unix.SIOCOUTQ, func(i *unix.TCPInfo) uint64 { return i.Bytes_acked })
	if !ok {
		return 0, false
	}
	n := z.Bytes_acked + uint64(outq)
	if r.kind == kindDialed {
		n-- // the SYN
	}
	switch z.State {
	case tcpFinWait1, tcpFinWait2, tcpTimeWait, tcpLastAck, tcpClosing:
		n-- // our FIN
	case tcpClose:
		if r.flags&flagShutWrite != 0 {
			n--
		}
	}
	return n, true
}

// kernelConsumed is how many received bytes have left the socket: those
// received (which count the peer's FIN once it came) less those still
// queued (SIOCINQ), read with no segment between them (steadyQueue).
func kernelConsumed(fd int, r *record) (uint64, bool) {
	z, inq, ok := steadyQueue(fd, unix.SIOCINQ, func(i *unix.TCPInfo) uint64 { return i.Bytes_received })
	if !ok {
		return 0, false
	}
	n := z.Bytes_received - uint64(inq)
	switch z.State {
	case tcpCloseWait, tcpLastAck, tcpClosing, tcpTimeWait:
		n-- // the peer's FIN
	case tcpClose:
		if n > r.consumed+r.discarding {
			n--
		}
	}
	return n, true
}

// steadyQueue reads the socket's queue length with the ioctl req (SIOCOUTQ
// or SIOCINQ) between two readings of its TCP_INFO whose counter (the
// bytes acknowledged or received) is the same, so that no segment moved
// the two apart, and returns the second reading with the queue length;
// false on an error, or when a segment came between them eight times.
func steadyQueue(fd int, req uint, counter func(*unix.TCPInfo) uint64) (*unix.TCPInfo, int, bool) {
	for range 8 {
		a, err1 := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		queued, err2 := unix.IoctlGetInt(fd, req)
		z, err3 := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err1 != nil || err2 != nil || err3 != nil || queued < 0 {
			return nil, 0, false
		}
		if counter(a) == counter(z) {
			return z, queued, true
		}
	}
	return nil, 0, false
}

// Resuming implements backend.Resumer.
func (b *Backend) Resuming() bool { return b.tab != nil && b.store != nil }

// Resume implements backend.Resumer: the sockets whose records name
// owner, registered with the loop now that they have a Notify.
func (b *Backend) Resume(owner uint64, notify func(handle uint64) backend.Notify) []backend.Resumed {
	var out []backend.Resumed
	keep := b.adopted[:0]
	for _, s := range b.adopted {
		if s.owner != owner {
			keep = append(keep, s)
			continue
		}
		s.notify = notify(s.handle)
		events := uint32(connEvents)
		if s.listener {
			events = unix.EPOLLIN | unix.EPOLLET
		}
		if err := b.env.AddFD(s.fd, events, s.event); err != nil {
			b.env.Logger().Warn("kernel: a resumed socket could not be watched; closed", "err", err)
			s.notify = func(backend.Events) {}
			s.Close()
			continue
		}
		r := backend.Resumed{Handle: s.handle, Call: s.call}
		if s.listener {
			r.Listener = s
			r.Options = backend.ListenOptions{Backlog: int(s.backlog), V6Only: s.flags&flagV6Only != 0, ReusePort: s.flags&flagReusePort != 0}
		} else {
			r.Conn = s
			r.CloseAt = s.closeAt
		}
		out = append(out, r)
	}
	clear(b.adopted[len(keep):])
	b.adopted = keep
	return out
}

// Flush implements backend.Flusher: the store's puts and drops of the
// round go out before its completions. What found no room on the link (a
// supervisor that fell behind) is tried again shortly, even if no round
// follows: a drop left queued would keep a closed socket open.
func (b *Backend) Flush() {
	b.store.flush()
	if b.retry == nil && b.store.pending() {
		b.retry = b.env.AfterFunc(storeRetry, func() {
			b.retry = nil
			b.Flush()
		})
	}
}

// storeRetry is how soon a flush that found no room is tried again.
const storeRetry = 2 * time.Millisecond

// SetOwner implements backend.Origin: the socket gets its record and goes
// into the store (the first time), or its record names its new holder.
func (s *socket) SetOwner(owner, handle uint64) {
	t := s.b.tab
	if t == nil || s.closed {
		return
	}
	s.owner, s.handle = owner, handle
	if s.rec >= 0 {
		t.u64(s.rec, rHandle).Store(handle)
		t.u64(s.rec, rOwner).Store(owner)
		return
	}
	r := record{kind: s.kind, flags: s.flags, backlog: s.backlog, owner: owner, handle: handle, call: s.call, sent: s.sent, consumed: s.consumed}
	if !t.alloc(&r) {
		if !s.b.fullWarned {
			s.b.fullWarned = true
			s.b.env.Logger().Warn("kernel: socket table full; sockets past it do not outlive netproc", "records", t.records)
		}
		return
	}
	s.rec, s.key = r.slot, r.key()
	s.b.store.put(s.key, s.fd)
	if s.kind == kindAccepted {
		// At once rather than with the round's batch: from accept4 on,
		// a death closes the socket (with the peer's first bytes unread,
		// a reset), and the round may have much else to do before its
		// end. Drops, and the puts of the rarer listens and connects,
		// wait for the round's end.
		s.b.Flush()
	}
}

// SetOrigin implements backend.Origin.
func (s *socket) SetOrigin(call uint64) {
	s.call = call
	if s.rec >= 0 {
		s.b.tab.u64(s.rec, rCall).Store(call)
	}
}

// setFlag records f in the socket's record.
func (s *socket) setFlag(f uint32) {
	s.flags |= f
	if s.rec >= 0 {
		s.b.tab.u32(s.rec, rFlags).Store(s.flags)
	}
}

// Sent implements backend.StreamConn: the kernel backend counts in 64
// bits, so near is not needed.
func (s *socket) Sent(near uint64) uint64 { return s.sent }

// Closing implements backend.StreamConn.
func (s *socket) Closing(end uint64) {
	s.closeAt = end
	if s.rec >= 0 {
		s.b.tab.u64(s.rec, rCloseAt).Store(end)
	}
}

// Leave implements backend.Leaver: netproc stops, and the socket stays,
// in the store and in its record, for the next incarnation. The
// descriptor is left to the process's exit (a put of it may still be
// queued for Close's flush).
func (s *socket) Leave() {
	if s.closed {
		return
	}
	if s.rec < 0 {
		s.Close()
		return
	}
	s.closed = true
	s.b.env.DelFD(s.fd)
	if s.peek == peekOn {
		// The peek offset off, for a next incarnation that would not
		// know to turn it off (`saturn upgrade netproc` to an older
		// build): its peeks start at the head, where its record says.
		unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, -1)
	}
}
