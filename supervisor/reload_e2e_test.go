package supervisor_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// reloadConfig is an instance with plain programs as apps, so that what a
// reload does to them shows in their pids.
func reloadConfig(t *testing.T, extra string, apps ...string) string {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	cfg := testkit.TestConfig + extra
	for _, a := range apps {
		name, arg, _ := strings.Cut(a, "=")
		cfg += fmt.Sprintf("\n[[app]]\nname = %q\ncommand = [%q, %q]\ntype = \"simple\"\nrestart = \"always\"\n", name, sleep, arg)
	}
	return cfg
}

func hup(t *testing.T, in *testkit.Instance) {
	t.Helper()
	pid := in.SupervisorPID()
	if pid <= 0 {
		t.Fatal("no supervisor pid")
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

func generation(st *proto.StatusReply) int {
	if st.Config == nil {
		return 0
	}
	return st.Config.Generation
}

// TestReloadSIGHUP: SIGHUP reloads the config (issue 16). Policies change in
// place, an app added is started, one removed is stopped, one whose command
// changed is restarted and the others keep their process; keys that need a
// new instance are kept and named in the log; a config with an error changes
// nothing and status says why; status shows the generation in force.
func TestReloadSIGHUP(t *testing.T) {
	in := testkit.NewInstance(t, reloadConfig(t, "", "keep=600", "change=600", "drop=600"))
	in.Start()
	st, ok := in.WaitFor(10*time.Second, running("keep", "change", "drop"))
	if !ok {
		t.Fatalf("apps not running: %+v", st.Components)
	}
	if c := st.Config; c == nil || c.Generation != 1 || c.Source != in.Config || c.LoadedAt.IsZero() || c.ReloadError != "" {
		t.Fatalf("config status at start: %+v", c)
	}
	keep, change := testkit.Component(st, "keep").PID, testkit.Component(st, "change").PID

	// The new config: keep's policy and netproc's change, change's command
	// changes, drop goes, add comes, and a channel key that a running
	// instance cannot take.
	v2 := reloadConfig(t, "restart = \"on-failure\"\n[channel]\nbuffers = 64\n", "keep=600", "change=601", "add=600")
	v2 = strings.Replace(v2, "restart = \"always\"\n", "restart = \"never\"\n", 1) // keep's: netproc's is on-failure
	if err := os.WriteFile(in.Config, []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	hup(t, in)
	st, ok = in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		if generation(st) != 2 || testkit.Component(st, "drop") != nil || !running("keep", "change", "add")(st) {
			return false
		}
		return testkit.Component(st, "change").PID != change
	})
	if !ok {
		t.Fatalf("after the reload: config %+v, components %+v", st.Config, st.Components)
	}
	k := testkit.Component(st, "keep")
	if k.PID != keep || k.Policy != "never" {
		t.Errorf("keep: pid %d (was %d), policy %q; want the same process with policy never", k.PID, keep, k.Policy)
	}
	if c := testkit.Component(st, "change"); c.Restarts != 1 || c.LastExit != "signal TERM" {
		t.Errorf("change restarted %d times, last exit %q; want once, gracefully (signal TERM)", c.Restarts, c.LastExit)
	}
	if n := testkit.Component(st, "netproc"); n.Policy != "on-failure" {
		t.Errorf("netproc's policy %q after the reload, want on-failure", n.Policy)
	}
	// The running command is the new one.
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", testkit.Component(st, "change").PID)); !strings.Contains(string(cmdline), "601") {
		t.Errorf("change runs %q, want sleep 601", cmdline)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(in.Log("supervisor"), "configuration reloaded")
	}, "no reload in the supervisor's log")
	log := in.Log("supervisor")
	for _, want := range []string{"channel.buffers", "app added; starting it", "no longer in the config", "app changed; restarting it", "restart policy"} {
		if !strings.Contains(log, want) {
			t.Errorf("supervisor's log lacks %q:\n%s", want, log)
		}
	}
	if out := in.MustRun("status"); !strings.Contains(out, "generation 2") || !strings.Contains(out, "kept until the instance is started again: channel.buffers") {
		t.Errorf("status does not show the generation and the key kept:\n%s", out)
	}
	if k := st.Config.NeedsRestart; len(k) != 1 || k[0] != "channel.buffers" {
		t.Errorf("status --json: needs_restart %q, want [channel.buffers]", k)
	}
	// The effective config that components read is the one in force: the
	// new apps, the old channel geometry.
	eff, err := os.ReadFile(filepath.Join(in.Dir(), "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if e := string(eff); !strings.Contains(e, "name = 'add'") || strings.Contains(e, "name = 'drop'") || strings.Contains(e, "buffers = 64") {
		t.Errorf("effective config after the reload:\n%s", e)
	}

	// A config with an error: nothing changes, and status says why.
	if err := os.WriteFile(in.Config, []byte("[netproc]\nbackend = \"dpdk\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := st
	hup(t, in)
	st, ok = in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		return st.Config != nil && st.Config.ReloadError != ""
	})
	if !ok || generation(st) != 2 || !strings.Contains(st.Config.ReloadError, "netproc.backend") {
		t.Fatalf("a bad config: %+v", st.Config)
	}
	for _, name := range []string{"keep", "change", "add"} {
		if a, b := testkit.Component(before, name), testkit.Component(st, name); b == nil || a.PID != b.PID || b.State != proto.StateRunning {
			t.Errorf("%s changed on a bad config: %+v, was %+v", name, b, a)
		}
	}
	if out := in.MustRun("status"); !strings.Contains(out, "last reload failed") || !strings.Contains(out, "netproc.backend") {
		t.Errorf("status does not show the failed reload:\n%s", out)
	}

	// Fixed again, with the supervisor's log level at warn: the next
	// generation, the error gone, and info lines no longer logged.
	v3 := reloadConfig(t, "restart = \"on-failure\"\n[channel]\nbuffers = 64\n[supervisor]\nlog_level = \"warn\"\n", "keep=600", "change=601", "add=600")
	v3 = strings.Replace(v3, "restart = \"always\"\n", "restart = \"never\"\n", 1)
	if err := os.WriteFile(in.Config, []byte(v3), 0o644); err != nil {
		t.Fatal(err)
	}
	hup(t, in)
	if st, ok = in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool { return generation(st) == 3 }); !ok || st.Config.ReloadError != "" {
		t.Fatalf("after fixing the config: %+v", st.Config)
	}
	for _, name := range []string{"keep", "change", "add"} {
		if a, b := testkit.Component(before, name), testkit.Component(st, name); b == nil || a.PID != b.PID {
			t.Errorf("%s restarted by a reload that changed only the log level: %+v, was %+v", name, b, a)
		}
	}
	in.MustRun("kill", "add") // info: signalled on request; warn: exited, restart scheduled
	testkit.Eventually(t, 10*time.Second, func() bool {
		return regexp.MustCompile(`msg="exited; restart scheduled" .*name=add `).MatchString(in.Log("supervisor"))
	}, "no warning of add's exit in the log")
	if log := in.Log("supervisor"); strings.Contains(log, "signalled on request") {
		t.Errorf("an info line logged at log_level warn:\n%s", log)
	}
}

// TestInstanceConfigFile: without --config an instance reads its own file,
// CONFIG_DIR/NAME.toml (the systemd unit's convention), and a reload reads
// it again.
func TestInstanceConfigFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SATURN_CONFIG_DIR", dir)
	in := testkit.NewInstance(t, "")
	file := filepath.Join(dir, in.Name+".toml")
	if err := os.WriteFile(file, []byte(reloadConfig(t, "", "one=600")), 0o644); err != nil {
		t.Fatal(err)
	}
	in.Config = "" // start without --config
	if out := in.MustRun("config", "print"); !strings.Contains(out, "from "+file) || !strings.Contains(out, "name = 'one'") {
		t.Errorf("config print does not show the instance's file:\n%s", out)
	}
	in.Start()
	st, ok := in.WaitFor(10*time.Second, running("one"))
	if !ok || st.Config == nil || st.Config.Source != file {
		t.Fatalf("started from %+v, components %+v; want %s", st.Config, st.Components, file)
	}
	if err := os.WriteFile(file, []byte(reloadConfig(t, "", "one=600", "two=600")), 0o644); err != nil {
		t.Fatal(err)
	}
	hup(t, in)
	if st, ok = in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool { return generation(st) == 2 && running("one", "two")(st) }); !ok {
		t.Fatalf("after the reload: %+v %+v", st.Config, st.Components)
	}

	// A config that lists an app attached from the command line is
	// refused: the reload would take over a process it did not start.
	in.MustRun("attach", "--name", "three", "--", "sleep", "600")
	if err := os.WriteFile(file, []byte(reloadConfig(t, "", "one=600", "two=600", "three=600")), 0o644); err != nil {
		t.Fatal(err)
	}
	hup(t, in)
	st, ok = in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool { return st.Config != nil && st.Config.ReloadError != "" })
	if !ok || generation(st) != 2 || !strings.Contains(st.Config.ReloadError, "three") || !strings.Contains(st.Config.ReloadError, "detach it first") {
		t.Fatalf("a config naming an attached app: %+v", st.Config)
	}
}

// TestReloadDuringStart: a SIGHUP that comes while the instance starts
// neither kills the supervisor (SIGHUP's default) nor reloads half-started
// components: it is applied once the start is over. The app of type notify
// that never attaches holds the start for ready_timeout, so that the
// signal surely comes during it.
func TestReloadDuringStart(t *testing.T) {
	cfg := strings.Replace(reloadConfig(t, "[supervisor]\nready_timeout = \"3s\"\n", "slow=600"), "type = \"simple\"", "type = \"notify\"", 1)
	in := testkit.NewInstance(t, cfg)
	cmd := in.Command("supervisor", "start", "--config", in.Config)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	sup := testkit.Start(t, cmd)
	testkit.Eventually(t, 10*time.Second, func() bool { return in.SupervisorPID() == cmd.Process.Pid }, "no pid file")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Quiet: the control socket may not answer until the start is over,
	// which on a loaded machine takes longer than the pid file.
	st, ok := in.WaitForQuiet(20*time.Second, func(st *proto.StatusReply) bool { return generation(st) == 2 })
	if !ok {
		b, _ := os.ReadFile(logFile.Name())
		t.Fatalf("no reload after a SIGHUP during the start:\n%s", b)
	}
	if !running("netproc", "diskproc", "slow")(st) {
		t.Errorf("components after the reload: %+v", st.Components)
	}
	in.MustRun("supervisor", "stop")
	<-sup.Exited()
	b, _ := os.ReadFile(logFile.Name())
	log := string(b)
	if ready, reload := strings.Index(log, `msg="instance ready"`), strings.Index(log, `msg="reloading the configuration"`); ready < 0 || reload < ready {
		t.Errorf("the reload did not wait for the start:\n%s", log)
	}
}
