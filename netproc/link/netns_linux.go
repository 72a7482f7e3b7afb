package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces live, as `ip netns` keeps them.
const NetnsDir = "/run/netns"

// NamespaceExists reports whether /run/netns/NAME is a mounted network
// namespace.
func NamespaceExists(name string) (bool, error) {
	if err := validNamespaceName(name); err != nil {
		return false, err
	}
	var st unix.Statfs_t
	err := unix.Statfs(filepath.Join(NetnsDir, name), &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, nil
	case err != nil:
		return false, &os.PathError{Op: "statfs", Path: filepath.Join(NetnsDir, name), Err: err}
	}
	return st.Type == unix.NSFS_MAGIC, nil
}

// EnsureNamespace creates the named network namespace as `ip netns add NAME`
// does, unless it exists, and reports whether it created it. A leftover
// file that is not a mounted namespace (after a crash) is replaced.
func EnsureNamespace(name string) (created bool, err error) {
	exists, err := NamespaceExists(name)
	if err != nil || exists {
		return false, err
	}
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return false, err
	}
	makeShared(NetnsDir)
	path := filepath.Join(NetnsDir, name)
	os.Remove(path) // a stale, unmounted file
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if errors.Is(err, os.ErrExist) {
		// Someone else is creating it right now; use theirs.
		return false, nil
	}
	if err != nil {
		return false, err
	}
	f.Close()
	if err := bindNewNetns(path); err != nil {
		os.Remove(path)
		return false, fmt.Errorf("link: create network namespace %q: %w", name, err)
	}
	return true, nil
}

// makeShared makes dir a shared mount point, as iproute2 does, so that the
// namespace mounts under it propagate to other mount namespaces. Best
// effort: a failure only limits who sees the namespace.
func makeShared(dir string) {
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		if unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, "") == nil {
			unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
}

// bindNewNetns creates a network namespace and bind-mounts it on path.
// The unshare happens on a thread of its own (onThread), which goes back
// to the process's namespace afterwards.
func bindNewNetns(path string) error {
	return onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return os.NewSyscallError("unshare", err)
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		return unix.Mount(self, path, "none", unix.MS_BIND, "")
	})
}

// DeleteNamespace unmounts and removes the named namespace, as
// `ip netns delete NAME` does. The namespace itself goes when nothing uses
// it any more.
func DeleteNamespace(name string) error {
	if err := validNamespaceName(name); err != nil {
		return err
	}
	return netns.DeleteNamed(name)
}

// InNamespace runs fn on a thread that has joined the named namespace, as
// a program run with `ip netns exec` would run: sockets fn makes belong to
// that namespace wherever they are used afterwards. The thread goes back
// to its own namespace afterwards (see onThread).
func InNamespace(name string, fn func() error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("link: namespace %q: %w", name, err)
	}
	defer ns.Close()
	return inNamespace(ns, fn)
}

// inNamespace runs fn on a thread that has joined the namespace ns.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	return onThread(func() error {
		if err := netns.Set(ns); err != nil {
			return os.NewSyscallError("setns", err)
		}
		return fn()
	})
}

// onThread runs fn on a locked OS thread of its own, which fn may move
// into another network namespace, and then puts the thread back into the
// namespace it came from before unlocking it. A thread that cannot go back
// stays locked, and the runtime discards it when the goroutine ends. Not
// relying on that alone matters: a locked goroutine that ends on the
// process's main thread wedges that thread instead (the main thread cannot
// exit), which would hold the namespace for the life of the process.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		leave, err := lockThread()
		if err != nil {
			errc <- err
			return
		}
		err = fn()
		leave()
		errc <- err
	}()
	return <-errc
}

// lockThread locks the calling goroutine to its thread and notes the
// thread's network namespace; leave puts the thread back there and
// unlocks it, or, if it cannot, leaves it locked for the runtime to
// discard when the goroutine ends (see onThread).
func lockThread() (leave func(), err error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("link: this thread's namespace: %w", err)
	}
	return func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	}, nil
}

// NetnsConfig describes a TUN device inside a named network namespace.
type NetnsConfig struct {
	// Namespace is the namespace's name (/run/netns/NAME); created if
	// missing and then removed again by Close.
	Namespace string
	// Address is saturn's address and the link's prefix, e.g.
	// 10.77.0.2/24. The kernel's side gets PeerAddress with the same
	// prefix length.
	Address netip.Prefix
	// PeerAddress is the kernel's address; when zero, DerivePeer chooses.
	PeerAddress netip.Addr
	// IfName names the interface inside the namespace; when empty it
	// keeps the name the kernel chose (saturn0, saturn1, ...).
	IfName string
	// MTU, Offload, NoTSO and BatchSize are as in TUNConfig.
	MTU       int
	Offload   bool
	NoTSO     bool
	BatchSize int
}

// NetnsTUN is a TUN device whose interface was moved into a named network
// namespace and addressed there, so that the kernel in that namespace routes
// saturn's address through it. The file descriptor stays with this process
// and its network namespace; Close removes the interface and, if it was
// created here, the namespace.
type NetnsTUN struct {
	*TUN
	namespace string
	created   bool
	addr      netip.Prefix
	peer      netip.Prefix
	closeOnce sync.Once
	closeErr  error
}

// OpenNetnsTUN creates the namespace if missing, creates a TUN interface,
// moves it into the namespace, renames it to cfg.IfName, sets its MTU,
// turns IPv6 off on it (so that the kernel sends no router solicitations
// down it), gives it the peer address and brings it and the namespace's
// loopback up. On failure it undoes what it did.
func OpenNetnsTUN(cfg NetnsConfig) (_ *NetnsTUN, err error) {
	if cfg.MTU <= 0 {
		cfg.MTU = DefaultMTU
	}
	if !cfg.Address.Addr().Is4() {
		return nil, fmt.Errorf("link: saturn's address %v is not IPv4", cfg.Address)
	}
	peer := cfg.PeerAddress
	if !peer.IsValid() {
		if peer, err = DerivePeer(cfg.Address); err != nil {
			return nil, err
		}
	}
	if peer == cfg.Address.Addr() || !cfg.Address.Contains(peer) {
		return nil, fmt.Errorf("link: peer address %v must be another address of %v", peer, cfg.Address.Masked())
	}
	if cfg.IfName != "" {
		if _, err := unix.NewIfreq(cfg.IfName); err != nil {
			return nil, fmt.Errorf("link: interface name %q: %w", cfg.IfName, err)
		}
	}
	created, err := EnsureNamespace(cfg.Namespace)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && created {
			DeleteNamespace(cfg.Namespace)
		}
	}()
	tun, err := OpenTUN(TUNConfig{MTU: cfg.MTU, Offload: cfg.Offload, NoTSO: cfg.NoTSO, BatchSize: cfg.BatchSize})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tun.Close()
		}
	}()
	if err := configureInNamespace(tun, cfg, netip.PrefixFrom(peer, cfg.Address.Bits())); err != nil {
		return nil, err
	}
	return &NetnsTUN{
		TUN:       tun,
		namespace: cfg.Namespace,
		created:   created,
		addr:      cfg.Address,
		peer:      netip.PrefixFrom(peer, cfg.Address.Bits()),
	}, nil
}

func configureInNamespace(tun *TUN, cfg NetnsConfig, peer netip.Prefix) error {
	ns, err := netns.GetFromName(cfg.Namespace)
	if err != nil {
		return fmt.Errorf("link: open namespace %q: %w", cfg.Namespace, err)
	}
	defer ns.Close()
	link, err := netlink.LinkByName(tun.name)
	if err != nil {
		return fmt.Errorf("link: find %s: %w", tun.name, err)
	}
	if err := netlink.LinkSetNsFd(link, int(ns)); err != nil {
		return fmt.Errorf("link: move %s into namespace %q: %w", tun.name, cfg.Namespace, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("link: netlink in namespace %q: %w", cfg.Namespace, err)
	}
	defer h.Close()
	if link, err = h.LinkByName(tun.name); err != nil {
		return fmt.Errorf("link: find %s in namespace %q: %w", tun.name, cfg.Namespace, err)
	}
	if cfg.IfName != "" && cfg.IfName != tun.name {
		if _, err := h.LinkByName(cfg.IfName); err == nil {
			return fmt.Errorf("%w: %s in %q", ErrInterfaceExists, cfg.IfName, cfg.Namespace)
		}
		if err := h.LinkSetName(link, cfg.IfName); err != nil {
			return fmt.Errorf("link: rename %s to %s: %w", tun.name, cfg.IfName, err)
		}
		tun.name = cfg.IfName
		if link, err = h.LinkByName(tun.name); err != nil {
			return err
		}
	}
	if err := h.LinkSetMTU(link, cfg.MTU); err != nil {
		return fmt.Errorf("link: set MTU %d on %s: %w", cfg.MTU, tun.name, err)
	}
	disableIPv6(ns, tun.name)
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: peer.Addr().AsSlice(), Mask: net.CIDRMask(peer.Bits(), 32)}}
	if err := h.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("link: address %v on %s: %w", peer, tun.name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("link: bring %s up: %w", tun.name, err)
	}
	if lo, err := h.LinkByName("lo"); err == nil {
		h.LinkSetUp(lo)
	}
	return nil
}

// disableIPv6 writes the interface's disable_ipv6 sysctl from inside the
// namespace (net sysctls belong to the namespace of whoever opens them).
// Best effort: a kernel without IPv6 has nothing to turn off.
func disableIPv6(ns netns.NsHandle, ifName string) {
	inNamespace(ns, func() error {
		return os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", ifName, "disable_ipv6"), []byte("1"), 0o644)
	})
}

// Namespace returns the namespace's name.
func (n *NetnsTUN) Namespace() string { return n.namespace }

// CreatedNamespace reports whether OpenNetnsTUN created the namespace (and
// Close will remove it).
func (n *NetnsTUN) CreatedNamespace() bool { return n.created }

// Address returns saturn's address and prefix.
func (n *NetnsTUN) Address() netip.Prefix { return n.addr }

// PeerAddress returns the kernel's address and prefix.
func (n *NetnsTUN) PeerAddress() netip.Prefix { return n.peer }

// Close closes the TUN device, which removes its interface, then removes the
// namespace if OpenNetnsTUN created it.
// Calls after the first return its result again.
func (n *NetnsTUN) Close() error {
	n.closeOnce.Do(func() {
		n.closeErr = n.TUN.Close()
		if n.created {
			// A netproc that gave up its privileges once set up cannot
			// unmount the namespace (EPERM): it is left to the
			// supervisor, which removes it when the instance stops.
			if err := DeleteNamespace(n.namespace); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.EPERM) {
				n.closeErr = errors.Join(n.closeErr, fmt.Errorf("link: delete namespace %q: %w", n.namespace, err))
			}
		}
	})
	return n.closeErr
}

var _ Device = (*NetnsTUN)(nil)
