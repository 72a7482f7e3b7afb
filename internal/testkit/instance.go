package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"saturn/proto"
)

// Instance is a saturn instance of a test's own, in a temporary state
// directory, driven through the CLI.
type Instance struct {
	t        testing.TB
	Bin      string
	StateDir string
	Name     string
	Config   string // the config file, or "" for the built-in default
	pids     map[int]bool
}

// TestConfig is the configuration NewInstance uses when given none: the
// kernel-socket backend (no TUN device or namespace that parallel tests
// would fight over) and no apps (the built-in default's web server would
// take port 8080).
const TestConfig = "[netproc]\nbackend = \"kernel\"\n"

// NewInstance prepares an instance. config (TestConfig when empty) is
// written to a file and passed with --config. The instance is stopped, and
// any process of it still running is killed, when the test ends.
func NewInstance(t testing.TB, config string) *Instance {
	t.Helper()
	dir := t.TempDir()
	in := &Instance{
		t: t, Bin: Saturn(t), StateDir: filepath.Join(dir, "state"),
		Name: fmt.Sprintf("t%d", time.Now().UnixNano()%1e9), pids: map[int]bool{},
	}
	if config == "" {
		config = TestConfig
	}
	{
		in.Config = filepath.Join(dir, "saturn.toml")
		if err := os.WriteFile(in.Config, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(in.teardown)
	return in
}

// Env is the environment that points a process at this instance.
func (in *Instance) Env() []string {
	return append(os.Environ(), "SATURN_STATE_DIR="+in.StateDir, "SATURN_INSTANCE="+in.Name)
}

// Command prepares `saturn ARGS...` for this instance. It runs in "/":
// `saturn attach` starts its app in the folder it runs in, and as root
// the app runs as a user of its own (docs/security.md), which may not
// enter the test's folders.
func (in *Instance) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(in.Bin, args...)
	cmd.Env = in.Env()
	cmd.Dir = "/"
	return cmd
}

// Run runs `saturn ARGS...` and returns its combined output.
func (in *Instance) Run(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := in.Command(args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// MustRun runs `saturn ARGS...` and fails the test if it fails.
func (in *Instance) MustRun(args ...string) string {
	in.t.Helper()
	out, err := in.Run(args...)
	if err != nil {
		in.t.Fatalf("saturn %s: %v\n%s", quote(args), err, out)
	}
	return out
}

// Start starts the instance detached and fails the test if it does not
// come up.
func (in *Instance) Start() {
	in.t.Helper()
	args := []string{"supervisor", "start", "--detach"}
	if in.Config != "" {
		args = append(args, "--config", in.Config)
	}
	in.MustRun(args...)
	in.remember()
}

// Status is `saturn status --json`.
func (in *Instance) Status() *proto.StatusReply {
	in.t.Helper()
	out, err := in.Run("status", "--json")
	if err != nil {
		in.t.Fatalf("status: %v\n%s", err, out)
	}
	var st proto.StatusReply
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		in.t.Fatalf("status --json: %v\n%s", err, out)
	}
	in.rememberStatus(&st)
	return &st
}

// Component is one row of status, or nil.
func Component(st *proto.StatusReply, name string) *proto.ComponentStatus {
	for i := range st.Components {
		if st.Components[i].Name == name {
			return &st.Components[i]
		}
	}
	return nil
}

// WaitFor polls status until cond holds or timeout passes, and returns
// the last status and whether cond held.
func (in *Instance) WaitFor(timeout time.Duration, cond func(*proto.StatusReply) bool) (*proto.StatusReply, bool) {
	in.t.Helper()
	var st *proto.StatusReply
	ok := Until(timeout, func() bool {
		st = in.Status()
		return cond(st)
	})
	return st, ok
}

// WaitRestarted waits until the component name runs again after a kill:
// in a process other than oldPID (0: any), restarted restarts times in all.
// It returns the last status and whether that came.
func (in *Instance) WaitRestarted(timeout time.Duration, name string, oldPID, restarts int) (*proto.StatusReply, bool) {
	in.t.Helper()
	return in.WaitFor(timeout, func(st *proto.StatusReply) bool {
		c := Component(st, name)
		return c != nil && c.State == proto.StateRunning && c.PID != 0 && c.PID != oldPID && c.Restarts == restarts
	})
}

// WaitForQuiet is WaitFor for an instance that may not be up yet: a
// status that fails counts as not yet.
func (in *Instance) WaitForQuiet(timeout time.Duration, cond func(*proto.StatusReply) bool) (*proto.StatusReply, bool) {
	var last *proto.StatusReply
	ok := Until(timeout, func() bool {
		out, err := in.Run("status", "--json")
		if err != nil {
			return false
		}
		var st proto.StatusReply
		if json.Unmarshal([]byte(out), &st) != nil {
			return false
		}
		in.rememberStatus(&st)
		last = &st
		return cond(&st)
	})
	if !ok {
		return nil, false
	}
	return last, true
}

// SupervisorPID reads the instance's pid file (0 if none).
func (in *Instance) SupervisorPID() int {
	b, _ := os.ReadFile(filepath.Join(in.StateDir, in.Name, "supervisor.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// Dir is STATE_DIR/INSTANCE.
func (in *Instance) Dir() string { return filepath.Join(in.StateDir, in.Name) }

// ControlSocket is the path of the instance's control socket.
func (in *Instance) ControlSocket() string { return filepath.Join(in.Dir(), "control.sock") }

// LogFile is the path of a component's log file ("supervisor" for the
// supervisor's own).
func (in *Instance) LogFile(name string) string {
	return filepath.Join(in.Dir(), "logs", name+".log")
}

// Log is what the component's log file holds now, "" when there is none
// yet.
func (in *Instance) Log(name string) string {
	b, _ := os.ReadFile(in.LogFile(name))
	return string(b)
}

// Pids lists every process of the instance the test has seen.
func (in *Instance) Pids() []int {
	var out []int
	for p := range in.pids {
		out = append(out, p)
	}
	return out
}

func (in *Instance) remember() {
	if pid := in.SupervisorPID(); pid > 0 {
		in.pids[pid] = true
	}
}

func (in *Instance) rememberStatus(st *proto.StatusReply) {
	in.pids[st.Supervisor] = true
	for _, c := range st.Components {
		if c.PID > 0 && !c.Attached {
			in.pids[c.PID] = true
		}
	}
}

// Processes lists the processes (other than the test itself) whose
// environment points at this instance's state directory: everything the
// test started for it, and everything those started.
func (in *Instance) Processes() []int {
	marker := []byte("SATURN_STATE_DIR=" + in.StateDir + "\x00")
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(env, marker) && Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// Alive reports whether pid is a running process (zombies count as gone).
func Alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// WaitGone waits until none of pids runs; it returns those still running.
func WaitGone(pids []int, timeout time.Duration) []int {
	var alive []int
	Until(timeout, func() bool {
		alive = alive[:0]
		for _, p := range pids {
			if Alive(p) {
				alive = append(alive, p)
			}
		}
		return len(alive) == 0
	})
	return alive
}

func (in *Instance) teardown() {
	if in.SupervisorPID() > 0 {
		in.Run("supervisor", "stop")
	}
	for _, p := range WaitGone(in.Pids(), 5*time.Second) {
		in.t.Logf("killing leftover process %d of instance %s", p, in.Name)
		syscall.Kill(p, syscall.SIGKILL)
	}
	if in.t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(in.Dir(), "logs", "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			in.t.Logf("--- %s\n%s", filepath.Base(l), b)
		}
	}
}
