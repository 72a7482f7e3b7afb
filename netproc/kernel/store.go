package kernel

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// storeLink is netproc's end of the supervisor's descriptor store (see
// proto's descriptor store and supervisor/fdstore.go): each socket netproc
// makes is put in the store once an app holds it, and dropped when netproc
// closes it. Puts and drops are queued and sent once per loop round
// (Backend.Flush), before the round's completions are published, so that
// an app never holds a handle whose socket the store does not have (but
// for a store that does not keep up: see flush). Loop only.
type storeLink struct {
	fd     int
	log    *slog.Logger
	puts   []uint64 // keys of the descriptors in putFDs, to send
	putFDs []int
	drops  []uint64
	msg    []byte
	broken bool // a send failed other than for room: the store is off
}

// storeTimeout bounds the wait for the supervisor's hand-back at start.
const storeTimeout = 5 * time.Second

// openStore takes over the link f and receives what the supervisor hands
// back: every descriptor it holds, by key. The caller owns the
// descriptors.
func openStore(f *os.File, log *slog.Logger) (*storeLink, map[uint64]int, error) {
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("kernel: descriptor store: %w", err)
	}
	unix.CloseOnExec(fd)
	l := &storeLink{fd: fd, log: log}
	back, err := l.receiveBack()
	if err != nil {
		for _, d := range back {
			unix.Close(d)
		}
		unix.Close(fd)
		return nil, nil, fmt.Errorf("kernel: descriptor store: %w", err)
	}
	return l, back, nil
}

// receiveBack reads StoreBack messages until StoreEnd.
func (l *storeLink) receiveBack() (map[uint64]int, error) {
	tv := unix.NsecToTimeval(storeTimeout.Nanoseconds())
	unix.SetsockoptTimeval(l.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	defer unix.SetsockoptTimeval(l.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{})
	back := map[uint64]int{}
	buf := make([]byte, proto.StoreMaxMsg)
	oob := make([]byte, unix.CmsgSpace(4*proto.StoreMaxFDs))
	var keys []uint64
	for {
		n, oobn, flags, _, err := unix.Recvmsg(l.fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return back, err
		}
		if n == 0 && oobn == 0 {
			return back, errors.New("the supervisor closed the link")
		}
		fds, err := proto.StoreFDs(oob[:oobn])
		if err != nil {
			return back, err
		}
		var op proto.StoreOp
		if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			err = proto.ErrStoreMsg
		} else {
			op, keys, err = proto.DecodeStoreMsg(buf[:n], len(fds), keys)
		}
		if err == nil && op != proto.StoreBack && op != proto.StoreEnd {
			err = proto.ErrStoreMsg
		}
		if err != nil {
			for _, d := range fds {
				unix.Close(d)
			}
			return back, err
		}
		if op == proto.StoreEnd {
			return back, nil
		}
		for i, k := range keys {
			if old, ok := back[k]; ok {
				unix.Close(old)
			}
			back[k] = fds[i]
		}
	}
}

// put queues fd for the store under key. fd must stay open until the next
// flush, or be dropped first.
func (l *storeLink) put(key uint64, fd int) {
	if l == nil || l.broken {
		return
	}
	l.puts = append(l.puts, key)
	l.putFDs = append(l.putFDs, fd)
}

// drop queues the end of what the store holds under key (a put still
// queued is taken back instead).
func (l *storeLink) drop(key uint64) {
	if l == nil || l.broken {
		return
	}
	if i := slices.Index(l.puts, key); i >= 0 {
		l.puts = slices.Delete(l.puts, i, i+1)
		l.putFDs = slices.Delete(l.putFDs, i, i+1)
		return
	}
	l.drops = append(l.drops, key)
}

// flush sends what is queued, in batches, without blocking. Puts go
// first: each send wakes the supervisor, which on a busy machine may take
// the CPU from netproc there and then, and an accepted socket not yet
// sent is one a death would reset. (Order between puts and drops does not
// matter otherwise: a record reused has a new key.) What finds no room
// waits for the next flush: meanwhile those sockets are not yet kept.
func (l *storeLink) flush() {
	if l == nil || l.broken {
		return
	}
	for len(l.puts) > 0 {
		n := min(len(l.puts), proto.StoreMaxFDs)
		l.msg = proto.AppendStoreMsg(l.msg[:0], proto.StorePut, l.puts[:n])
		if !l.send(l.msg, unix.UnixRights(l.putFDs[:n]...)) {
			return
		}
		l.puts, l.putFDs = l.puts[n:], l.putFDs[n:]
	}
	for len(l.drops) > 0 {
		n := min(len(l.drops), proto.StoreMaxKeys)
		l.msg = proto.AppendStoreMsg(l.msg[:0], proto.StoreDrop, l.drops[:n])
		if !l.send(l.msg, nil) {
			return
		}
		l.drops = l.drops[n:]
	}
	l.drops, l.puts, l.putFDs = l.drops[:0:0], l.puts[:0:0], l.putFDs[:0:0]
}

// send sends one message; false if it must wait (no room) or failed.
func (l *storeLink) send(msg, oob []byte) bool {
	for {
		err := unix.Sendmsg(l.fd, msg, oob, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		switch {
		case err == nil:
			return true
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.ENOBUFS):
			return false
		default:
			l.broken = true
			l.puts, l.putFDs, l.drops = nil, nil, nil
			l.log.Error("descriptor store: link failed; sockets no longer outlive netproc", "err", err)
			return false
		}
	}
}

// pending reports whether puts or drops wait for room on the link.
func (l *storeLink) pending() bool {
	return l != nil && !l.broken && len(l.puts)+len(l.drops) > 0
}

func (l *storeLink) close() {
	if l != nil && l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}

// DiscardStore is for a netproc that does not keep sockets (another
// backend, or no persistent memory): it takes what the supervisor hands
// back, closes it, tells the store to drop it, and closes the link, so
// that no socket of an earlier incarnation is held for nobody.
func DiscardStore(f *os.File, log *slog.Logger) {
	l, back, err := openStore(f, log)
	if err != nil {
		log.Warn("descriptor store: not used", "err", err)
		return
	}
	for k, fd := range back {
		unix.Close(fd)
		l.drop(k)
	}
	l.flush()
	if len(back) > 0 {
		log.Info("descriptor store: closed the sockets of an earlier incarnation", "sockets", len(back))
	}
	l.close()
}
