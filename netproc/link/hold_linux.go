package link

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// HoldName is the hold device's name inside saturn's namespace.
const HoldName = "saturn-hold"

// holdMetric is the hold route's metric: above the TUN device's prefix
// route (metric 0), which wins whenever it is there.
const holdMetric = 4242

// EnsureHold gives saturn's namespace a route to saturn's prefix that
// outlives the TUN device, so that while netproc is dead (its TUN device
// and the device's route gone with it) the kernel there still routes
// saturn's address: what it sends is dropped, silently, and its TCP
// retransmits it to the next incarnation, rather than failing a connect at
// once with "network unreachable" (or, forwarding for the host, answering
// the host with an ICMP error that fails its connect).
//
// The route goes through one end of a veth pair whose other end stays
// down (no carrier: everything sent is dropped), with ARP off (so that no
// neighbour resolution fails and reports the destination unreachable), the
// peer's address (/32) on it as the source of connections made meanwhile,
// and a metric above the TUN device's route. A veth rather than a dummy
// device, which not every kernel builds. It is idempotent: a later netproc
// finds it in place. It goes with the namespace; in a namespace saturn did
// not create, it stays (ip link del saturn-hold removes it).
func EnsureHold(namespace string, saturn netip.Prefix, peer netip.Addr) error {
	ns, err := netns.GetFromName(namespace)
	if err != nil {
		return fmt.Errorf("link: open namespace %q: %w", namespace, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("link: netlink in namespace %q: %w", namespace, err)
	}
	defer h.Close()
	l, err := h.LinkByName(HoldName)
	if err != nil {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: HoldName}, PeerName: HoldName + "p"}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("link: add %s in %q: %w", HoldName, namespace, err)
		}
		if l, err = h.LinkByName(HoldName); err != nil {
			return fmt.Errorf("link: find %s in %q: %w", HoldName, namespace, err)
		}
		disableIPv6(ns, HoldName)
	}
	if err := h.LinkSetARPOff(l); err != nil {
		return fmt.Errorf("link: ARP off on %s: %w", HoldName, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("link: bring %s up: %w", HoldName, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: peer.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := h.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("link: address %v on %s: %w", peer, HoldName, err)
	}
	m := saturn.Masked()
	route := &netlink.Route{
		LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: m.Addr().AsSlice(), Mask: net.CIDRMask(m.Bits(), 32)},
		Src: peer.AsSlice(), Priority: holdMetric, Scope: netlink.SCOPE_LINK,
	}
	if err := h.RouteReplace(route); err != nil {
		return fmt.Errorf("link: hold route %v on %s: %w", m, HoldName, err)
	}
	return nil
}
