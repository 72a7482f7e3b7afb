package chaos

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
)

var (
	kills = flag.Int("chaos.kills", 6, "kills in TestChaos (the suite's short run: 6)")
	gap   = flag.Duration("chaos.gap", 700*time.Millisecond, "longest pause between kills")
	seed  = flag.Uint64("chaos.seed", 0, "seed (0: from the clock)")
)

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.Cleanup()
	os.Exit(code)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestChaos kills netproc, diskproc and the web server in turn, at random
// moments, under load, on the kernel-socket backend.
func TestChaos(t *testing.T) {
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -chaos.seed=%d)", s, s)
	root := filepath.Join(t.TempDir(), "site")
	port := freePort(t)
	// Kills here are deliberate and frequent: keep the back-off short, and
	// the intensity limit out of the way, so that every kill is followed by
	// a prompt restart and the recovery figures measure saturn, not the policy.
	policy := "backoff = \"20ms\"\nmax_backoff = \"40ms\"\nintensity = 1000\nperiod = \"60s\"\n"
	in := testkit.NewInstance(t, fmt.Sprintf(`
[netproc]
backend = "kernel"
%s
[diskproc]
root = %q
sample_site = true
%s
[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", "127.0.0.1:%d"]
%s`, policy, root, policy, port, policy))
	in.Start()
	// A larger file too, so that some kills land mid-transfer.
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	if err := os.WriteFile(filepath.Join(root, "files", "3m.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	sums, err := Sums(root)
	if err != nil {
		t.Fatal(err)
	}
	sup := in.SupervisorPID()
	fdsBefore, regionsBefore, err := Descriptors(sup)
	if err != nil {
		t.Fatal(err)
	}

	rep := Run(t, in, Options{
		Base: fmt.Sprintf("http://127.0.0.1:%d", port), Files: sums,
		Victims: []string{"netproc", "diskproc", "web"}, Kills: *kills,
		Gap: [2]time.Duration{*gap / 3, *gap}, Recover: 10 * time.Second, Hang: 20 * time.Second,
		Clients: 3, Load: 8, Seed: s,
	})
	t.Logf("\n%s", rep.Table())

	// Nothing leaked in the supervisor: the same descriptors and regions as
	// before (the web server's channels were replaced, not added to).
	var fdsAfter, regionsAfter int
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fdsAfter, regionsAfter, _ = Descriptors(sup)
		if fdsAfter == fdsBefore && regionsAfter == regionsBefore || time.Now().After(deadline) {
			break
		}
	}
	if fdsAfter != fdsBefore || regionsAfter != regionsBefore {
		t.Errorf("supervisor held %d descriptors (%d regions) before the kills and %d (%d) after", fdsBefore, regionsBefore, fdsAfter, regionsAfter)
	}
	pids := in.Processes()
	in.MustRun("supervisor", "stop")
	if alive := testkit.WaitGone(pids, 3*time.Second); len(alive) > 0 {
		t.Errorf("processes %v outlived the instance", alive)
	}
	if left := in.Processes(); len(left) > 0 {
		t.Errorf("processes %v of the instance run after stop", left)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still accepts after stop", port)
	} else if !strings.Contains(err.Error(), "refused") {
		t.Errorf("port %d after stop: %v", port, err)
	}
}
