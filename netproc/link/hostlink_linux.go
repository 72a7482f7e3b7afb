package link

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A namespace's TUN device is out of the host's reach: its kernel side is
// inside the namespace, so the host has no route to saturn's address and
// a user on the host had to go through `ip netns exec`. A host link joins
// the two: a veth pair, one end in the host namespace and one in saturn's,
// a /30 of link-local addresses (169.254.0.0/16, never routed off the
// host) on the two ends, forwarding on in saturn's namespace, and a route
// on the host that sends saturn's prefix through the pair. The host then
// reaches saturn's address as any address of a local network; saturn's
// replies go down the TUN device to the namespace's kernel, which
// forwards them back through the pair.
//
// The pair lives as long as the namespace (the end inside goes with it,
// and takes its peer along), so a restarted netproc finds it and reuses
// it; it needs no privilege after it is made.

// HostLinkNSName is the name of the pair's end inside the namespace.
const HostLinkNSName = "host0"

// HostLink is a namespace's link to the host.
type HostLink struct {
	// HostName is the pair's end on the host: "sat" and 8 hex digits
	// of a hash of the namespace's name.
	HostName string
	// HostAddr and NSAddr are the two ends' addresses (a /30).
	HostAddr, NSAddr netip.Prefix
	// Routed is the prefix the host routes through the pair; zero when
	// the host already routed it elsewhere (RouteErr says so): saturn
	// then never takes over a route it did not make.
	Routed   netip.Prefix
	RouteErr error
}

// String is how status shows it.
func (h *HostLink) String() string {
	if !h.Routed.IsValid() {
		return fmt.Sprintf("%s %v (no route: %v)", h.HostName, h.HostAddr, h.RouteErr)
	}
	return fmt.Sprintf("%v via %s", h.Routed, h.HostName)
}

// hostLinkSlots is how many /30s there are in 169.254.1.0 to
// 169.254.254.255 (RFC 3927 keeps the first and last /24 apart).
const hostLinkSlots = 254 * 64

// hostLinkName is the pair's end on the host, from a hash of the
// namespace's name, so that every start of the same instance finds it.
func hostLinkName(namespace string) (string, uint32) {
	h := fnv.New32a()
	h.Write([]byte(namespace))
	sum := h.Sum32()
	return fmt.Sprintf("sat%08x", sum), sum
}

// hostLinkSlot is the /30 numbered slot: the host's end and the
// namespace's.
func hostLinkSlot(slot uint32) (host, ns netip.Prefix) {
	slot %= hostLinkSlots
	third, fourth := byte(1+slot/64), byte(slot%64*4)
	host = netip.PrefixFrom(netip.AddrFrom4([4]byte{169, 254, third, fourth + 1}), 30)
	ns = netip.PrefixFrom(netip.AddrFrom4([4]byte{169, 254, third, fourth + 2}), 30)
	return host, ns
}

// pickHostLinkAddrs finds the /30 for a new pair: the slot the hash names,
// or the next one that no address of the host falls in (another instance's
// pair, or a network of the host's own).
func pickHostLinkAddrs(sum uint32) (host, ns netip.Prefix, err error) {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, unix.AF_INET) })
	if err != nil {
		return host, ns, fmt.Errorf("link: list the host's addresses: %w", err)
	}
	for i := range uint32(hostLinkSlots) {
		host, ns = hostLinkSlot(sum + i)
		taken := false
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP.To4())
			if ok && host.Masked().Contains(ip) {
				taken = true
				break
			}
		}
		if !taken {
			return host, ns, nil
		}
	}
	return host, ns, errors.New("link: no free /30 in 169.254.1.0/16 for the host link")
}

// pairAddrs reads the addresses an existing pair has on its two ends.
func pairAddrs(host netlink.Link, h *netlink.Handle, peer netlink.Link) (hostAddr, nsAddr netip.Prefix, ok bool) {
	get := func(list func(netlink.Link, int) ([]netlink.Addr, error), l netlink.Link) (netip.Prefix, bool) {
		as, err := list(l, unix.AF_INET)
		if err != nil || len(as) == 0 {
			return netip.Prefix{}, false
		}
		ip, ok := netip.AddrFromSlice(as[0].IP.To4())
		ones, _ := as[0].Mask.Size()
		return netip.PrefixFrom(ip, ones), ok
	}
	hostAddr, ok1 := get(netlink.AddrList, host)
	nsAddr, ok2 := get(h.AddrList, peer)
	return hostAddr, nsAddr, ok1 && ok2
}

// EnsureHostLink makes (or finds) the host link of the named namespace
// and routes prefix from the host through it. Run it from the host's
// namespace, as root. A host route that already exists for prefix through
// another device is left alone: the link is made, the route is not, and
// RouteErr says why.
func EnsureHostLink(namespace string, prefix netip.Prefix) (*HostLink, error) {
	name, sum := hostLinkName(namespace)
	hl := &HostLink{HostName: name}
	ns, err := netns.GetFromName(namespace)
	if err != nil {
		return nil, fmt.Errorf("link: open namespace %q: %w", namespace, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("link: netlink in namespace %q: %w", namespace, err)
	}
	defer h.Close()

	var hostAddr, nsAddr netip.Prefix
	host, err := netlink.LinkByName(name)
	if err == nil {
		// A pair from an earlier start: ours only if its peer is in the
		// namespace; it keeps its addresses.
		peer, perr := h.LinkByName(HostLinkNSName)
		if perr != nil {
			return nil, fmt.Errorf("link: %s exists on the host but %s is not in namespace %q: remove it (ip link del %s)", name, HostLinkNSName, namespace, name)
		}
		var ok bool
		if hostAddr, nsAddr, ok = pairAddrs(host, h, peer); !ok {
			if hostAddr, nsAddr, err = pickHostLinkAddrs(sum); err != nil {
				return nil, err
			}
		}
	} else {
		if hostAddr, nsAddr, err = pickHostLinkAddrs(sum); err != nil {
			return nil, err
		}
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: name},
			PeerName:      HostLinkNSName,
			PeerNamespace: netlink.NsFd(int(ns)),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return nil, fmt.Errorf("link: create the host link %s: %w", name, err)
		}
		if host, err = netlink.LinkByName(name); err != nil {
			return nil, fmt.Errorf("link: find %s: %w", name, err)
		}
	}
	hl.HostAddr, hl.NSAddr = hostAddr, nsAddr
	if err := addAddr(netlink.AddrAdd, host, hostAddr); err != nil {
		return nil, fmt.Errorf("link: address %v on %s: %w", hostAddr, name, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return nil, fmt.Errorf("link: bring %s up: %w", name, err)
	}
	peer, err := h.LinkByName(HostLinkNSName)
	if err != nil {
		return nil, fmt.Errorf("link: find %s in namespace %q: %w", HostLinkNSName, namespace, err)
	}
	if err := addAddr(h.AddrAdd, peer, nsAddr); err != nil {
		return nil, fmt.Errorf("link: address %v on %s in %q: %w", nsAddr, HostLinkNSName, namespace, err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		return nil, fmt.Errorf("link: bring %s up in %q: %w", HostLinkNSName, namespace, err)
	}
	// The namespace forwards between the pair and the TUN device.
	if err := inNamespace(ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}); err != nil {
		return nil, fmt.Errorf("link: forwarding in namespace %q: %w", namespace, err)
	}
	hl.Routed, hl.RouteErr = routeFromHost(host, prefix.Masked(), nsAddr.Addr())
	return hl, nil
}

func addAddr(add func(netlink.Link, *netlink.Addr) error, l netlink.Link, p netip.Prefix) error {
	err := add(l, &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}})
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

// routeFromHost routes prefix through gw on link host, unless the host
// routes exactly that prefix elsewhere already.
func routeFromHost(host netlink.Link, prefix netip.Prefix, gw netip.Addr) (netip.Prefix, error) {
	dst := &net.IPNet{IP: prefix.Addr().AsSlice(), Mask: net.CIDRMask(prefix.Bits(), 32)}
	err := netlink.RouteAdd(&netlink.Route{LinkIndex: host.Attrs().Index, Dst: dst, Gw: gw.AsSlice()})
	if err == nil {
		return prefix, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return netip.Prefix{}, fmt.Errorf("route %v via %s: %w", prefix, host.Attrs().Name, err)
	}
	routes, lerr := retryDump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Dst: dst}, netlink.RT_FILTER_DST)
	})
	if lerr != nil {
		return netip.Prefix{}, fmt.Errorf("route %v: %w", prefix, lerr)
	}
	for _, r := range routes {
		if r.LinkIndex == host.Attrs().Index {
			return prefix, nil // ours, from an earlier start
		}
	}
	return netip.Prefix{}, fmt.Errorf("the host already routes %v elsewhere; saturn leaves that route alone", prefix)
}

// retryDump runs a netlink dump again while the kernel says it was
// interrupted (the table changed meanwhile: on a busy host, other
// instances' links come and go).
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	for range 10 {
		out, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return dump()
}

// DialInNamespace returns a dialer whose sockets are made inside the named
// namespace: a thread joins the namespace once (which needs privilege) and
// stays there for the life of the process, making each socket; the socket
// keeps its namespace wherever it is used afterwards. For netproc's
// published ports, which accept on the host and connect to saturn's
// address inside the namespace. stop ends the thread; dial must not be
// called after it.
func DialInNamespace(namespace string) (dial func(addr netip.AddrPort) (*net.TCPConn, error), stop func(), err error) {
	ns, err := netns.GetFromName(namespace)
	if err != nil {
		return nil, nil, fmt.Errorf("link: open namespace %q: %w", namespace, err)
	}
	type req struct {
		addr  netip.AddrPort
		reply chan dialResult
	}
	reqs := make(chan req)
	ready := make(chan error, 1)
	go func() {
		defer ns.Close()
		// The thread stays in the namespace until stop, then goes back
		// (as onThread's do); the namespace cannot be entered again
		// once netproc has given up its privileges.
		leave, err := lockThread()
		if err != nil {
			ready <- err
			return
		}
		defer leave()
		if err := netns.Set(ns); err != nil {
			ready <- os.NewSyscallError("setns", err)
			return
		}
		ready <- nil
		d := net.Dialer{Timeout: 2 * time.Second}
		for r := range reqs {
			// The socket is made here, on this thread; a dial to a
			// single address makes it on the calling goroutine.
			c, err := d.Dial("tcp4", r.addr.String())
			if err != nil {
				r.reply <- dialResult{nil, err}
				continue
			}
			r.reply <- dialResult{c.(*net.TCPConn), nil}
		}
	}()
	if err := <-ready; err != nil {
		return nil, nil, err
	}
	dial = func(addr netip.AddrPort) (*net.TCPConn, error) {
		reply := make(chan dialResult, 1)
		reqs <- req{addr, reply}
		r := <-reply
		return r.c, r.err
	}
	return dial, func() { close(reqs) }, nil
}

type dialResult struct {
	c   *net.TCPConn
	err error
}
