package supervisor_test

import (
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// End-to-end tests: each builds the saturn binary, starts an instance in a
// temporary state directory, and drives it through the CLI only.

func TestMain(m *testing.M) { testkit.Main(m) }

// startInstance starts an instance of the default configuration.
func startInstance(t *testing.T) *testkit.Instance {
	t.Helper()
	in := testkit.NewInstance(t, "")
	in.Start()
	return in
}

// stillServing fails the test, saying why, unless the supervisor reports
// netproc and diskproc running within 10 s: what was done to it cost the
// instance nothing.
func stillServing(t *testing.T, in *testkit.Instance, why string) {
	t.Helper()
	if _, ok := in.WaitFor(10*time.Second, running("netproc", "diskproc")); !ok {
		t.Fatal(why)
	}
}

func running(names ...string) func(*proto.StatusReply) bool {
	return func(st *proto.StatusReply) bool {
		for _, n := range names {
			c := testkit.Component(st, n)
			if c == nil || c.State != proto.StateRunning || c.PID == 0 {
				return false
			}
		}
		return true
	}
}

func TestStartStatusKill(t *testing.T) {
	in := startInstance(t)
	st := in.Status()
	if st.Instance != in.Name {
		t.Fatalf("status names instance %q, want %q", st.Instance, in.Name)
	}
	for _, name := range []string{"netproc", "diskproc"} {
		c := testkit.Component(st, name)
		if c == nil || c.Kind != proto.KindServer || c.State != proto.StateRunning || c.PID == 0 || c.Restarts != 0 || c.LastExit != "-" {
			t.Fatalf("%s: %+v", name, c)
		}
		if c.Info["backend"] == "" {
			t.Errorf("%s reports no backend: %v", name, c.Info)
		}
	}
	old := testkit.Component(st, "netproc").PID
	killed := time.Now()
	in.MustRun("kill", "netproc")
	st, ok := in.WaitRestarted(10*time.Second, "netproc", old, 1)
	if !ok {
		t.Fatalf("netproc not back within 10 s of the kill: %+v", testkit.Component(st, "netproc"))
	}
	c := testkit.Component(st, "netproc")
	if c.LastExit != "signal KILL" {
		t.Errorf("last exit %q, want signal KILL", c.LastExit)
	}
	t.Logf("netproc back after %v with pid %d", time.Since(killed).Round(time.Millisecond), c.PID)
	// The table form says the same.
	out := in.MustRun("status")
	for _, want := range []string{"netproc", "diskproc", "running", "signal KILL"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
	// Other signals, and errors for bad requests.
	in.MustRun("kill", "diskproc", "--signal", "TERM")
	if _, ok := in.WaitRestarted(10*time.Second, "diskproc", 0, 1); !ok {
		t.Fatal("diskproc not back after SIGTERM")
	}
	if out, err := in.Run("kill", "nosuch"); err == nil || !strings.Contains(out, `no component called "nosuch"`) {
		t.Errorf("kill of an unknown component: %v %s", err, out)
	}
	if out, err := in.Run("kill", "netproc", "--signal", "BOGUS"); err == nil || !strings.Contains(out, "unknown signal") {
		t.Errorf("kill with a bad signal: %v %s", err, out)
	}
}

func TestIntensity(t *testing.T) {
	in := testkit.NewInstance(t, `
[netproc]
backend = "kernel"
restart = "always"
backoff = "10ms"
intensity = 2
period = "60s"
`)
	in.Start()
	for i := 1; i <= 2; i++ {
		pid := testkit.Component(in.Status(), "netproc").PID
		in.MustRun("kill", "netproc")
		if st, ok := in.WaitRestarted(10*time.Second, "netproc", pid, i); !ok {
			t.Fatalf("restart %d: %+v", i, testkit.Component(st, "netproc"))
		}
	}
	in.MustRun("kill", "netproc")
	st, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		return testkit.Component(st, "netproc").State == proto.StateFailed
	})
	c := testkit.Component(st, "netproc")
	if !ok || !strings.Contains(c.Reason, "giving up") || c.PID != 0 {
		t.Fatalf("netproc after passing its intensity: %+v", c)
	}
	if out := in.MustRun("status"); !strings.Contains(out, "failed") || !strings.Contains(out, "giving up") {
		t.Errorf("status does not say netproc failed and why:\n%s", out)
	}
	// A restart brings a failed component back.
	in.MustRun("restart", "netproc")
	if st := in.Status(); testkit.Component(st, "netproc").State != proto.StateRunning {
		t.Fatalf("after restart: %+v", testkit.Component(st, "netproc"))
	}
}

func TestAttachSupervisedApp(t *testing.T) {
	in := testkit.NewInstance(t, "")
	ping := testkit.Build(t, "./examples/ping")
	in.Start()
	out := in.MustRun("attach", "--name", "ping", "--restart", "always", "--", ping, "--every", "50ms")
	if !strings.Contains(out, "ping attached") {
		t.Fatalf("attach said %q", out)
	}
	st, ok := in.WaitFor(10*time.Second, running("ping"))
	if !ok {
		t.Fatalf("ping not running: %+v", testkit.Component(st, "ping"))
	}
	c := testkit.Component(st, "ping")
	if c.Kind != proto.KindApp || c.Attached {
		t.Fatalf("ping: %+v", c)
	}
	// Its channels show under the servers, and they carry its pings.
	if _, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		for _, srv := range []string{"netproc", "diskproc"} {
			chs := testkit.Component(st, srv).Channels
			if len(chs) != 1 || chs[0].App != "ping" || chs[0].Completed < 2 {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("ping's channels do not carry pings: %+v", in.Status())
	}
	if logs := in.MustRun("logs", "ping", "-n", "3"); !strings.Contains(logs, "ping netproc") {
		t.Errorf("logs ping: %q", logs)
	}

	// Kill both servers under the app: its calls are replayed to the next
	// incarnations, and it sees only latency, never an error.
	for _, srv := range []string{"netproc", "diskproc"} {
		in.MustRun("kill", srv)
		if _, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
			chs := testkit.Component(st, srv).Channels
			// Epoch 1 died; the supervisor closed it as epoch 2; the new
			// incarnation is epoch 3.
			return testkit.Component(st, srv).Restarts == 1 && len(chs) == 1 && chs[0].Epoch == 3
		}); !ok {
			t.Fatalf("%s not back with the app's channel in epoch 3", srv)
		}
	}
	// The app goes on pinging through both new incarnations: its log is
	// read once each has completed more calls (the counts live in the
	// channel's header and go on across incarnations).
	base := in.Status()
	if _, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		for _, srv := range []string{"netproc", "diskproc"} {
			chs, was := testkit.Component(st, srv).Channels, testkit.Component(base, srv).Channels
			if len(chs) != 1 || len(was) != 1 || chs[0].Completed < was[0].Completed+2 {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("ping's calls do not complete after the restarts: %+v", in.Status())
	}
	for _, line := range strings.Split(in.MustRun("logs", "ping", "-n", "0"), "\n") {
		_, rest, ok := strings.Cut(line, " ping ")
		if !ok {
			continue
		}
		_, took, _ := strings.Cut(rest, ": ")
		if _, err := time.ParseDuration(took); err != nil {
			t.Errorf("the app saw an error: %q", line)
		}
	}

	in.MustRun("kill", "ping")
	if st, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		p := testkit.Component(st, "ping")
		return p.State == proto.StateRunning && p.PID != c.PID && p.Restarts == 1
	}); !ok {
		t.Fatalf("ping not restarted: %+v", testkit.Component(st, "ping"))
	}
	if out, err := in.Run("attach", "--name", "ping", "--", ping); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("second attach under the same name: %v %s", err, out)
	}
	in.MustRun("detach", "ping")
	st = in.Status()
	if testkit.Component(st, "ping") != nil {
		t.Fatalf("ping still in status after detach")
	}
	if n := len(testkit.Component(st, "netproc").Channels); n != 0 {
		t.Fatalf("netproc still has %d channels after detach", n)
	}

	// Bad attaches fail with a reason.
	if out, err := in.Run("attach", "--name", "bad", "--", "/nonexistent/cmd"); err == nil || !strings.Contains(out, "no such file") {
		t.Errorf("attach of a missing command: %v %s", err, out)
	}
	if out, err := in.Run("attach", "--name", "netproc", "--", ping); err == nil || !strings.Contains(out, "reserved") {
		t.Errorf("attach under a server's name: %v %s", err, out)
	}
}

func TestSelfAttach(t *testing.T) {
	in := testkit.NewInstance(t, "")
	ping := testkit.Build(t, "./examples/ping")
	in.Start()
	cmd := exec.Command(ping, "--every", "50ms")
	cmd.Env = in.Env()
	logf, _ := os.Create(filepath.Join(t.TempDir(), "ping.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	st, ok := in.WaitFor(10*time.Second, running("ping"))
	c := testkit.Component(st, "ping")
	if !ok || !c.Attached || c.PID != cmd.Process.Pid {
		t.Fatalf("self-attached ping: %+v (pid %d)", c, cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	st, ok = in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool { return testkit.Component(st, "ping") == nil })
	if !ok {
		t.Fatalf("ping still in status after it exited: %+v", testkit.Component(st, "ping"))
	}
	if n := len(testkit.Component(st, "diskproc").Channels); n != 0 {
		t.Fatalf("diskproc still has %d channels of the exited app", n)
	}
}

func TestStopLeavesNothing(t *testing.T) {
	in := testkit.NewInstance(t, "")
	ping := testkit.Build(t, "./examples/ping")
	in.Start()
	in.MustRun("attach", "--name", "ping", "--", ping)
	in.WaitFor(10*time.Second, running("ping"))
	pids := in.Pids()
	if out := in.MustRun("supervisor", "stop"); !strings.Contains(out, "stopped") {
		t.Fatalf("stop said %q", out)
	}
	if alive := testkit.WaitGone(pids, 2*time.Second); len(alive) > 0 {
		t.Fatalf("processes %v still run after stop", alive)
	}
	if left := in.Processes(); len(left) > 0 {
		t.Fatalf("processes %v of the instance run after stop", left)
	}
	for _, f := range []string{"control.sock", "supervisor.pid", "supervisor.lock", "config.toml"} {
		if _, err := os.Stat(filepath.Join(in.Dir(), f)); err == nil {
			t.Errorf("%s left behind", f)
		}
	}
	// Regions are memfds: with every process gone, nothing maps them.
	if out, err := in.Run("status"); err == nil || !strings.Contains(out, "not running") {
		t.Errorf("status after stop: %v %s", err, out)
	}
}

func TestSupervisorKilled(t *testing.T) {
	in := startInstance(t)
	in.Status()
	pids := in.Pids()
	syscall.Kill(in.SupervisorPID(), syscall.SIGKILL)
	if alive := testkit.WaitGone(pids, 2*time.Second); len(alive) > 0 {
		t.Fatalf("processes %v outlived their supervisor by 2 s", alive)
	}
	if left := in.Processes(); len(left) > 0 {
		t.Fatalf("processes %v of the instance outlived its supervisor", left)
	}
	// A new start cleans the stale socket and works.
	in.Start()
	if _, ok := in.WaitFor(10*time.Second, running("netproc", "diskproc")); !ok {
		t.Fatal("restarted instance not running")
	}
}

func TestSecondStartRefused(t *testing.T) {
	in := startInstance(t)
	out, err := in.Run("supervisor", "start", "--detach")
	if err == nil || !strings.Contains(out, "already running") {
		t.Fatalf("second start: %v %s", err, out)
	}
}

func TestConcurrentStatus(t *testing.T) {
	in := startInstance(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := in.Run("status", "--json"); err != nil || !strings.Contains(out, `"netproc"`) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a concurrent status failed: %v", err)
	}
}

func TestControlSocketGarbage(t *testing.T) {
	in := startInstance(t)
	sock := in.ControlSocket()
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want 0600", fi.Mode().Perm())
	}
	// A frame of garbage gets an error reply and the connection goes on.
	c, err := proto.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	c.UnixConn().Write(append(binary.BigEndian.AppendUint32(nil, 4), 0xde, 0xad, 0xbe, 0xef))
	r, _, err := c.Receive()
	if err != nil || r.Type != proto.MsgError {
		t.Fatalf("garbage frame: %+v %v", r, err)
	}
	var st proto.StatusReply
	if _, err := c.Call(proto.MsgStatus, &proto.Status{}, &st); err != nil || st.Instance != in.Name {
		t.Fatalf("status after garbage on the same connection: %v", err)
	}
	c.Close()
	// A huge declared length gets an error and the connection is closed.
	c, _ = proto.Dial(sock)
	c.UnixConn().Write([]byte{0x7f, 0xff, 0xff, 0xff, 1, 2, 3})
	if r, _, err := c.Receive(); err != nil || r.Type != proto.MsgError {
		t.Fatalf("huge frame: %+v %v", r, err)
	}
	c.Close()
	// Raw garbage, then hanging up mid-frame.
	raw, _ := net.Dial("unix", sock)
	raw.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	raw.Write([]byte{0, 0, 0, 50, 1})
	raw.Close()
	// The supervisor keeps serving.
	stillServing(t, in, "supervisor stopped serving after garbage")
}

func TestConfigErrorsReachTheUser(t *testing.T) {
	in := testkit.NewInstance(t, "[netproc]\nbackend = \"kernel\"\nbogus = 1\n")
	out, err := in.Run("supervisor", "start", "--detach", "--config", in.Config)
	if err == nil || !strings.Contains(out, "saturn.toml:3: netproc.bogus: unknown key") {
		t.Fatalf("bad config: %v %s", err, out)
	}
	in2 := testkit.NewInstance(t, testkit.TestConfig+"[[app]]\nname = \"broken\"\ncommand = [\"/nonexistent/app\"]\nrestart = \"never\"\n")
	out, err = in2.Run("supervisor", "start", "--detach", "--config", in2.Config)
	if err == nil || !strings.Contains(out, "broken") || !strings.Contains(out, "did not start") {
		t.Fatalf("app that cannot start: %v %s", err, out)
	}
	if left := in2.Processes(); len(left) > 0 {
		t.Fatalf("processes %v of the instance run after its failed start", left)
	}
	if _, err := os.Stat(in2.ControlSocket()); err == nil {
		t.Fatal("the control socket outlived the failed start")
	}
}

func TestForegroundStopsOnSignal(t *testing.T) {
	// Up means every component of the default config, the web server
	// included: a signal while it starts is a stop too (see
	// TestSignalWhileStarting), but this test wants the whole life.
	out := signalForeground(t, "netproc", "diskproc", "web")
	for _, want := range []string{"msg=started", "name=netproc", "msg=\"instance ready\"", "msg=\"instance stopped\""} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// TestSignalWhileStarting: SIGTERM while the instance is still starting
// (its web server not yet ready) stops it like any SIGTERM: exit 0,
// nothing left running.
func TestSignalWhileStarting(t *testing.T) {
	signalForeground(t, "netproc")
}

// signalForeground starts the built-in config in the foreground, sends the
// supervisor SIGTERM once the components named run, and checks that it
// exits 0 with nothing of the instance left running. It returns the
// supervisor's log.
func signalForeground(t *testing.T, up ...string) string {
	t.Helper()
	in := testkit.NewInstance(t, "")
	cmd := in.Command("supervisor", "start")
	var out strings.Builder
	cmd.Stderr = &out
	sup := testkit.Start(t, cmd) // killed when the test ends, if it still runs
	if _, ok := in.WaitForQuiet(10*time.Second, running(up...)); !ok {
		t.Fatalf("foreground instance did not bring up %v:\n%s", up, out.String())
	}
	pids := in.Pids()
	cmd.Process.Signal(syscall.SIGTERM)
	if exited, err := sup.Wait(10 * time.Second); !exited {
		t.Fatal("supervisor did not stop on SIGTERM")
	} else if err != nil {
		t.Fatalf("supervisor exited with %v:\n%s", err, out.String())
	}
	if alive := testkit.WaitGone(pids, 2*time.Second); len(alive) > 0 {
		t.Fatalf("processes %v still run", alive)
	}
	return out.String()
}
