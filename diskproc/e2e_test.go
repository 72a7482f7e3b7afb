package diskproc_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"saturn/internal/diskload"
	"saturn/internal/disktest"
	"saturn/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// TestKillUnderLoad kills diskproc (SIGKILL) three times while an app
// reads and writes through it, and checks that the app saw no error and
// only right bytes, and that the files on disk hold exactly what the app's
// model says was written: every byte of every block.
func TestKillUnderLoad(t *testing.T) {
	for _, backend := range disktest.Backends(t) {
		t.Run(backend, func(t *testing.T) { killUnderLoad(t, backend) })
	}
}

func killUnderLoad(t *testing.T, backend string) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "load"), 0o755)
	// netproc on its kernel backend: this test is about diskproc, and
	// usertcp's network namespace may be another instance's on this host.
	in := testkit.NewInstance(t, fmt.Sprintf(`
[netproc]
backend = "kernel"

[diskproc]
root = %q
backend = %q
backoff = "20ms"
intensity = 50
`, root, backend))
	load := testkit.Build(t, "./internal/diskload/cmd/diskload")
	in.Start()
	in.GiveTo("diskproc", filepath.Join(root, "load")) // the load writes there
	st := in.Status()
	d := testkit.Component(st, "diskproc")
	if d == nil || !strings.HasPrefix(d.Info["backend"], backend) {
		t.Fatalf("diskproc reports backend %q, want %s", d.Info["backend"], backend)
	}

	work := t.TempDir()
	ready, stop, report := filepath.Join(work, "ready"), filepath.Join(work, "stop"), filepath.Join(work, "report.json")
	cmd := exec.Command(load, "-ready-file", ready, "-stop-file", stop, "-report", report, "-duration", "60s")
	cmd.Env = in.Env()
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	proc := testkit.Start(t, cmd) // killed when the test ends, if it still runs
	if !testkit.Until(20*time.Second, func() bool { _, err := os.Stat(ready); return err == nil }) {
		t.Fatalf("the load did not start:\n%s", stderr.String())
	}
	const kills = 3
	for i := 1; i <= kills; i++ {
		// Deliberate: the load runs on this incarnation a while, with
		// requests in flight, before the kill (the pause is the test).
		time.Sleep(300 * time.Millisecond)
		pid := testkit.Component(in.Status(), "diskproc").PID
		in.MustRun("kill", "diskproc")
		if _, ok := in.WaitRestarted(10*time.Second, "diskproc", pid, i); !ok {
			t.Fatalf("diskproc not back after kill %d", i)
		}
	}
	time.Sleep(300 * time.Millisecond) // deliberate: load on the last incarnation too
	os.WriteFile(stop, nil, 0o644)
	if exited, err := proc.Wait(60 * time.Second); !exited {
		t.Fatalf("the load did not finish:\n%s", stderr.String())
	} else if err != nil {
		t.Fatalf("the load failed: %v\n%s", err, stderr.String())
	}
	var rep diskload.Report
	b, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("no report: %v\n%s", err, stderr.String())
	}
	t.Logf("%s: %d writes (%d MB), %d reads (%d MB), %d metadata rounds, %d restarts seen",
		backend, rep.Writes, rep.BytesWritten>>20, rep.Reads, rep.BytesRead>>20, rep.Metadata, rep.Restarts)
	if len(rep.Errors) > 0 || rep.Restarts < kills || rep.Writes == 0 || rep.Reads == 0 || rep.Metadata == 0 {
		t.Fatalf("report: %d errors %v, %d restarts seen (want %d)", len(rep.Errors), rep.Errors, rep.Restarts, kills)
	}
	// Every byte on disk, read directly, against the model.
	for f, versions := range rep.Versions {
		data, err := os.ReadFile(filepath.Join(root, "load", fmt.Sprintf("f%d", f)))
		if err != nil || len(data) != len(versions)*diskload.BlockSize {
			t.Fatalf("file %d: %d bytes, %v", f, len(data), err)
		}
		for i, want := range versions {
			v, err := diskload.Check(data[i*diskload.BlockSize:(i+1)*diskload.BlockSize], f, i)
			if err != nil || v != want {
				t.Fatalf("on disk, file %d block %d: version %d, want %d (%v)", f, i, v, want, err)
			}
		}
	}
}
