package kernel

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Receiving without losing a byte to netproc's death. A stream receive
// peeks (MSG_PEEK): its bytes stay in the socket, so that a receive whose
// answer died with netproc finds them again. They leave it (discard: a
// recv with MSG_TRUNC and no buffer) only once the app's next call carries
// a stream offset past them, which shows it has them; the record counts
// the bytes let go (consumed), and an intent brackets each discard.
//
// A peek reads from the head of the queue, so the bytes the app has must
// leave before the next peek: a discard and a peek, two system calls a
// receive. With SO_PEEK_OFF (TCP's since Linux 6.10) the kernel keeps a
// peek offset that each peek moves forward and each discard moves back by
// what it takes, so the bytes the app has can stay while the next peek
// reads past them, and leave in batches: one discard for up to
// holdReceives receives. A connection starts without it (a discard each
// receive, as a connection that serves one request and closes would need
// anyway) and turns it on at its third receive.
//
// What stays is bounded so that it can never shut the receive window on a
// peer that waits for it to open (the bytes a receive releases may be all
// the window held; see the handler's recv): at most holdReceives receives'
// and holdBytes bytes, and only in a receive buffer of minHoldBuffer or
// more. The window is the buffer less the kernel's memory for the
// segments queued, and a segment leaves only whole: a few bytes held of a
// 64 KiB segment would pin all of it, and a stream stalled so in a test
// (TestReceiveBulkNoStall). So only a connection of requests holds: one
// whose receives each took all there was (fewer bytes than the buffer),
// each ending at the end of the queue and so never inside a segment that
// later bytes fill. The first receive that fills its buffer marks a
// stream, which never holds again. A close, a plain Read and a small
// SO_RCVBUF let the bytes go at once.
//
// The peek offset is the socket's, so it outlives netproc with the socket:
// adopt turns it off, and the next incarnation's first receives discard up
// to the app's offset as they always did.

const (
	holdReceives  = 8
	holdBytes     = 8 << 10
	minHoldBuffer = 64 << 10
)

// peekMode is whether a socket's peeks start at the kernel's peek offset.
type peekMode uint8

const (
	peekHead  peekMode = iota // at the head of the queue: nothing held
	peekOn                    // at the peek offset, which stands at peekAt
	peekNever                 // at the head, for good (no SO_PEEK_OFF, or a small receive buffer)
)

// ReadAt implements backend.StreamConn: the bytes before off are released
// (they may stay in the socket a while, see above), and those from off on
// are peeked.
func (s *socket) ReadAt(b []byte, off uint64) (int, error) {
	if err := s.release(off); err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	if s.peek == peekOn && s.peekAt != off {
		// The app wants again bytes it was given (a receive it gave up
		// on): the offset goes back to them.
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, int(off-s.consumed)); err != nil {
			return 0, errno(err)
		}
		s.peekAt = off
	}
	for {
		n, _, err := unix.Recvfrom(s.fd, b, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, errno(err)
		}
		// At the head (consumed == off) or at the peek offset (peekAt ==
		// off), the bytes peeked begin at off.
		s.peekAt = max(s.peekAt, off+uint64(n))
		if s.peek == peekOn {
			s.peekAt = off + uint64(n)
		}
		if n == len(b) {
			// A stream, not requests: a receive that fills its buffer
			// may stop inside a large segment, which held bytes would
			// pin whole in the receive buffer (see streaming).
			s.streaming = true
		}
		return n, nil
	}
}

// Release implements backend.StreamConn.
func (s *socket) Release(off uint64) {
	if off > s.released {
		s.release(off)
	}
}

// release records that the app has the bytes before off, and lets them
// leave the socket now or, within the bounds above, with a later batch.
// EINVAL for an off before what the app showed already, or past what the
// socket had.
func (s *socket) release(off uint64) error {
	if off < s.released {
		return syscall.EINVAL
	}
	if off == s.released {
		return nil
	}
	if s.peek == peekHead && s.releasedOnce {
		s.startPeekOffset()
	}
	s.releasedOnce = true
	if s.peek == peekOn && !s.smallBuffer && !s.streaming && off <= s.peekAt && s.held < holdReceives && off-s.consumed <= holdBytes {
		s.released = off
		s.held++
		return nil
	}
	return s.discard(off - s.consumed)
}

// startPeekOffset turns the kernel's peek offset on, at the end of what
// was peeked, if the socket supports it and its receive buffer is large
// enough to hold bytes in; otherwise peeks stay at the head for good.
// Nothing is held yet (released == consumed).
func (s *socket) startPeekOffset() {
	s.peek = peekNever
	rcv, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil || rcv < minHoldBuffer {
		return
	}
	if unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_PEEK_OFF, int(s.peekAt-s.consumed)) == nil {
		s.peek = peekOn
	}
}

// letGo discards what is held: before a close (bytes left unread would
// reset the connection), a plain read, or a smaller receive buffer.
func (s *socket) letGo() error {
	if s.released > s.consumed {
		return s.discard(s.released - s.consumed)
	}
	return nil
}

// discard lets n received bytes go (they were peeked, and the app has
// them), the intent bracketing it in the record. EINVAL if the socket
// had fewer: the app claims bytes it was never given. Whatever it took
// is no longer held, and the kernel's peek offset moved back by it (to
// the head at least).
func (s *socket) discard(n uint64) error {
	defer func() {
		s.released, s.held = s.consumed, 0
		s.peekAt = max(s.peekAt, s.consumed)
	}()
	for n > 0 {
		chunk := min(n, 1<<30)
		if s.rec >= 0 {
			s.b.tab.u64(s.rec, rDiscarding).Store(chunk)
		}
		r, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, uintptr(chunk), unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 && e != unix.EAGAIN {
			return errno(e) // reset, or otherwise failed: say so, as a read would
		}
		got := uint64(0)
		if e == 0 {
			got = uint64(r)
		}
		s.consumed += got
		if s.rec >= 0 {
			s.b.tab.u64(s.rec, rConsumed).Store(s.consumed)
			s.b.tab.u64(s.rec, rDiscarding).Store(0)
		}
		if got < chunk {
			return syscall.EINVAL
		}
		n -= got
	}
	return nil
}
