package link_test

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"saturn/internal/testkit"
	"saturn/netproc/link"
)

// testNamespace makes a network namespace for the test, deleted when the
// test ends, and returns its name and the test prefix that goes with it.
func testNamespace(t *testing.T) (string, netip.Prefix) {
	t.Helper()
	testkit.NeedTUN(t)
	ns, prefix := testkit.TestNet()
	if _, err := link.EnsureNamespace(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.DeleteNamespace(ns) })
	return ns, prefix
}

// TestHostLink: the host reaches a namespace's prefix through the pair
// EnsureHostLink makes; a second call (a restarted netproc) finds the same
// pair and addresses; a route the host already has elsewhere is left
// alone; deleting the namespace takes the pair and the route along; and
// DialInNamespace's sockets are the namespace's.
func TestHostLink(t *testing.T) {
	ns, prefix := testNamespace(t)

	hl, err := link.EnsureHostLink(ns, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("host link: %s, %v <-> %v", hl, hl.HostAddr, hl.NSAddr)
	if hl.RouteErr != nil || hl.Routed != prefix.Masked() {
		t.Fatalf("routed %v (%v), want %v", hl.Routed, hl.RouteErr, prefix.Masked())
	}
	for _, a := range []netip.Prefix{hl.HostAddr, hl.NSAddr} {
		b := a.Addr().As4()
		if b[0] != 169 || b[1] != 254 || b[2] == 0 || b[2] == 255 || a.Bits() != 30 {
			t.Errorf("address %v: want a /30 in 169.254.1.0-169.254.254.255", a)
		}
	}
	// The host's route to saturn's address leads into the pair.
	routes, err := netlink.RouteGet(prefix.Addr().AsSlice())
	if err != nil || len(routes) == 0 {
		t.Fatalf("route to %v: %v", prefix.Addr(), err)
	}
	host, err := netlink.LinkByName(hl.HostName)
	if err != nil {
		t.Fatal(err)
	}
	if routes[0].LinkIndex != host.Attrs().Index || routes[0].Gw.String() != hl.NSAddr.Addr().String() {
		t.Errorf("the host routes %v by link %d via %v, want %s via %v", prefix.Addr(), routes[0].LinkIndex, routes[0].Gw, hl.HostName, hl.NSAddr.Addr())
	}
	// Forwarding is on in the namespace (its sysctl, read from inside).
	var fwd []byte
	link.InNamespace(ns, func() error {
		fwd, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		return err
	})
	if strings.TrimSpace(string(fwd)) != "1" {
		t.Errorf("ip_forward in the namespace is %q", fwd)
	}

	again, err := link.EnsureHostLink(ns, prefix)
	if err != nil {
		t.Fatalf("second call: %v", err)
	}
	if again.HostName != hl.HostName || again.HostAddr != hl.HostAddr || again.NSAddr != hl.NSAddr || again.Routed != hl.Routed {
		t.Errorf("second call found %+v, first made %+v", again, hl)
	}

	// DialInNamespace: a listener on the namespace's loopback answers;
	// the host's loopback has nothing on that port.
	var l net.Listener
	if err := link.InNamespace(ns, func() error {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			netlink.LinkSetUp(lo)
		}
		l, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("inside"))
			c.Close()
		}
	}()
	dial, stop, err := link.DialInNamespace(ns)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dial(netip.MustParseAddrPort(l.Addr().String()))
	if err != nil {
		t.Fatalf("dial in the namespace: %v", err)
	}
	buf := make([]byte, 6)
	if _, err := c.Read(buf); err != nil || string(buf) != "inside" {
		t.Errorf("read %q, %v", buf, err)
	}
	c.Close()
	stop()
	l.Close() // a socket holds its namespace

	// Deleting the namespace takes the pair along (its end inside goes
	// with the namespace, once nothing holds it), and the route with it.
	if err := link.DeleteNamespace(ns); err != nil {
		t.Fatal(err)
	}
	if !testkit.Until(10*time.Second, func() bool {
		_, err := netlink.LinkByName(hl.HostName)
		return err != nil
	}) {
		t.Fatalf("%s outlived its namespace", hl.HostName)
	}
	if routes, err := netlink.RouteGet(prefix.Addr().AsSlice()); err == nil && len(routes) > 0 && routes[0].LinkIndex == host.Attrs().Index {
		t.Errorf("the route to %v outlived the pair", prefix.Addr())
	}
}

// TestHostLinkLeavesOthersRoutes: a prefix the host already routes through
// another device keeps its route.
func TestHostLinkLeavesOthersRoutes(t *testing.T) {
	ns, prefix := testNamespace(t)
	// Someone else's route for the prefix: through a veth pair of this
	// test's, both ends on the host.
	suffix := ns[strings.LastIndexByte(ns, '-')+1:]
	other := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "sato" + suffix}, PeerName: "satp" + suffix}
	if err := netlink.LinkAdd(other); err != nil {
		t.Fatal(err)
	}
	defer netlink.LinkDel(other)
	d, err := netlink.LinkByName(other.Name)
	if err != nil {
		t.Fatal(err)
	}
	netlink.LinkSetUp(d)
	p := prefix.Masked()
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: d.Attrs().Index, Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}, Scope: unix.RT_SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	hl, err := link.EnsureHostLink(ns, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if l, err := netlink.LinkByName(hl.HostName); err == nil {
			netlink.LinkDel(l)
		}
	}()
	if hl.Routed.IsValid() || hl.RouteErr == nil || !strings.Contains(hl.String(), "no route") {
		t.Errorf("took over another device's route: %s", hl)
	}
	routes, err := netlink.RouteGet(prefix.Addr().AsSlice())
	if err != nil || len(routes) == 0 || routes[0].LinkIndex != d.Attrs().Index {
		t.Errorf("the dummy's route is gone: %+v %v", routes, err)
	}
}
