// Package kernel is netproc's kernel-socket backend: the host's own TCP/IP,
// through non-blocking sockets registered edge-triggered in netproc's epoll
// set, as the seed's SockIO did. It needs no privileges.
//
// Each socket is registered once, for everything (EPOLLIN, EPOLLOUT,
// EPOLLRDHUP, EPOLLET), so that no operation costs an epoll_ctl; the
// handler tracks readiness itself and retries only after an edge (see
// package backend). Accepted and connected sockets get TCP_NODELAY, as Go's
// net gives them.
package kernel

import (
	"errors"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"saturn/netproc/backend"
)

// Backend is the kernel-socket backend.
type Backend struct {
	env backend.Env
	cfg Config

	// Sockets that outlive netproc (resume.go); nil when not kept.
	tab        *table
	store      *storeLink
	adopted    []*socket // taken over, waiting for their app's channel
	grace      backend.Timer
	retry      backend.Timer // a flush that found no room, tried again
	fullWarned bool
}

// Config is what a kernel backend needs to keep its sockets across
// netproc's death: netproc's persistent memory and its end of the
// supervisor's descriptor store. With either missing, sockets die with
// the process.
type Config struct {
	Persist *os.File // proto.PersistFromEnv; the backend owns it
	Store   *os.File // proto.FDStoreFromEnv; the backend owns it
}

// New returns a kernel backend whose sockets die with netproc; Start
// gives it the loop.
func New() *Backend { return &Backend{} }

// NewWith returns a kernel backend that keeps its sockets as cfg allows.
func NewWith(cfg Config) *Backend { return &Backend{cfg: cfg} }

// Name implements backend.Backend.
func (b *Backend) Name() string { return "kernel" }

// Costs implements backend.Coster: a kernel TCP socket's own structures
// (its slab objects: the socket, its inode, the file, the epoll item)
// and netproc's bookkeeping for it, measured at 15,000 idle connections
// (docs/benchmarks.md, "connections"). What the socket buffers lives in
// the kernel's socket memory, which the kernel bounds (net.ipv4.tcp_mem)
// and netproc does not count.
func (b *Backend) Costs() backend.Costs { return backend.Costs{Socket: 6144} }

// descriptorsKept is how many of the process's descriptors Capacity leaves
// to everything but sockets: the loop's epoll and timer, two doorbells a
// channel, logs, the persistent memory.
const descriptorsKept = 512

// Capacity implements backend.Capacity: every socket is one of netproc's
// descriptors, so the process's RLIMIT_NOFILE (whose soft limit Go raises
// to the hard one at start) bounds every app's sockets together.
func (b *Backend) Capacity() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 1 << 20
	}
	return max(int(lim.Cur)-descriptorsKept, 64)
}

// Start implements backend.Backend. A backend that keeps its sockets
// takes back, before anything else, what the supervisor's store holds for
// it (resume.go).
func (b *Backend) Start(env backend.Env) error {
	b.env = env
	log := env.Logger()
	persist, store := b.cfg.Persist, b.cfg.Store
	b.cfg = Config{}
	if persist == nil || store == nil {
		if store != nil {
			DiscardStore(store, log)
		}
		if persist != nil {
			persist.Close()
		}
		return nil
	}
	tab, err := openTable(persist, 0)
	persist.Close() // mapped
	if err != nil {
		log.Warn("kernel: sockets will not outlive netproc", "err", err)
		DiscardStore(store, log)
		return nil
	}
	if tab.discard != "" {
		log.Info("kernel: persistent memory held something else; started afresh", "found", tab.discard)
	}
	link, back, err := openStore(store, log)
	if err != nil {
		log.Warn("kernel: sockets will not outlive netproc", "err", err)
		tab.close()
		return nil
	}
	b.tab, b.store = tab, link
	b.adopt(back)
	return nil
}

// Info implements backend.Backend: the kernel backend has nothing to add.
func (b *Backend) Info() map[string]string { return nil }

// Close implements backend.Backend; the handler closes (or leaves) the
// sockets first. What is queued for the store goes now.
func (b *Backend) Close() error {
	if b.grace != nil {
		b.grace.Stop()
	}
	if b.retry != nil {
		b.retry.Stop()
	}
	b.store.flush()
	b.store.close()
	return b.tab.close()
}

// defaultBacklog is used when an app asks for none; the kernel clamps it to
// net.core.somaxconn.
const defaultBacklog = 4096

const connEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

// Listen implements backend.Backend.
func (b *Backend) Listen(addr netip.AddrPort, opts backend.ListenOptions, notify backend.Notify) (backend.Listener, error) {
	fd, err := b.listen(addr, opts)
	if errors.Is(err, unix.EAFNOSUPPORT) && addr.Addr() == netip.IPv6Unspecified() && !opts.V6Only {
		// No IPv6 on this host: a dual-stack wildcard is IPv4's.
		fd, err = b.listen(netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port()), opts)
	}
	if err != nil {
		return nil, err
	}
	s := &socket{b: b, fd: fd, notify: notify, listener: true, rec: -1, kind: kindListener, backlog: uint32(max(opts.Backlog, 0))}
	if opts.V6Only {
		s.flags |= flagV6Only
	}
	if opts.ReusePort {
		s.flags |= flagReusePort
	}
	if err := b.env.AddFD(fd, unix.EPOLLIN|unix.EPOLLET, s.event); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return s, nil
}

func (b *Backend) listen(addr netip.AddrPort, opts backend.ListenOptions) (int, error) {
	family, sa := sockaddr(addr)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err == nil && family == unix.AF_INET6 {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(opts.V6Only))
	}
	if err == nil && opts.ReusePort {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	if err == nil {
		backlog := opts.Backlog
		if backlog <= 0 {
			backlog = defaultBacklog
		}
		err = unix.Listen(fd, backlog)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// Connect implements backend.Backend.
func (b *Backend) Connect(addr netip.AddrPort, notify backend.Notify) (backend.Conn, error) {
	family, sa := sockaddr(addr)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	switch err := unix.Connect(fd, sa); err {
	case nil, unix.EINPROGRESS, unix.EINTR:
	default:
		unix.Close(fd)
		return nil, err
	}
	s := &socket{b: b, fd: fd, notify: notify, connecting: true, rec: -1, kind: kindDialed}
	if err := b.env.AddFD(fd, connEvents, s.event); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return s, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// errno unwraps what x/sys returns into a syscall.Errno for the handler.
func errno(err error) error {
	if err == nil {
		return nil
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}
