package supervisor_test

import (
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"saturn/internal/testkit"
)

// topRow finds the row of the component called name in the last full
// frame of out (frames start by clearing the screen) and returns its
// columns: NAME KIND PID STATE UPTIME RESTARTS CONNS SUBMIT/s COMPLETE/s.
func topRow(out, name string) []string {
	frames := strings.Split(out, "\x1b[H\x1b[2J")
	if len(frames) < 3 {
		return nil
	}
	last := frames[len(frames)-2] // the one after it may be half written
	for _, line := range strings.Split(last, "\n") {
		f := strings.Fields(strings.TrimRight(line, "\r"))
		if len(f) == 9 && f[0] == name {
			return f
		}
	}
	return nil
}

// startPinging starts an instance with examples/ping attached as "ping",
// every 20 ms, so that top has channel rates to show.
func startPinging(t *testing.T) *testkit.Instance {
	t.Helper()
	in := testkit.NewInstance(t, "")
	ping := testkit.Build(t, "./examples/ping")
	in.Start()
	in.MustRun("attach", "--name", "ping", "--", ping, "--every", "20ms")
	return in
}

// TestTop runs `saturn top` on a pseudo-terminal for a few refreshes: it
// draws on the alternate screen, shows an app's channel rates and a
// restart after a kill, quits on q and gives the screen back.
func TestTop(t *testing.T) {
	in := startPinging(t)

	cmd := in.Command("top", "--interval", "200ms")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out testkit.SyncBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(&out, tty) // until the pty closes
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()

	// ping's round trips (50 a second to each server) show as rates.
	testkit.Eventually(t, 20*time.Second, func() bool {
		r := topRow(out.String(), "ping")
		if r == nil || r[3] != "running" {
			return false
		}
		sub, err := strconv.Atoi(r[7])
		return err == nil && sub > 0
	}, "a frame with ping running and submitting; got:\n%s", out.String())
	if !strings.HasPrefix(out.String(), "\x1b[?1049h") {
		t.Errorf("top does not start on the alternate screen: %q", out.String()[:min(40, len(out.String()))])
	}
	for _, want := range []string{"saturn top: instance " + in.Name, "CHANNEL", "diskproc", "netproc"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q on the screen", want)
		}
	}

	// A kill shows as a restart in a later frame.
	in.MustRun("kill", "ping")
	testkit.Eventually(t, 20*time.Second, func() bool {
		r := topRow(out.String(), "ping")
		return r != nil && r[3] == "running" && r[5] == "1"
	}, "a frame with ping restarted once")
	frames := strings.Count(out.String(), "\x1b[H\x1b[2J")
	if frames < 3 {
		t.Errorf("only %d frames drawn", frames)
	}

	// q quits, and the terminal is given back.
	if _, err := tty.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("top exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("top did not quit on q within 10 s")
	}
	tty.Close()
	<-copied
	if s := out.String(); !strings.HasSuffix(strings.TrimRight(s, "\r\n"), "\x1b[?25h\x1b[?1049l") {
		t.Errorf("top did not leave the alternate screen last: %q", s[max(0, len(s)-60):])
	}
	t.Logf("%d frames drawn", frames)
}

// TestTopNotTerminal: with output to a pipe, top prints one plain frame,
// with rates, and exits.
func TestTopNotTerminal(t *testing.T) {
	in := startPinging(t)
	out := in.MustRun("top", "--interval", "300ms")
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape sequences in output to a pipe: %q", out)
	}
	if n := strings.Count(out, "saturn top: instance"); n != 1 {
		t.Errorf("%d frames, want 1:\n%s", n, out)
	}
	row := regexp.MustCompile(`(?m)^\d+\s+ping\s+diskproc\s+\d+\s+(\d+)\s+(\d+)\s`).FindStringSubmatch(out)
	if row == nil {
		t.Fatalf("no channel row for ping's diskproc channel:\n%s", out)
	}
	if sub, _ := strconv.Atoi(row[1]); sub == 0 {
		t.Errorf("ping's diskproc channel shows no submissions per second:\n%s", out)
	}
	out = in.MustRun("top", "--interval", "100ms", "-n", "3")
	if n := strings.Count(out, "saturn top: instance"); n != 3 {
		t.Errorf("-n 3 printed %d frames", n)
	}
	if out, err := in.Run("top", "--interval", "1ms"); err == nil || !strings.Contains(out, "at least 100ms") {
		t.Errorf("top with a tiny interval: %v %s", err, out)
	}
}
