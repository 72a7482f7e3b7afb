package usertcp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"saturn/appproc"
	"saturn/internal/testkit"
	"saturn/netproc"
	"saturn/netproc/netproctest"
	"saturn/netproc/usertcp"
	"saturn/proto"
)

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
	testkit.NeedTUN(t)
	ns, pfx := testkit.TestNet()
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

// Dial connects from inside the namespace (the kernel's TCP).
func (e *stackEnv) Dial(addr string) (net.Conn, error) {
	return testkit.DialInNamespace(e.NS, addr, 10*time.Second)
}

// Listen listens inside the namespace (the kernel's TCP).
func (e *stackEnv) Listen(addr string) (net.Listener, error) {
	return testkit.ListenInNamespace(e.NS, addr)
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

// serve accepts connections on ln until it closes, and runs handle on each
// in a goroutine of its own, closing the connection after.
func serve(ln net.Listener, handle func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

// acceptOne accepts one connection on ln, in the background: nil if the
// accept fails.
func acceptOne(ln net.Listener) <-chan net.Conn {
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	return acc
}

// echo sends back what c receives, until it ends.
func echo(c net.Conn) { io.Copy(c, c) }

// echoConn listens on port through the app, with backlog (0: the
// default), serves what comes with echo, and returns a client from the namespace connected to it; the
// listener and the client close when the test ends.
func (e *stackEnv) echoConn(t testing.TB, port uint16, backlog int) net.Conn {
	t.Helper()
	ln, err := e.App.ListenTCP("tcp", fmt.Sprintf(":%d", port), appproc.ListenOptions{Backlog: backlog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	serve(ln, echo)
	c, err := e.Dial(e.AddrPort(port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
