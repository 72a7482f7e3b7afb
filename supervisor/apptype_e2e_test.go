package supervisor_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// TestAttachPlainProgram: a program that does not link appproc is running
// once it has started (issue 16). ready_timeout is long, so that an attach
// that waited for it would outlast the test's own patience for the state.
func TestAttachPlainProgram(t *testing.T) {
	in := testkit.NewInstance(t, testkit.TestConfig+"[supervisor]\nready_timeout = \"60s\"\n")
	in.Start()
	out := in.MustRun("attach", "--name", "nap", "--", "sleep", "600")
	if !strings.Contains(out, "nap attached") {
		t.Fatalf("attach said %q", out)
	}
	// Running the moment attach returns: no wait on a state that comes later.
	c := testkit.Component(in.Status(), "nap")
	if c == nil || c.State != proto.StateRunning || c.PID == 0 || c.Type != "simple" {
		t.Fatalf("nap after attach: %+v", c)
	}
	if out := in.MustRun("status"); !strings.Contains(out, "type=simple") {
		t.Errorf("status does not show nap's type:\n%s", out)
	}
	// Killed, it is restarted (on-failure) and running again.
	in.MustRun("kill", "nap")
	st, ok := in.WaitRestarted(10*time.Second, "nap", c.PID, 1)
	if !ok {
		t.Fatalf("nap not running again after kill: %+v", testkit.Component(st, "nap"))
	}
	if n := testkit.Component(st, "nap"); n.LastExit != "signal KILL" {
		t.Errorf("nap's last exit %q", n.LastExit)
	}
	in.MustRun("detach", "nap")

	// An appproc program is notify: running (attached) when attach returns.
	ping := testkit.Build(t, "./examples/ping")
	in.MustRun("attach", "--name", "ping", "--", ping, "--every", "50ms")
	st = in.Status()
	if p := testkit.Component(st, "ping"); p == nil || p.State != proto.StateRunning || p.Type != "notify" || len(testkit.Component(st, "netproc").Channels) != 1 {
		t.Fatalf("ping after attach: %+v, netproc's channels %+v", p, testkit.Component(st, "netproc").Channels)
	}
	in.MustRun("detach", "ping")

	// The same program as simple: running at once, and it gets its
	// channels when it attaches after all.
	in.MustRun("attach", "--name", "ping2", "--type", "simple", "--", ping, "--every", "50ms")
	if p := testkit.Component(in.Status(), "ping2"); p.State != proto.StateRunning || p.Type != "simple" {
		t.Fatalf("ping2 after attach: %+v", p)
	}
	if st, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		chs := testkit.Component(st, "diskproc").Channels
		return len(chs) == 1 && chs[0].App == "ping2" && chs[0].Completed > 0
	}); !ok {
		t.Fatalf("ping2 attached as simple has no working channel: %+v", testkit.Component(st, "diskproc"))
	}

	if out, err := in.Run("attach", "--name", "x", "--type", "forking", "--", "sleep", "1"); err == nil || !strings.Contains(out, `"forking"`) {
		t.Errorf("attach with a bad type: %v %s", err, out)
	}
}

// TestNotifySilent: a notify app that never attaches is taken as running at
// ready_timeout, with the reason in status, and attach returns then.
func TestNotifySilent(t *testing.T) {
	in := testkit.NewInstance(t, testkit.TestConfig+"[supervisor]\nready_timeout = \"2s\"\n")
	in.Start()
	in.MustRun("attach", "--name", "mute", "--type", "notify", "--", "sleep", "600")
	c := testkit.Component(in.Status(), "mute")
	if c == nil || c.State != proto.StateRunning || c.Type != "notify" || !strings.Contains(c.Reason, "did not attach") {
		t.Fatalf("mute after attach: %+v", c)
	}
	// The same holds for every incarnation, not only the first.
	in.MustRun("kill", "mute")
	if st, ok := in.WaitRestarted(10*time.Second, "mute", 0, 1); !ok {
		t.Fatalf("mute after kill: %+v", testkit.Component(st, "mute"))
	}
}

// TestConfigPlainApp: a plain program listed in the config does not hold
// up the start (ready_timeout is long, so waiting on it would show), and
// [[app]] type is checked and obeyed.
func TestConfigPlainApp(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1) here")
	}
	in := testkit.NewInstance(t, testkit.TestConfig+fmt.Sprintf(`
[supervisor]
ready_timeout = "60s"

[[app]]
name = "nap"
command = [%q, "600"]

[[app]]
name = "ping"
command = ["saturn", "version"]
type = "simple"
restart = "never"
`, sleep))
	in.Start()
	st := in.Status()
	if c := testkit.Component(st, "nap"); c == nil || c.State != proto.StateRunning || c.Type != "simple" {
		t.Fatalf("nap: %+v", c)
	}
	// saturn's own binary would be notify, but the config says simple:
	// it ran, printed its version and stopped, and nothing waited on it.
	st, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		c := testkit.Component(st, "ping")
		return c.Type == "simple" && c.State == proto.StateStopped && c.LastExit == "exit 0"
	})
	if !ok {
		t.Fatalf("ping (saturn version as simple): %+v", testkit.Component(st, "ping"))
	}
}
