package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// fdStore holds a server's descriptors across its deaths, as systemd's
// file-descriptor store does (proto's descriptor store): netproc on the
// kernel backend hands it each socket it makes, under a key, and drops it
// when it closes the socket; every incarnation gets back, first thing,
// every descriptor held. The sockets so outlive netproc, with the kernel
// still queueing connections on the listeners and bytes on the
// connections. The store closes what it holds when no next incarnation
// will come: the instance stops, or the server is stopped or failed.
//
// Each incarnation has a link of its own, served by one goroutine (serve),
// which first waits for the previous link to end, so that what the dead
// incarnation sent before it died (still queued on its link) is in the
// store before anything is handed back.
//
// The server is not trusted: a malformed message is dropped with its
// descriptors, and the store holds at most max descriptors (then it closes
// what it gets, and says so once).
type fdStore struct {
	name string
	log  *slog.Logger
	max  int

	mu     sync.Mutex // guards what follows; held across a hand-back
	held   map[uint64]int
	last   chan struct{} // closed when the latest link's goroutine has ended
	warned bool
}

func newFDStore(name string, log *slog.Logger) *fdStore {
	done := make(chan struct{})
	close(done)
	return &fdStore{name: name, log: log, max: storeCap(), held: map[uint64]int{}, last: done}
}

// storeCap is how many descriptors a store may hold: half of the
// supervisor's own limit, leaving the rest to channels, logs and control
// connections.
func storeCap() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 1 << 19
	}
	return max(int(lim.Cur)/2, 64)
}

// storeSendTimeout bounds each send of a hand-back: a server that does not
// read its link does not hold the store (and its lock) for longer.
const storeSendTimeout = 5 // seconds

// link makes the link of the server's next incarnation and starts serving
// it. The caller passes the returned end to the process and then closes
// its own copy of it.
func (st *fdStore) link() (*os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("descriptor store link: %w", err)
	}
	tv := unix.Timeval{Sec: storeSendTimeout}
	unix.SetsockoptTimeval(fds[0], unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	st.mu.Lock()
	prev, done := st.last, make(chan struct{})
	st.last = done
	st.mu.Unlock()
	go st.serve(fds[0], prev, done)
	return os.NewFile(uintptr(fds[1]), "fdstore-link"), nil
}

// serve hands back what the store holds, then keeps what the incarnation
// sends until its link ends (it died, or stopped).
func (st *fdStore) serve(fd int, prev, done chan struct{}) {
	defer close(done)
	defer unix.Close(fd)
	<-prev
	if err := st.handBack(fd); err != nil {
		st.log.Warn("descriptor store: handing back failed; kept for the next incarnation", "server", st.name, "err", err)
		return
	}
	buf := make([]byte, proto.StoreMaxMsg)
	oob := make([]byte, unix.CmsgSpace(4*proto.StoreMaxFDs))
	var keys []uint64
	for {
		n, oobn, flags, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 && oobn == 0 {
			return // the incarnation's end is closed: it is gone
		}
		fds, ferr := proto.StoreFDs(oob[:oobn])
		var op proto.StoreOp
		if ferr == nil && flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) == 0 {
			op, keys, ferr = proto.DecodeStoreMsg(buf[:n], len(fds), keys)
		} else if ferr == nil {
			ferr = proto.ErrStoreMsg
		}
		if ferr != nil {
			for _, f := range fds {
				unix.Close(f)
			}
			st.log.Warn("descriptor store: malformed message dropped", "server", st.name, "err", ferr)
			continue
		}
		switch op {
		case proto.StorePut:
			for i, k := range keys {
				st.put(k, fds[i])
			}
		case proto.StoreDrop:
			for _, k := range keys {
				st.drop(k)
			}
		default:
			st.log.Warn("descriptor store: unexpected message dropped", "server", st.name, "op", string(rune(op)))
		}
	}
}

// handBack sends every descriptor held, with its key, then StoreEnd.
func (st *fdStore) handBack(fd int) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	keys := make([]uint64, 0, len(st.held))
	fds := make([]int, 0, len(st.held))
	for k, f := range st.held {
		keys = append(keys, k)
		fds = append(fds, f)
	}
	var msg []byte
	for i := 0; i < len(keys); i += proto.StoreMaxFDs {
		j := min(i+proto.StoreMaxFDs, len(keys))
		msg = proto.AppendStoreMsg(msg[:0], proto.StoreBack, keys[i:j])
		if err := sendAll(fd, msg, unix.UnixRights(fds[i:j]...)); err != nil {
			return err
		}
	}
	if err := sendAll(fd, proto.AppendStoreMsg(msg[:0], proto.StoreEnd, nil), nil); err != nil {
		return err
	}
	if len(keys) > 0 {
		st.log.Info("descriptor store: handed back", "server", st.name, "descriptors", len(keys))
	}
	return nil
}

func sendAll(fd int, msg, oob []byte) error {
	for {
		err := unix.Sendmsg(fd, msg, oob, nil, unix.MSG_NOSIGNAL)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// put holds fd under key.
func (st *fdStore) put(key uint64, fd int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if old, ok := st.held[key]; ok {
		closeHeld(old) // the server reused a key it never dropped: the newer wins
	} else if len(st.held) >= st.max {
		unix.Close(fd)
		if !st.warned {
			st.warned = true
			st.log.Warn("descriptor store full: sockets past it do not outlive the server", "server", st.name, "max", st.max)
		}
		return
	}
	st.held[key] = fd
}

// drop closes what is held under key.
func (st *fdStore) drop(key uint64) {
	st.mu.Lock()
	fd, ok := st.held[key]
	delete(st.held, key)
	st.mu.Unlock()
	if ok {
		closeHeld(fd)
	}
}

// closeHeld closes a held descriptor. A socket with a positive SO_LINGER
// makes close wait for its data to go (whatever its blocking mode): that
// close gets a goroutine of its own rather than hold up the store.
func closeHeld(fd int) {
	if l, err := unix.GetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER); err == nil && l.Onoff != 0 && l.Linger > 0 {
		go unix.Close(fd)
		return
	}
	unix.Close(fd)
}

// closeAll closes everything held: no next incarnation will take it.
func (st *fdStore) closeAll() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.held) > 0 {
		st.log.Info("descriptor store: closed", "server", st.name, "descriptors", len(st.held))
	}
	for k, fd := range st.held {
		closeHeld(fd)
		delete(st.held, k)
	}
}

// count is how many descriptors are held.
func (st *fdStore) count() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.held)
}
