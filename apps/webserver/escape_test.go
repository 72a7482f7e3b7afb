package webserver

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"saturn/diskproc"
	"saturn/internal/disktest"
	"saturn/internal/testkit"
	"saturn/proto"
)

// levelCounter is a slog.Handler that counts records by level and keeps
// their messages, for tests that check what the server logs.
type levelCounter struct {
	mu   sync.Mutex
	n    map[slog.Level]int
	msgs []string
}

func newLevelCounter() *levelCounter { return &levelCounter{n: map[slog.Level]int{}} }

func (h *levelCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *levelCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[r.Level]++
	h.msgs = append(h.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (h *levelCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *levelCounter) WithGroup(string) slog.Handler      { return h }

func (h *levelCounter) count(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[l]
}

// errFS fails Open and Stat of the names in errs with their error, wrapped
// as an fs.PathError the way appproc wraps diskproc's, and serves the rest
// from testFS.
type errFS struct {
	fstest.MapFS
	errs map[string]error
}

func (f errFS) Open(name string) (fs.File, error) {
	if err, ok := f.errs[name]; ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return f.MapFS.Open(name)
}

func (f errFS) Stat(name string) (fs.FileInfo, error) {
	if err, ok := f.errs[name]; ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return f.MapFS.Stat(name)
}

// TestOpenErrorStatus: the errors a sandboxed root answers for a name
// that leads out of it (what diskproc's sandbox returns: EXDEV with
// diskproc's reason for a link out of the root, ELOOP for a loop or a
// /proc-style link) are 404, and are not logged as errors however often a
// client asks; the server's own failures are still 500 and logged.
func TestOpenErrorStatus(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		logged bool // as an error, once per request
	}{
		{"escape", &proto.DiskError{Errno: syscall.EXDEV, Reason: proto.ReasonEscape}, 404, false},
		{"exdev", syscall.EXDEV, 404, false},
		{"loop", syscall.ELOOP, 404, false},
		{"access", syscall.EACCES, 403, false},
		{"device", &proto.DiskError{Errno: syscall.EPERM, Reason: proto.ReasonNotRegular}, 403, false},
		{"missing", syscall.ENOENT, 404, false},
		{"notdir", syscall.ENOTDIR, 404, false},
		{"io", syscall.EIO, 500, true},
	}
	errs := map[string]error{}
	for _, tt := range tests {
		errs[tt.name] = tt.err
		errs["dir/"+tt.name] = tt.err
	}
	for _, cache := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("cache=%v", cache), func(t *testing.T) {
			log := newLevelCounter()
			_, addr := startServer(t, Config{Root: errFS{testFS(), errs}, ErrorLog: slog.New(log), OpenFileCache: cache, Listing: true})
			const repeat = 5
			for _, tt := range tests {
				before := log.count(slog.LevelError)
				for _, target := range []string{"/" + tt.name, "/dir/" + tt.name, "/" + tt.name + "/"} {
					var req strings.Builder
					for range repeat {
						req.WriteString("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
					}
					rs := parseResponses(t, exchange(t, addr, req.String()))
					if len(rs) != repeat {
						t.Fatalf("%s: %d responses, want %d", target, len(rs), repeat)
					}
					for _, r := range rs {
						if r.StatusCode != tt.status {
							t.Errorf("%s (%v): status %d, want %d", target, tt.err, r.StatusCode, tt.status)
						}
					}
				}
				got, want := log.count(slog.LevelError)-before, 0
				if tt.logged {
					want = 3 * repeat
				}
				if got != want {
					t.Errorf("%s (%v): %d errors logged, want %d", tt.name, tt.err, got, want)
				}
			}
		})
	}
}

// siteWithEscapes makes a served root (site) beside a file outside it,
// with symbolic links that lead out in every way a site's author or an
// attacker with write access to it could set one up, and one that stays
// inside. It returns the root.
func siteWithEscapes(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "site")
	for name, data := range map[string]string{
		"index.html":    "<h1>home</h1>\n",
		"hello.txt":     "hello\n",
		"sub/a.txt":     "a\n",
		"../secret.txt": "outside the root\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"passwd":      "/etc/passwd",                    // absolute, out
		"etc":         "/etc",                           // a folder out
		"secret.txt":  "../secret.txt",                  // relative, out
		"sub/deep":    "../../secret.txt",               // from a subfolder
		"sub/up":      "..",                             // the root itself: fine
		"loop":        "loop",                           // round in a loop
		"self":        "/proc/self/root/etc/passwd",     // through a magic link
		"inside.txt":  "hello.txt",                      // stays inside: served
		"subdir-link": "sub",                            // a folder inside: served
		"indirect":    "sub/deep",                       // inside, to a link out
		"abs-inside":  filepath.Join(root, "hello.txt"), // absolute, even to inside: out
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// escapeCases are requests for siteWithEscapes's root and their statuses.
var escapeCases = []struct {
	target string
	status int
}{
	{"/passwd", 404},
	{"/etc/passwd", 404},
	{"/etc/", 404},
	{"/etc", 404},
	{"/secret.txt", 404},
	{"/sub/deep", 404},
	{"/loop", 404},
	{"/self", 404},
	{"/indirect", 404},
	{"/abs-inside", 404},
	{"/sub/up/passwd", 404},
	{"/inside.txt", 200},
	{"/subdir-link/a.txt", 200},
	{"/sub/up/hello.txt", 200},
	{"/hello.txt", 200},
}

// checkEscapes asks the server at addr for every escape case, and fails t
// on a status other than the case's or a response that shows a file from
// outside the root.
func checkEscapes(t *testing.T, addr string) {
	t.Helper()
	for _, c := range escapeCases {
		out := exchange(t, addr, "GET "+c.target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		rs := parseResponses(t, out)
		if len(rs) != 1 || rs[0].StatusCode != c.status {
			t.Errorf("%s: %.80q, want %d", c.target, out, c.status)
		}
		if strings.Contains(out, "root:") || strings.Contains(out, "outside the root") {
			t.Errorf("%s: sent a file from outside the root:\n%s", c.target, out)
		}
	}
}

// TestEscapeThroughDiskproc serves a root holding links out of it through
// a real diskproc (in this process): every link out is 404 and its target
// never sent, nothing is logged as an error, and links that stay inside
// are served. With the open-file cache, a file swapped for a link out
// after it was cached is 404 from its next check on.
func TestEscapeThroughDiskproc(t *testing.T) {
	root := siteWithEscapes(t)
	srv := disktest.Start(t, diskproc.Options{Root: root, Backend: "auto"})
	for _, cache := range []time.Duration{0, time.Nanosecond} {
		t.Run(fmt.Sprintf("cache=%v", cache), func(t *testing.T) {
			log := newLevelCounter()
			_, addr := startServer(t, Config{Root: srv.FS(), IndexFile: "index.html", Listing: true, ErrorLog: slog.New(log), OpenFileCache: cache})
			for range 3 {
				checkEscapes(t, addr)
			}
			if n := log.count(slog.LevelError); n != 0 {
				t.Errorf("%d errors logged: %q", n, log.msgs)
			}
		})
	}

	t.Run("swapped", func(t *testing.T) {
		log := newLevelCounter()
		_, addr := startServer(t, Config{Root: srv.FS(), ErrorLog: slog.New(log), OpenFileCache: time.Nanosecond})
		p := filepath.Join(root, "swap.txt")
		if err := os.WriteFile(p, []byte("swap\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		get := "GET /swap.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
		if rs := parseResponses(t, exchange(t, addr, get)); len(rs) != 1 || rs[0].StatusCode != 200 {
			t.Fatalf("before the swap: %+v", rs)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/etc/passwd", p); err != nil {
			t.Fatal(err)
		}
		out := exchange(t, addr, get)
		if rs := parseResponses(t, out); len(rs) != 1 || rs[0].StatusCode != 404 || strings.Contains(out, "root:") {
			t.Errorf("after the swap: %q", out)
		}
		if n := log.count(slog.LevelError); n != 0 {
			t.Errorf("%d errors logged: %q", n, log.msgs)
		}
	})
}

// TestEscapeE2E: saturn's web server, as the supervisor runs it, over a
// diskproc root holding a link to /etc/passwd and others out of it: 404
// for each, and no error in the web server's log.
func TestEscapeE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts an instance")
	}
	root := siteWithEscapes(t)
	ln := kernelListen(t)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	in := testkit.NewInstance(t, fmt.Sprintf(`
[netproc]
backend = "kernel"

[diskproc]
root = %q

[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", "127.0.0.1:%d", "--access-log", "-"]
`, root, port))
	in.Start()
	if st, ok := in.WaitFor(20*time.Second, func(st *proto.StatusReply) bool {
		c := testkit.Component(st, "web")
		return c != nil && c.State == proto.StateRunning
	}); !ok {
		t.Fatalf("web did not come up: %+v", st)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	checkEscapes(t, addr)
	// The web server's standard output and error share its log file. An
	// error about a request is written before its response, its access
	// log line after it: once the last request's line is there, every
	// error the requests caused is there too.
	marker := "/passwd?end-of-escape-test"
	if out := exchange(t, addr, "GET "+marker+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(out, "HTTP/1.1 404") {
		t.Errorf("%s: %.80q", marker, out)
	}
	var logText string
	testkit.Eventually(t, 10*time.Second, func() bool {
		logText = in.Log("web")
		return strings.Contains(logText, marker)
	}, "the access log line of %s in %s", marker, in.LogFile("web"))
	for _, line := range strings.Split(logText, "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			t.Errorf("web logged: %s", line)
		}
	}
}

// TestStartMissingRoot: a diskproc root the config names must exist; start
// fails naming it rather than creating an empty folder to serve (a typo in
// root would otherwise serve nothing, silently). A root the config leaves
// out (saturn's own, beside the config) and one that sample_site fills are
// still made on first start, as the built-in config needs on a fresh
// machine.
func TestStartMissingRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts instances")
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "site")
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, root, want string
	}{
		{"missing", missing, "diskproc root " + missing + " does not exist ([diskproc] root in "},
		{"a file", file, "diskproc root " + file + " is not a folder"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := testkit.NewInstance(t, fmt.Sprintf("[netproc]\nbackend = \"kernel\"\n[diskproc]\nroot = %q\n", tt.root))
			out, err := in.Run("supervisor", "start", "--detach", "--config", in.Config)
			if err == nil || !strings.Contains(out, tt.want) || !strings.Contains(out, in.Config) {
				t.Fatalf("start: %v\n%s\nwant an error saying %q and naming %s", err, out, tt.want, in.Config)
			}
			if _, err := os.Stat(missing); !os.IsNotExist(err) {
				t.Errorf("the missing root was created: %v", err)
			}
			if left := in.Processes(); len(left) > 0 {
				t.Errorf("processes %v of the instance run after its failed start", left)
			}
		})
	}
	t.Run("sample site", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "new", "site")
		in := testkit.NewInstance(t, fmt.Sprintf("[netproc]\nbackend = \"kernel\"\n[diskproc]\nroot = %q\nsample_site = true\n", root))
		in.Start()
		if _, err := os.Stat(filepath.Join(root, "index.html")); err != nil {
			t.Errorf("sample site not written into a new root: %v", err)
		}
	})
	t.Run("no root in the config", func(t *testing.T) {
		in := testkit.NewInstance(t, "")
		in.Start()
		if fi, err := os.Stat(filepath.Join(filepath.Dir(in.Config), "site")); err != nil || !fi.IsDir() {
			t.Errorf("the default root beside the config: %v", err)
		}
	})
}
