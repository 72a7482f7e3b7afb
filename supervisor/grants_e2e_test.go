package supervisor_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// TestServerGrants: an app whose config grants it netproc only gets a
// channel to netproc, even when it asks for every server.
func TestServerGrants(t *testing.T) {
	ping := testkit.Build(t, "./examples/ping")
	in := testkit.NewInstance(t, testkit.TestConfig+fmt.Sprintf("[[app]]\nname = \"ping\"\ncommand = [%q]\nservers = [\"netproc\"]\n", ping))
	in.Start()
	st, ok := in.WaitFor(10*time.Second, running("ping"))
	if !ok {
		t.Fatalf("ping did not run: %+v", testkit.Component(st, "ping"))
	}
	for _, server := range []string{"netproc", "diskproc"} {
		n := 0
		for _, ch := range testkit.Component(st, server).Channels {
			if ch.App == "ping" {
				n++
			}
		}
		if want := map[string]int{"netproc": 1, "diskproc": 0}[server]; n != want {
			t.Errorf("ping has %d channels to %s, want %d", n, server, want)
		}
	}
}

// TestMaxApps: past [supervisor] max_apps an app is refused with an error
// that names the limit, and the instance goes on.
func TestMaxApps(t *testing.T) {
	ping := testkit.Build(t, "./examples/ping")
	in := testkit.NewInstance(t, "[supervisor]\nmax_apps = 1\n"+testkit.TestConfig)
	in.Start()
	in.MustRun("attach", "--name", "first", "--", ping)
	out, err := in.Run("attach", "--name", "second", "--", ping)
	if err == nil || !strings.Contains(out, "max_apps") {
		t.Fatalf("a second app past max_apps = 1: %v\n%s", err, out)
	}
	st := in.Status()
	if testkit.Component(st, "second") != nil || !running("first", "netproc", "diskproc")(st) {
		t.Fatalf("after the refusal: %+v", st.Components)
	}
}

// TestAppUsers: as root, apps run as users of their own (dynamic unless
// the config says), status says which, and a program the user cannot run
// is refused with what is in the way.
func TestAppUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: apps switch users only under a root supervisor")
	}
	ping := testkit.Build(t, "./examples/ping")
	in := testkit.NewInstance(t, testkit.TestConfig+fmt.Sprintf(
		"[[app]]\nname = \"a\"\ncommand = [%q]\n\n[[app]]\nname = \"b\"\ncommand = [%q]\nuser = \"12345:23456\"\n\n[[app]]\nname = \"c\"\ncommand = [%q]\nuser = \"inherit\"\n",
		ping, ping, ping))
	in.Start()
	st, ok := in.WaitFor(10*time.Second, running("a", "b", "c"))
	if !ok {
		t.Fatalf("apps did not run: %+v", st.Components)
	}
	users := map[string]string{}
	for _, name := range []string{"a", "b", "c"} {
		c := testkit.Component(st, name)
		users[name] = c.User
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.PID))
		if err != nil {
			t.Fatal(err)
		}
		uid := ""
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "Uid:") {
				uid = strings.Fields(line)[1]
			}
		}
		switch name {
		case "a":
			if !strings.HasPrefix(c.User, uid+":") || !strings.Contains(c.User, "dynamic") || uid == "0" {
				t.Errorf("a runs as uid %s, status says %q: want a dynamic user", uid, c.User)
			}
		case "b":
			if uid != "12345" || !strings.HasPrefix(c.User, "12345:23456") {
				t.Errorf("b runs as uid %s, status says %q: want 12345:23456", uid, c.User)
			}
		case "c":
			if uid != "0" || c.User != "inherit" {
				t.Errorf("c runs as uid %s, status says %q: want the supervisor's", uid, c.User)
			}
		}
	}
	// A program its user may not run.
	dir := t.TempDir() // 0700
	prog := dir + "/private"
	b, _ := os.ReadFile(ping)
	if err := os.WriteFile(prog, b, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := in.Run("attach", "--name", "private", "--", prog)
	if err == nil || !strings.Contains(out, "not executable by others") {
		t.Fatalf("attaching a program its user cannot run: %v\n%s", err, out)
	}
	if c := testkit.Component(in.Status(), "private"); c != nil && c.State == proto.StateRunning {
		t.Fatalf("it runs: %+v", c)
	}
}
