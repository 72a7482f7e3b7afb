package hostile_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/internal/testkit"
	"saturn/proto"
)

// TestComponentsRunAsTheirOwnUsers: with the supervisor root, each app
// runs as a user of its own and each server switches to one once set up,
// with no capability left (docs/security.md). So a hostile app cannot open
// another app's or a server's shared-memory regions through /proc/PID/fd,
// read their memory, signal them, or write the files the web server
// serves, on disk or through diskproc (where it only reads without a
// disk_write grant). The web server keeps serving the file. On the kernel
// backend and, where the machine has TUN, on usertcp, whose netproc gives
// up its privileges only after making its TUN device and namespace.
func TestComponentsRunAsTheirOwnUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: components run as users of their own only when the supervisor is root")
	}
	t.Run("kernel", func(t *testing.T) { runAsOwnUsers(t, `backend = "kernel"`) })
	t.Run("usertcp", func(t *testing.T) {
		if why := testkit.NoTUN(); why != "" {
			t.Skip(why)
		}
		pid := os.Getpid()
		runAsOwnUsers(t, fmt.Sprintf("backend = \"usertcp\"\nnetns = \"sathu%d\"\naddress = \"10.%d.%d.2/24\"", pid%100000, 200+pid%50, 100+pid%100))
	})
}

func runAsOwnUsers(t *testing.T, netproc string) {
	kernel := strings.Contains(netproc, `"kernel"`)
	site := t.TempDir()
	os.Chmod(site, 0o755) // diskproc's own user reads it
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>mine</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := testkit.FreePort(t)
	cfg := strings.Replace(fmt.Sprintf(config, site, port), `backend = "kernel"`, netproc, 1)
	low := 0
	if kernel {
		// netproc on the kernel backend keeps CAP_NET_BIND_SERVICE, and
		// only that, so an app granted a port below 1024 gets it.
		low = freeLowPort(t)
		cfg += fmt.Sprintf(`
[[app]]
name = "web-low"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", "127.0.0.1:%d"]
listen = ["127.0.0.1:%d"]
`, low, low)
	}
	in := testkit.NewInstance(t, cfg)
	in.Start()
	st := in.Status()
	pids := map[string]int{}
	uids := map[string]string{}
	for _, name := range []string{"netproc", "diskproc", "web"} {
		c := testkit.Component(st, name)
		if c == nil || c.PID == 0 {
			t.Fatalf("no %s in status", name)
		}
		pids[name] = c.PID
		var keeps uint64
		if name == "netproc" && kernel {
			keeps = 1 << unix.CAP_NET_BIND_SERVICE
		}
		uid, creds := credentials(t, c.PID, keeps)
		t.Logf("%s runs as %s: %s", name, c.User, creds)
		if !strings.Contains(c.User, "dynamic") || !strings.HasPrefix(c.User, uid+":") {
			t.Errorf("%s runs as uid %s, status says %q: want its own dynamic user", name, uid, c.User)
		}
		if uid == "0" {
			t.Errorf("%s runs as root", name)
		}
		for other, ou := range uids {
			if ou == uid {
				t.Errorf("%s and %s share uid %s", name, other, uid)
			}
		}
		uids[name] = uid
	}

	if low != 0 {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", low))
		if err != nil {
			t.Fatalf("the app granted port %d: %v", low, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "<h1>mine</h1>" {
			t.Errorf("port %d: %d %q", low, resp.StatusCode, body)
		}
	}

	snoop := testkit.Build(t, "./internal/hostile/testdata/snoop")
	args := []string{"attach", "--name", "snoop", "--", snoop, "--site", site}
	for name, pid := range pids {
		args = append(args, "--pid", fmt.Sprintf("%s=%d", name, pid))
	}
	in.MustRun(args...)

	var log string
	if !testkit.Until(20*time.Second, func() bool {
		log = in.Log("snoop")
		return strings.Contains(log, "\ndone\n")
	}) {
		t.Fatalf("snoop did not finish:\n%s", log)
	}
	t.Logf("snoop:\n%s", log)
	if u := testkit.Component(in.Status(), "snoop").User; !strings.Contains(u, "dynamic") || strings.HasPrefix(u, uids["web"]+":") {
		t.Errorf("snoop runs as %q: want a dynamic user of its own", u)
	}
	want := []string{
		"write-on-disk denied",          // the site is root's
		"read-through-diskproc ok",      // every app reads beneath the root
		"write-through-diskproc denied", // but writes only under a grant
	}
	for name := range pids {
		want = append(want,
			"open-fds "+name+" 0 opened", // no region, no doorbell, nothing of another's
			"open-mem "+name+" denied",   // nor its memory
			"signal "+name+" denied")     // EPERM
	}
	for _, w := range want {
		if !strings.Contains(log, "\n"+w+"\n") {
			t.Errorf("snoop's log lacks %q", w)
		}
	}
	if strings.Contains(log, "uid 0 ") {
		t.Errorf("snoop ran as root")
	}
	if b, _ := os.ReadFile(filepath.Join(site, "index.html")); string(b) != "<h1>mine</h1>" {
		t.Errorf("the served file was changed: %q", b)
	}
	st = in.Status()
	for name, pid := range pids {
		if c := testkit.Component(st, name); c == nil || c.State != proto.StateRunning || c.PID != pid {
			t.Errorf("%s was disturbed: %+v", name, c)
		}
	}
}

// credentials reads a process's uids and capability sets from /proc: its
// real uid, and a summary; it fails the test if the uids differ from one
// another or any capability set but the bounding one holds other than
// keeps.
func credentials(t *testing.T, pid int, keeps uint64) (uid, summary string) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var parts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(val)
		switch key {
		case "Uid", "Gid":
			parts = append(parts, key+" "+strings.Join(fields, ","))
			for _, id := range fields {
				if id != fields[0] {
					t.Errorf("pid %d: %s %v: real, effective, saved and file ids differ", pid, key, fields)
				}
			}
			if key == "Uid" {
				uid = fields[0]
			}
		case "CapInh", "CapPrm", "CapEff", "CapAmb":
			parts = append(parts, key+" "+val)
			// An ambient capability is in the inheritable set too.
			if v, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64); err != nil || v != keeps {
				t.Errorf("pid %d: %s is %s: want %x", pid, key, strings.TrimSpace(val), keeps)
			}
		}
	}
	return uid, strings.Join(parts, "; ")
}

// freeLowPort finds a port below 1024 that nothing listens on, on
// 127.0.0.1.
func freeLowPort(t *testing.T) int {
	for p := 1023; p > 900; p-- {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Skip("no free port below 1024 on 127.0.0.1")
	return 0
}

// TestDiskprocRootItsUserCannotRead: diskproc runs as its own user, so a
// root only root may read would serve nothing; the start fails at once and
// says what to do, rather than every request failing later.
func TestDiskprocRootItsUserCannotRead(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: diskproc runs as a user of its own only when the supervisor is root")
	}
	site := filepath.Join(t.TempDir(), "site")
	if err := os.Mkdir(site, 0o700); err != nil {
		t.Fatal(err)
	}
	in := testkit.NewInstance(t, fmt.Sprintf(config, site, testkit.FreePort(t)))
	out, err := in.Run("supervisor", "start", "--detach", "--config", in.Config)
	if err == nil {
		t.Fatalf("the instance started with a root diskproc's user cannot read:\n%s", out)
	}
	for _, want := range []string{"cannot read its root " + site, "chmod o+rx", "[diskproc] user"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error lacks %q:\n%s", want, out)
		}
	}
}
