package hostile_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// TestAppsRunAsTheirOwnUsers: with the supervisor root, each app runs as a
// user of its own (docs/security.md), so a hostile app cannot open another
// app's shared-memory regions through /proc/PID/fd, signal it, or write
// the files it serves, on disk or through diskproc (where it only reads
// without a disk_write grant). The web server keeps serving the file.
func TestAppsRunAsTheirOwnUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: apps run as users of their own only when the supervisor is root")
	}
	site := t.TempDir()
	os.Chmod(site, 0o755)
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>mine</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testkit.FreePort(t)
	in := testkit.NewInstance(t, fmt.Sprintf(config, site, port))
	in.Start()
	web := testkit.Component(in.Status(), "web")
	if web == nil || web.PID == 0 {
		t.Fatal("no web server")
	}
	snoop := testkit.Build(t, "./internal/hostile/testdata/snoop")
	in.MustRun("attach", "--name", "snoop", "--", snoop, "--pid", fmt.Sprint(web.PID), "--site", site)

	var log string
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(log, "\ndone\n") {
		if time.Now().After(deadline) {
			t.Fatalf("snoop did not finish:\n%s", log)
		}
		b, _ := os.ReadFile(filepath.Join(in.Dir(), "logs", "snoop.log"))
		log = string(b)
		time.Sleep(20 * time.Millisecond)
	}
	st := in.Status()
	webUser, snoopUser := testkit.Component(st, "web").User, testkit.Component(st, "snoop").User
	if webUser == snoopUser || !strings.Contains(webUser, "dynamic") || !strings.Contains(snoopUser, "dynamic") {
		t.Errorf("the apps run as %q and %q: want a dynamic user each", webUser, snoopUser)
	}
	for _, want := range []string{
		"open-fds 0 opened",             // no region, no doorbell, nothing of the other app's
		"signal denied",                 // EPERM
		"write-on-disk denied",          // the site is root's
		"read-through-diskproc ok",      // every app reads beneath the root
		"write-through-diskproc denied", // but writes only under a grant
	} {
		if !strings.Contains(log, "\n"+want+"\n") {
			t.Errorf("snoop's log lacks %q:\n%s", want, log)
		}
	}
	t.Logf("snoop:\n%s", log)
	if strings.Contains(log, "uid 0 ") {
		t.Errorf("snoop ran as root:\n%s", log)
	}
	if b, _ := os.ReadFile(filepath.Join(site, "index.html")); string(b) != "<h1>mine</h1>" {
		t.Errorf("the served file was changed: %q", b)
	}
	if c := testkit.Component(in.Status(), "web"); c == nil || c.State != proto.StateRunning || c.PID != web.PID {
		t.Errorf("the web server was disturbed: %+v", c)
	}
}
