package netproc_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"saturn/internal/testkit"
)

// The kernel backend's sockets outlive netproc (netproc/kernel's
// resume.go, docs/restart.md): the supervisor holds each socket's
// descriptor and hands it back to the next incarnation. These kill netproc
// under traffic and check that neither side sees an error and every byte
// arrives once.

const keepConfig = kernelConfig + "backoff = \"20ms\"\nmax_backoff = \"40ms\"\n"

// TestKernelKeepEcho streams through examples/echo in both directions
// while netproc is killed twice, with an idle connection beside it: the
// bytes come back exactly, on the same connections, and echo never sees an
// error.
func TestKernelKeepEcho(t *testing.T) {
	in, addr := startEcho(t, keepConfig)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := echoOver(idle, "before"); err != nil {
		t.Fatal(err)
	}
	size := streamSize(16 << 20)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	echoThroughKills(t, in, c, size, 64<<10)
	if err := echoOver(idle, "after"); err != nil {
		t.Errorf("the idle connection after two kills: %v", err)
	}
	if logs := in.MustRun("logs", "echo", "-n", "0"); strings.Contains(logs, "reset") || strings.Count(logs, "listening on") != 1 {
		t.Errorf("echo saw the deaths:\n%s", logs)
	}
	checkResumed(t, in, 2)
}

// TestKernelKeepAccept kills netproc with clients connecting all along,
// and with an accept of echo's waiting: the listener is the same socket
// across the death, so clients that connect while netproc is down wait in
// its backlog and are served by the next incarnation; none is refused,
// and none reset but for the window of an accept (see below).
func TestKernelKeepAccept(t *testing.T) {
	in, addr := startEcho(t, keepConfig)
	var served atomic.Int64
	var mu sync.Mutex
	var fails []string
	stop := echoClients(addr, func(err error) {
		if err == nil {
			served.Add(1)
			return
		}
		mu.Lock()
		fails = append(fails, err.Error())
		mu.Unlock()
	})
	// Each kill lands on clients that are getting through, and they get
	// through again after the last.
	getThrough := func() {
		start := served.Load()
		testkit.Until(10*time.Second, func() bool { return served.Load() >= start+10 })
	}
	for kill := 1; kill <= 3; kill++ {
		getThrough()
		killNetproc(t, in, kill)
	}
	getThrough()
	stop()
	// The one loss docs/restart.md owns to: a connection netproc had
	// accepted in the microseconds before it put it in the store, which
	// the kernel resets as the process dies. At these rates (a connection
	// every half millisecond or so) a kill finds one about one run in five;
	// anything else, or more, is a failure.
	var resets int
	for _, f := range fails {
		if strings.Contains(f, "connection reset by peer") {
			resets++
		}
	}
	if len(fails) > resets || resets > 1 {
		t.Errorf("%d of %d connections failed across 3 kills of netproc (%d reset); first: %s", len(fails), len(fails)+int(served.Load()), resets, fails[0])
	} else if resets > 0 {
		t.Logf("a connection reset: a kill landed between an accept and its put in the store (%s)", fails[0])
	}
	t.Logf("%d connections served across 3 kills", served.Load())
	if logs := in.MustRun("logs", "echo", "-n", "0"); strings.Count(logs, "listening on") != 1 {
		t.Errorf("echo restarted:\n%s", logs)
	}
}

// TestKernelKeepStore checks the supervisor's side: it holds one
// descriptor per socket an app holds, hands them back across a kill and a
// graceful restart of netproc, lets go of each as it closes, and of every
// one when the instance stops.
func TestKernelKeepStore(t *testing.T) {
	in, addr := startEcho(t, keepConfig)
	pid := in.SupervisorPID()
	base := fdCount(t, pid)
	var conns []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := echoOver(c, "hi"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return fdCount(t, pid) == base+20 },
		"the supervisor holds %d TCP sockets, want %d (%d before, 20 connections)", fdCount(t, pid), base+20, base)
	killNetproc(t, in, 1)
	for i, c := range conns {
		if err := echoOver(c, "still"); err != nil {
			t.Fatalf("connection %d after the kill: %v", i, err)
		}
	}
	// A graceful restart (SIGTERM, as an upgrade's) leaves the sockets
	// where a kill does.
	in.MustRun("restart", "netproc")
	for i, c := range conns {
		if err := echoOver(c, "restarted"); err != nil {
			t.Fatalf("connection %d after a restart of netproc: %v", i, err)
		}
	}
	for _, c := range conns[:10] {
		c.Close()
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return fdCount(t, pid) == base+10 },
		"after 10 closes the supervisor holds %d TCP sockets, want %d", fdCount(t, pid), base+10)
	in.MustRun("supervisor", "stop")
	for i, c := range conns[10:] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
			t.Errorf("connection %d not ended by the instance's stop: %v", i, err)
		}
	}
}

// fdCount counts the TCP sockets among pid's descriptors (their inodes
// are in /proc/PID/net/tcp or tcp6), so that the control connections and
// files the supervisor opens meanwhile do not count.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	tcp := testkit.TCPInodes(pid)
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") && tcp[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] {
			n++
		}
	}
	return n
}
