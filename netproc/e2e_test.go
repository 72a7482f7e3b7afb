package netproc_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// End-to-end tests: the saturn binary, an instance in a temporary state
// directory driven through the CLI, and examples/echo as the app.

func TestMain(m *testing.M) { testkit.Main(m) }

const kernelConfig = "[netproc]\nbackend = \"kernel\"\n"

// startEcho starts an instance and examples/echo under it, listening on a
// loopback port, and waits until it answers.
func startEcho(t *testing.T, config string) (*testkit.Instance, string) {
	t.Helper()
	in := testkit.NewInstance(t, config)
	echo := testkit.Build(t, "./examples/echo")
	in.Start()
	addr := testkit.FreeLoopback(t)
	in.MustRun("attach", "--name", "echo", "--restart", "always", "--", echo, "--listen", addr)
	var err error
	if !testkit.Until(10*time.Second, func() bool { err = echoOnce(addr, "hello"); return err == nil }) {
		t.Fatalf("echo does not answer on %s: %v", addr, err)
	}
	return in, addr
}

// echoOnce connects, sends msg and reads it back.
func echoOnce(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	return echoOver(c, msg)
}

// echoClients runs four clients, each echoing a message of its own on a new
// connection to addr again and again, and hands every outcome to count
// (called from the four at once), until stop, which waits for them.
func echoClients(addr string, count func(err error)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				count(echoOnce(addr, fmt.Sprintf("client %d message %d", w, i)))
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

// TestKernelBackend runs examples/echo under an instance with the kernel
// backend and checks, in turn on the same instance: what status shows,
// that killing the app closes its connections at once, that its listener
// survives its restarts without refusing a connection, and that it rides
// out a restart of netproc.
func TestKernelBackend(t *testing.T) {
	in, addr := startEcho(t, kernelConfig)
	c := testkit.Component(in.Status(), "netproc")
	if c.Info["backend"] != "kernel" || c.Info["chosen"] != "" {
		t.Errorf("netproc reports %v", c.Info)
	}
	if _, ok := c.Info["netns"]; ok {
		t.Errorf("the kernel backend reports a netns: %v", c.Info)
	}
	t.Run("AppKillClosesItsConnections", func(t *testing.T) { appKillClosesItsConnections(t, in, addr) })
	t.Run("ListenerSurvivesAppRestart", func(t *testing.T) { listenerSurvivesAppRestart(t, in, addr) })
	t.Run("NetprocRestart", func(t *testing.T) { netprocRestart(t, in, addr) })
	t.Run("EventStyleExample", func(t *testing.T) {
		events := testkit.Build(t, "./examples/echo-events")
		evAddr := testkit.FreeLoopback(t)
		in.MustRun("attach", "--name", "echo-events", "--", events, "--listen", evAddr)
		waitEcho(t, evAddr)
		for i := range 20 {
			if err := echoOnce(evAddr, strings.Repeat(fmt.Sprint(i), 1000*i)); err != nil {
				t.Fatalf("echo-events, message %d: %v", i, err)
			}
		}
	})
}

// TestListenerSurvivesAppRestart connects in a tight loop, from several
// clients, while the echo app is killed and restarted by its policy,
// several times: no connection is refused, because netproc keeps the
// listener and its queue while no incarnation runs, and the next one
// adopts it. Connections the dying incarnation had accepted die with it
// (the client sees a reset or an early end); they are counted, not failed.
func listenerSurvivesAppRestart(t *testing.T, in *testkit.Instance, addr string) {
	var ok, refused, lost atomic.Int64
	var firstRefusal atomic.Value
	stop := echoClients(addr, func(err error) {
		switch {
		case err == nil:
			ok.Add(1)
		case errors.Is(err, syscall.ECONNREFUSED):
			refused.Add(1)
			firstRefusal.CompareAndSwap(nil, err.Error())
		default:
			lost.Add(1)
		}
	})
	for round := 1; round <= 2; round++ {
		// The clients get through before the kill.
		start := ok.Load()
		testkit.Until(10*time.Second, func() bool { return ok.Load() >= start+10 })
		before := ok.Load()
		pid := testkit.Component(in.Status(), "echo").PID
		in.MustRun("kill", "echo")
		if st, up := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
			c := testkit.Component(st, "echo")
			return c.State == proto.StateRunning && c.PID != pid && c.PID != 0
		}); !up {
			t.Fatalf("echo not restarted: %+v", testkit.Component(st, "echo"))
		}
		// The clients get through again after the restart.
		testkit.Until(10*time.Second, func() bool { return ok.Load() >= before+10 })
	}
	stop()
	t.Logf("%d echoes, %d refused, %d lost with a dying incarnation", ok.Load(), refused.Load(), lost.Load())
	if refused.Load() > 0 {
		t.Errorf("%d connections refused during app restarts (first: %v)", refused.Load(), firstRefusal.Load())
	}
	if ok.Load() < 30 {
		t.Errorf("only %d echoes", ok.Load())
	}
	if t.Failed() {
		t.Logf("netproc:\n%s", in.MustRun("logs", "netproc", "-n", "0"))
		t.Logf("status: %+v", testkit.Component(in.Status(), "echo"))
	}
	if logs := in.MustRun("logs", "echo", "-n", "0"); strings.Count(logs, "adopted from the previous incarnation") < 3 {
		t.Errorf("the echo app's incarnations did not all adopt the listener:\n%s", logs)
	}
}

// TestAppKillClosesItsConnections: when an app is killed, netproc closes
// its connections at once; the peer sees the end well within a second.
func appKillClosesItsConnections(t *testing.T, in *testkit.Instance, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	c.Read(make([]byte, 1)) // the app holds the connection now
	in.MustRun("kill", "echo")
	killed := time.Now()
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err = c.Read(make([]byte, 1))
	if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the peer of a killed app's connection read: %v", err)
	}
	t.Logf("connection closed %v after the kill", time.Since(killed).Round(time.Millisecond))
	waitEcho(t, addr) // back, with the listener adopted
}

// waitEcho waits until the echo app answers on addr.
func waitEcho(t *testing.T, addr string) {
	t.Helper()
	var err error
	if !testkit.Until(10*time.Second, func() bool { err = echoOnce(addr, "are you there"); return err == nil }) {
		t.Fatalf("echo unreachable on %s: %v", addr, err)
	}
}

// TestNetprocRestart: when netproc is killed, its sockets outlive it
// (kernel backend: the supervisor holds them, see e2e_kernel_keep_test.go):
// the app's connection goes on, and so does its listener.
func netprocRestart(t *testing.T, in *testkit.Instance, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echoOver(c, "x"); err != nil {
		t.Fatal(err)
	}
	in.MustRun("kill", "netproc")
	if err := echoOver(c, "y"); err != nil {
		t.Fatalf("the connection did not outlive netproc: %v", err)
	}
	restarts := testkit.Component(in.Status(), "echo").Restarts
	waitEcho(t, addr)
	if c := testkit.Component(in.Status(), "echo"); c.Restarts != restarts {
		t.Errorf("the app restarted instead of riding out netproc's restart: %+v", c)
	}
}
