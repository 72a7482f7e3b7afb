package netproc_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// echoOver sends msg on c and reads it back.
func echoOver(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(got) != msg {
		return fmt.Errorf("echoed %q, sent %q", got, msg)
	}
	return nil
}

// waitEchoNS waits until the echo app answers a new connection from ns.
func waitEchoNS(t *testing.T, ns, addr string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	if !testkit.Until(within, func() bool {
		var c net.Conn
		if c, err = testkit.DialInNamespace(ns, addr, 5*time.Second); err == nil {
			err = echoOver(c, "are you there")
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("echo unreachable on %s from %s: %v", addr, ns, err)
	}
	return time.Since(start)
}

// TestUserTCPNetprocDeath holds the usertcp backend with resume off
// (`resume = false`) to what docs/restart.md promises when netproc dies,
// with examples/echo as the app and the kernel
// in saturn's namespace as its peer:
//
//   - the app is told at once: its calls on the connections it held fail
//     with ECONNRESET (echo logs the reset), none hangs;
//   - the peers of those connections get a RST from the next incarnation
//     (recover.go), an idle one included, rather than waiting forever;
//   - the listener is listening again under the next incarnation without
//     the app calling Listen (echo neither restarts nor listens again), and
//     new connections are served;
//   - the namespace and a TUN device (one, with the peer's address) come
//     back, and status shows the same backend, namespace and address;
//   - the namespace, recorded in the connection table's header by the
//     first incarnation, is removed at stop by a later one.
func TestUserTCPNetprocDeath(t *testing.T) {
	testkit.NeedTUN(t)
	ns := testkit.InstanceNamespace(t, "sate2e")
	const prefix, peer = "10.96.0.2/24", "10.96.0.1/24"
	const addr = "10.96.0.2:7007"
	policy := "backoff = \"20ms\"\nmax_backoff = \"40ms\"\n"
	in := testkit.NewInstance(t, fmt.Sprintf("[netproc]\nbackend = \"usertcp\"\nnetns = %q\naddress = %q\nresume = false\n%s", ns, prefix, policy))
	echo := testkit.Build(t, "./examples/echo")
	in.Start()
	in.MustRun("attach", "--name", "echo", "--restart", "always", "--", echo, "--listen", ":7007")
	waitEchoNS(t, ns, addr, 10*time.Second)

	want := map[string]string{"backend": "usertcp", "netns": ns, "address": prefix}
	checkInfo := func(when string) {
		t.Helper()
		info := testkit.Component(in.Status(), "netproc").Info
		for k, v := range want {
			if info[k] != v {
				t.Errorf("%s: netproc's status shows %s=%q, want %q (%v)", when, k, info[k], v, info)
			}
		}
	}
	checkInfo("at start")

	// Two connections the app holds: one idle, one in the middle of a
	// stream of echoes.
	idle, err := testkit.DialInNamespace(ns, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := echoOver(idle, "hold me"); err != nil {
		t.Fatal(err)
	}
	busy, err := testkit.DialInNamespace(ns, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyErr := make(chan error, 1)
	var busyEchoes atomic.Int64
	go func() {
		chunk := []byte(strings.Repeat("0123456789abcdef", 4096))
		buf := make([]byte, len(chunk))
		for {
			busy.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := busy.Write(chunk); err != nil {
				busyErr <- err
				return
			}
			if _, err := io.ReadFull(busy, buf); err != nil {
				busyErr <- err
				return
			}
			busyEchoes.Add(1)
		}
	}()
	testkit.Eventually(t, 10*time.Second, func() bool { return busyEchoes.Load() >= 3 }, "the busy connection's first echoes")
	echoRestarts := testkit.Component(in.Status(), "echo").Restarts
	oldPID := testkit.Component(in.Status(), "netproc").PID

	// Timed from before the CLI, which takes a while to start and to exit
	// (much longer under the race detector): the times logged below are
	// upper bounds.
	killed := time.Now()
	in.MustRun("kill", "netproc")

	// The peers are reset, promptly: the idle one by the RST the next
	// incarnation sends for every connection an app held.
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = idle.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the idle connection's peer read %v after netproc died; want a reset", err)
	}
	t.Logf("idle connection reset %v after the kill", time.Since(killed).Round(time.Millisecond))
	select {
	case err := <-busyErr:
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Errorf("the busy connection's peer saw %v after netproc died; want a reset", err)
		}
		t.Logf("busy connection ended %v after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		t.Errorf("the busy connection's peer still runs 10 s after netproc died")
	}

	// Served again, by the same app incarnation, on the listener appproc
	// made again for it.
	st, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		c := testkit.Component(st, "netproc")
		return c.State == proto.StateRunning && c.Restarts == 1
	})
	if !ok {
		t.Fatalf("netproc not back: %+v", testkit.Component(st, "netproc"))
	}
	if pid := testkit.Component(st, "netproc").PID; pid == oldPID {
		t.Fatalf("netproc still has pid %d", pid)
	}
	waitEchoNS(t, ns, addr, 10*time.Second)
	t.Logf("serving new connections %v after the kill", time.Since(killed).Round(time.Millisecond))
	checkInfo("after the kill")
	if c := testkit.Component(in.Status(), "echo"); c.Restarts != echoRestarts || c.State != proto.StateRunning {
		t.Errorf("echo restarted instead of riding out netproc's death: %+v", c)
	}
	logs := in.MustRun("logs", "echo", "-n", "0")
	if n := strings.Count(logs, "listening on"); n != 1 {
		t.Errorf("echo listened %d times; appproc should have listened again for it:\n%s", n, logs)
	}
	if n := strings.Count(logs, "connection reset by peer"); n < 2 {
		t.Errorf("echo saw %d of its 2 connections fail with ECONNRESET:\n%s", n, logs)
	}

	// The namespace holds one TUN device, the new incarnation's, with the
	// kernel's side of the link addressed.
	tuns, err := testkit.TUNDevices(ns)
	if err != nil {
		t.Fatalf("TUN devices in %s: %v", ns, err)
	}
	if len(tuns) != 1 {
		t.Errorf("namespace %s holds TUN devices %v; want one", ns, tuns)
	}
	for name, tun := range tuns {
		if len(tun.Addrs) != 1 || tun.Addrs[0] != peer {
			t.Errorf("TUN device %s has addresses %v; want %s", name, tun.Addrs, peer)
		}
	}
	named := testkit.Component(in.Status(), "netproc").Info["tun"]
	if _, ok := tuns[named]; !ok {
		t.Errorf("status names TUN device %q; the namespace holds %v", named, tuns)
	}

	// A second death, then stop: the namespace the first incarnation
	// created goes with the instance.
	in.MustRun("kill", "netproc")
	if _, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		c := testkit.Component(st, "netproc")
		return c.State == proto.StateRunning && c.Restarts == 2
	}); !ok {
		t.Fatal("netproc not back after the second kill")
	}
	waitEchoNS(t, ns, addr, 10*time.Second)
	in.MustRun("supervisor", "stop")
	testkit.NoNamespaceLeft(t, ns)
}

// TestUserTCPStopWhileNetprocDown: an instance stopped while netproc is
// down (killed, and waiting out its back-off) still removes the namespace
// its first netproc created: no netproc is left to do it, so the
// supervisor does, from the record in netproc's persistent memory.
func TestUserTCPStopWhileNetprocDown(t *testing.T) {
	testkit.NeedTUN(t)
	ns := testkit.InstanceNamespace(t, "satdown")
	in := testkit.NewInstance(t, fmt.Sprintf("[netproc]\nbackend = \"usertcp\"\nnetns = %q\naddress = \"10.95.0.2/24\"\nbackoff = \"1m\"\n", ns))
	in.Start()
	if !testkit.NamespaceExists(ns) {
		t.Fatalf("no namespace %s while the instance runs", ns)
	}
	in.MustRun("kill", "netproc")
	if _, ok := in.WaitFor(5*time.Second, func(st *proto.StatusReply) bool {
		return testkit.Component(st, "netproc").State == proto.StateRestarting
	}); !ok {
		t.Fatal("netproc is not waiting to restart")
	}
	in.MustRun("supervisor", "stop")
	testkit.NoNamespaceLeft(t, ns)
}
