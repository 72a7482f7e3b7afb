package testkit

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"saturn/netproc/link"
)

// NeedTUN skips t unless saturn's usertcp backend can run here (NoTUN).
func NeedTUN(t testing.TB) {
	t.Helper()
	if why := NoTUN(); why != "" {
		t.Skip(why)
	}
}

var netCounter atomic.Int32

// TestNet returns a network namespace name and a /24 with saturn's
// address in it (.2), unique to this call in this test process, and
// unlikely to meet those of test processes running beside it: the name
// holds the process ID, the prefix is 10.(100+PID%100).N.2/24. The name
// fits the 31 bytes that netproc's persistent memory records.
func TestNet() (string, netip.Prefix) {
	n := int(netCounter.Add(1))
	pid := os.Getpid()
	ns := fmt.Sprintf("saturn-test-%d-%d", pid, n)
	return ns, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + pid%100), byte(n), 2}), 24)
}

// InstanceNamespace names the network namespace an instance's netproc is
// to create (netproc.netns): tag and this process's ID, within the 15
// characters the config takes. One of that name that a crashed run of a
// process with the same ID left behind is removed first. tag is the
// test's own, so that tests running beside each other do not share one.
func InstanceNamespace(t testing.TB, tag string) string {
	t.Helper()
	ns := fmt.Sprintf("%s%d", tag, os.Getpid()%100000)
	if len(ns) > 15 {
		t.Fatalf("namespace name %q is longer than the 15 characters netproc.netns takes: shorten the tag %q", ns, tag)
	}
	RemoveNamespace(ns)
	return ns
}

// DialInNamespace connects to addr (TCP) from inside the named namespace,
// giving up after timeout.
func DialInNamespace(ns, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := link.InNamespace(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	return c, err
}

// ListenInNamespace listens on addr (TCP) inside the named namespace.
func ListenInNamespace(ns, addr string) (net.Listener, error) {
	var ln net.Listener
	err := link.InNamespace(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// NamespaceExists reports whether the named network namespace is there, as
// netproc checks it (link.NamespaceExists: a namespace mounted at
// /run/netns/NAME).
func NamespaceExists(ns string) bool {
	ok, _ := link.NamespaceExists(ns)
	return ok
}

// RemoveNamespace removes the named namespace, or what is left of it in
// /run/netns, if it is there: one a crashed run of the test left, before
// the test makes its own.
func RemoveNamespace(ns string) {
	exec.Command("ip", "netns", "delete", ns).Run() // fails when there is none
}

// NoNamespaceLeft fails t if the named namespace is still there once its
// instance has stopped, and removes it.
func NoNamespaceLeft(t testing.TB, ns string) {
	t.Helper()
	if NamespaceExists(ns) {
		t.Errorf("namespace %s outlived its instance", ns)
		RemoveNamespace(ns)
	}
}

// TUN is a TUN device as netlink lists it.
type TUN struct {
	// Persistent: TUNSETPERSIST, it outlives every descriptor on it, so
	// nothing would ever remove it. One that is not goes when the last
	// descriptor on it closes: a dead netproc's is gone with the process.
	Persistent bool
	Addrs      []string // its IPv4 addresses, "10.1.2.3/24"
}

// TUNDevices lists the TUN devices of namespace ns ("" for this process's
// own) by name.
func TUNDevices(ns string) (map[string]TUN, error) {
	h := &netlink.Handle{} // the zero handle works in the caller's namespace
	if ns != "" {
		nsh, err := netns.GetFromName(ns)
		if err != nil {
			return nil, err
		}
		defer nsh.Close()
		if h, err = netlink.NewHandleAt(nsh); err != nil {
			return nil, err
		}
		defer h.Close()
	}
	links, err := h.LinkList()
	// Interrupted: the host's links changed during the dump (other
	// tests' come and go); ask again.
	for i := 0; i < 10 && errors.Is(err, netlink.ErrDumpInterrupted); i++ {
		links, err = h.LinkList()
	}
	if err != nil {
		return nil, err
	}
	out := map[string]TUN{}
	for _, l := range links {
		tt, ok := l.(*netlink.Tuntap)
		if !ok {
			continue
		}
		tun := TUN{Persistent: !tt.NonPersist}
		addrs, _ := h.AddrList(l, netlink.FAMILY_V4) // none if it went meanwhile
		for _, a := range addrs {
			tun.Addrs = append(tun.Addrs, a.IPNet.String())
		}
		out[tt.Name] = tun
	}
	return out, nil
}
