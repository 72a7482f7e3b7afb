package hostile_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// Hostile apps against a real instance: the saturn binary, its servers,
// the web server as the honest app, and testdata/bellabuser as the hostile
// ones, all driven through the CLI and real clients.

func TestMain(m *testing.M) { testkit.Main(m) }

// config is the instance: the kernel backend, a root of the test's own,
// the web server on a free port, and a grace period longer than any wait
// below, so that a component that does not stop on SIGTERM shows as a slow
// `supervisor stop` rather than being killed in time.
const config = `
[supervisor]
stop_grace = "60s"

[netproc]
backend = "kernel"
restart = "always"

[diskproc]
root = %q
sample_site = false
restart = "always"

[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", "127.0.0.1:%d"]
restart = "always"
`

// answerWithin is how long `saturn status` (or kill) may take: a second or
// two, with room for a loaded machine. A blocked supervisor never answers.
const answerWithin = 3 * time.Second

// TestHostileDoorbells is issue 12 end to end. Two hostile apps attach
// beside the web server and abuse every doorbell they were given: one makes
// them blocking and saturates them after asking to be woken by a
// completion, the other makes them blocking and reads and rings them in a
// loop. netproc and diskproc must go on serving the web server, status must
// answer, killing a server must bring it back (the supervisor then rings
// every app's doorbell, and the new incarnation too), a hostile app's exit
// must be cleaned up (the supervisor and the servers close its channels),
// and `supervisor stop` must stop everything, all without waiting on the
// hostile apps.
func TestHostileDoorbells(t *testing.T) {
	site := t.TempDir()
	port := testkit.FreePort(t)
	in := testkit.NewInstance(t, fmt.Sprintf(config, site, port))
	in.Start()
	web := &prober{t: t, site: site, url: fmt.Sprintf("http://127.0.0.1:%d/", port)}
	web.serves(30 * time.Second)

	abuser := testkit.Build(t, "./internal/hostile/testdata/bellabuser")
	saturator := startAbuser(t, in, abuser, "saturator", "saturate")
	thief := startAbuser(t, in, abuser, "thief", "steal")
	for _, name := range []string{"saturator", "thief"} {
		if c := testkit.Component(statusWithin(t, in), name); c == nil || !c.Attached {
			t.Fatalf("%s is not attached: %+v", name, c)
		}
	}

	// The servers serve the honest app, and the supervisor answers.
	for range 10 {
		web.serves(10 * time.Second)
	}
	statusWithin(t, in)

	// A server's death: the supervisor ends its incarnation (ringing every
	// app's doorbell), restarts it, and the new incarnation takes every
	// channel again (ringing them too).
	for _, server := range []string{"netproc", "diskproc"} {
		before := testkit.Component(statusWithin(t, in), server)
		runWithin(t, in, answerWithin, "kill", server)
		if st, ok := in.WaitFor(30*time.Second, func(st *proto.StatusReply) bool {
			c := testkit.Component(st, server)
			return c.State == proto.StateRunning && c.PID != before.PID && c.PID != 0
		}); !ok {
			t.Fatalf("%s did not come back after kill: %+v", server, testkit.Component(st, server))
		}
		statusWithin(t, in)
		web.serves(30 * time.Second)
	}

	// A hostile app's exit: its channels are closed by the supervisor and
	// by both servers.
	thief.Process.Kill()
	thief.Wait()
	if st, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		return testkit.Component(st, "thief") == nil
	}); !ok {
		t.Fatalf("the thief's exit was not noticed: %+v", testkit.Component(st, "thief"))
	}
	statusWithin(t, in)
	web.serves(10 * time.Second)

	// Stop, with the saturator still attached: well within the grace
	// period, so nothing was left hanging for SIGKILL. The saturator is
	// not the instance's to stop.
	var pids []int
	for _, pid := range in.Processes() {
		if pid != saturator.Process.Pid {
			pids = append(pids, pid)
		}
	}
	start := time.Now()
	runWithin(t, in, 30*time.Second, "supervisor", "stop")
	t.Logf("supervisor stop took %v", time.Since(start).Round(time.Millisecond))
	if alive := testkit.WaitGone(pids, 10*time.Second); len(alive) > 0 {
		t.Fatalf("processes %v still run after supervisor stop", alive)
	}
}

// startAbuser starts a hostile app that attaches itself, and waits until
// its attack is in place. It is killed when the test ends.
func startAbuser(t *testing.T, in *testkit.Instance, bin, name, attack string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "--name", name, "--attack", attack)
	cmd.Env = in.Env()
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	said := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		said <- strings.TrimSpace(line)
	}()
	select {
	case line := <-said:
		if line != "attacked" {
			t.Fatalf("%s said %q, want attacked", name, line)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not attack within 30s", name)
	}
	return cmd
}

// runWithin runs `saturn ARGS...` and fails the test if it fails or takes
// longer than d.
func runWithin(t *testing.T, in *testkit.Instance, d time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, in.Bin, args...)
	cmd.Env = in.Env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("saturn %s did not answer within %v", strings.Join(args, " "), d)
	}
	if err != nil {
		t.Fatalf("saturn %s: %v\n%s", strings.Join(args, " "), err, out.Bytes())
	}
	if took := time.Since(start); took > d/2 {
		t.Logf("saturn %s took %v", strings.Join(args, " "), took.Round(time.Millisecond))
	}
	return out.String()
}

// statusWithin is `saturn status --json`, which must answer within
// answerWithin.
func statusWithin(t *testing.T, in *testkit.Instance) *proto.StatusReply {
	t.Helper()
	out := runWithin(t, in, answerWithin, "status", "--json")
	var st proto.StatusReply
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return &st
}

// prober checks that the web server serves a file it has never seen, which
// takes netproc (the connection) and diskproc (stat, open, read).
type prober struct {
	t    *testing.T
	site string
	url  string
	n    int
}

func (p *prober) serves(within time.Duration) {
	p.t.Helper()
	p.n++
	name := fmt.Sprintf("probe-%d.txt", p.n)
	want := []byte(fmt.Sprintf("probe %d at %v\n", p.n, time.Now().UnixNano()))
	if err := os.WriteFile(filepath.Join(p.site, name), want, 0o644); err != nil {
		p.t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	var err error
	if !testkit.Until(within, func() bool { err = get(client, p.url+name, want); return err == nil }) {
		p.t.Fatalf("the web server does not serve %s within %v: %v", name, within, err)
	}
}

func get(client *http.Client, url string, want []byte) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		return fmt.Errorf("%s: %s, %q", url, resp.Status, body)
	}
	return nil
}
