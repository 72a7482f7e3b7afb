package usertcp_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"saturn/appproc"
	"saturn/netproc"
	"saturn/netproc/netproctest"
	"saturn/netproc/usertcp"
	"saturn/proto"
)

// needTUN skips a test that needs root and /dev/net/tun.
func needTUN(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it creates a TUN device and a network namespace")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no TUN device here: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip to run programs in the namespace")
	}
}

var nsCounter atomic.Int32

// testNet returns a unique namespace name (saturn-test-PID-N) and a /24 for
// saturn's address in it, so that tests in parallel processes never meet.
func testNet() (string, netip.Prefix) {
	n := nsCounter.Add(1)
	pid := os.Getpid()
	ns := fmt.Sprintf("saturn-test-%d-%d", pid, n)
	return ns, netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.2/24", 160+pid%60, n%250))
}

// stackEnv is a netproc running in the test process on the usertcp backend
// over a TUN device in a namespace of its own, and an app attached to it.
type stackEnv struct {
	t     testing.TB
	NS    string
	Addr  netip.Addr // saturn's
	Peer  netip.Addr // the kernel's, in the namespace
	Stack *usertcp.Stack
	Srv   *netproctest.Server
	App   *appproc.App
}

// startStack starts netproc with the usertcp backend configured by cfg
// (its namespace and address are chosen here) and attaches an app. All is
// torn down when the test ends, the namespace included.
func startStack(t testing.TB, cfg usertcp.Config) *stackEnv {
	t.Helper()
	needTUN(t)
	ns, pfx := testNet()
	cfg.Namespace, cfg.Address = ns, pfx
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 4096
	}
	st, err := usertcp.New(cfg)
	if err != nil {
		t.Fatalf("usertcp: %v", err)
	}
	srv := netproctest.Start(t, netproc.Options{Backend: st, Permit: func(proto.Op, netip.AddrPort) error { return nil }})
	desc, files := srv.Channel(t, "app", netproctest.Geometry)
	ch, err := appproc.OpenChannel(desc, files)
	if err != nil {
		t.Fatal(err)
	}
	app := appproc.NewApp("app", ch)
	t.Cleanup(func() { app.Close() })
	info := st.Info()
	e := &stackEnv{t: t, NS: ns, Addr: pfx.Addr(), Peer: netip.MustParseAddr(info["peer"]), Stack: st, Srv: srv, App: app}
	t.Logf("namespace %s, saturn %s, kernel %s, link %s", ns, pfx, e.Peer, info["link"])
	return e
}

// Counters reads the stack's counters on the loop.
func (e *stackEnv) Counters() map[string]uint64 {
	var m map[string]uint64
	e.Srv.Do(func() { m = e.Stack.Counters() })
	return m
}

// inNS runs fn on a thread that joined the namespace; the thread is
// discarded afterwards.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		h, err := netns.GetFromName(ns)
		if err == nil {
			err = netns.Set(h)
			h.Close()
		}
		if err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Dial connects from inside the namespace (the kernel's TCP).
func (e *stackEnv) Dial(addr string) (net.Conn, error) {
	var c net.Conn
	err := inNS(e.NS, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 10*time.Second)
		return err
	})
	return c, err
}

// Listen listens inside the namespace (the kernel's TCP).
func (e *stackEnv) Listen(addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNS(e.NS, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// Exec runs a command in the namespace and returns its output.
func (e *stackEnv) Exec(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.NS, name}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// AddrPort is saturn's address with port.
func (e *stackEnv) AddrPort(port uint16) string {
	return netip.AddrPortFrom(e.Addr, port).String()
}
