package webserver_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"saturn/apps/webserver"
	"saturn/configs"
	"saturn/internal/testkit"
	"saturn/proto"
)

// The web server as saturn runs it: an app under the supervisor, its files
// read through diskproc and its sockets in netproc, driven through the CLI
// and real clients.

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// mainJob starts the built-in configuration, with the kernel backend and a
// free port instead of 8080 so that tests can run side by side.
func mainJob(t *testing.T) (*testkit.Instance, string, string) {
	t.Helper()
	port := freePort(t)
	cfg := string(configs.DefaultTOML())
	cfg = strings.Replace(cfg, `backend = "auto"            # "usertcp"`, `backend = "kernel"          # "usertcp"`, 1)
	cfg = strings.Replace(cfg, `":8080"`, fmt.Sprintf(`"127.0.0.1:%d"`, port), 1)
	if !strings.Contains(cfg, fmt.Sprint(port)) || !strings.Contains(cfg, `backend = "kernel"`) {
		t.Fatalf("could not adapt the default config:\n%s", cfg)
	}
	in := testkit.NewInstance(t, cfg)
	out := in.MustRun("supervisor", "start", "--detach", "--config", in.Config)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	if !strings.Contains(out, "open "+url) {
		t.Fatalf("start does not print the URL %s:\n%s", url, out)
	}
	in.Status()
	return in, url, out
}

func TestMainJob(t *testing.T) {
	in, url, _ := mainJob(t)

	// curl, as a new user would.
	if _, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command("curl", "-sS", "--max-time", "10", url).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "saturn is serving") {
			t.Fatalf("curl %s: %v\n%s", url, err, out)
		}
	} else {
		t.Log("curl is not installed; fetching with Go's client only")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		return webserver.GetWhole(t, client, url+strings.TrimPrefix(path, "/"), hdr...)
	}
	resp, body := get("/files/100k.bin")
	if resp.StatusCode != 200 || !bytes.Equal(body, configs.SamplePattern(100<<10)) {
		t.Fatalf("100k.bin: %d, %d bytes, content differs: %v", resp.StatusCode, len(body), !bytes.Equal(body, configs.SamplePattern(100<<10)))
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := get("/files/100k.bin", "If-None-Match", etag); resp.StatusCode != 304 {
		t.Errorf("conditional GET: %d, want 304", resp.StatusCode)
	}
	resp, body = get("/files/100k.bin", "Range", "bytes=1000-1999")
	if resp.StatusCode != 206 || !bytes.Equal(body, configs.SamplePattern(100 << 10)[1000:2000]) {
		t.Errorf("range: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, _ := get("/nope.html"); resp.StatusCode != 404 {
		t.Errorf("missing file: %d", resp.StatusCode)
	}
	if resp, body := get("/files/"); resp.StatusCode != 200 || !strings.Contains(string(body), "1k.bin") {
		t.Errorf("listing: %d %q", resp.StatusCode, body)
	}

	// Raw: traversal, a bad method, oversized headers, and pipelining.
	raw := func(req string) string {
		t.Helper()
		c, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		out, _ := io.ReadAll(c)
		return string(out)
	}
	if out := raw("GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(out, "HTTP/1.1 400") && !strings.HasPrefix(out, "HTTP/1.1 404") {
		t.Errorf("traversal answered %q", firstLine(out))
	}
	if out := raw("DELETE /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(out, "HTTP/1.1 405") {
		t.Errorf("DELETE answered %q", firstLine(out))
	}
	big := "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20000) + "\r\n\r\n"
	if out := raw(big); !strings.HasPrefix(out, "HTTP/1.1 431") {
		t.Errorf("oversized header answered %q", firstLine(out))
	}
	out := raw("GET /about.html HTTP/1.1\r\nHost: x\r\n\r\nHEAD /style.css HTTP/1.1\r\nHost: x\r\n\r\nGET /files/1k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if n := strings.Count(out, "HTTP/1.1 200 OK"); n != 3 {
		t.Errorf("pipelined: %d responses of 3", n)
	}

	// The load generator, through saturn's stack: every request answered.
	lg := in.MustRun("app", "loadgen", url+"files/1k.bin", "--requests", "500", "-c", "8", "--json")
	var rep struct {
		Requests int64            `json:"requests"`
		Errors   map[string]int64 `json:"errors"`
	}
	if err := json.Unmarshal([]byte(lg), &rep); err != nil {
		t.Fatalf("loadgen --json: %v\n%s", err, lg)
	}
	errs := int64(0)
	for _, n := range rep.Errors {
		errs += n
	}
	if rep.Requests != 500 || errs != 0 {
		t.Fatalf("loadgen: %d requests, %d errors, want 500 and 0\n%s", rep.Requests, errs, lg)
	}
	// While it ran, it was an app of the instance; it is gone now.
	st := in.Status()
	for _, c := range st.Components {
		if strings.HasPrefix(c.Name, "loadgen") {
			t.Errorf("loadgen still attached after it exited: %+v", c)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// TestWebRestartRefusesNothing kills the web server repeatedly while
// clients fetch in a tight loop: its listener stays in netproc, so no
// connection is refused; requests cut off by a kill fail cleanly.
func TestWebRestartRefusesNothing(t *testing.T) {
	in, url, _ := mainJob(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	var refused, served, cut atomic.Int64
	halt := inLoop(4, func() {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			if strings.Contains(err.Error(), "refused") {
				refused.Add(1)
			}
			return
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /files/1k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			if err == nil && bytes.Equal(b, configs.SamplePattern(1<<10)) {
				served.Add(1)
			} else {
				cut.Add(1)
			}
		} else {
			cut.Add(1)
		}
		c.Close()
	})
	defer halt() // when a wait below fails
	// Between kills, the clients get some requests through, so that each
	// kill meets them mid-loop.
	const kills, between = 3, 20
	servedSome := func() {
		t.Helper()
		from := served.Load()
		testkit.Eventually(t, 10*time.Second, func() bool { return served.Load() >= from+between },
			"%d more requests served (served %d)", between, served.Load())
	}
	for i := 1; i <= kills; i++ {
		servedSome()
		in.MustRun("kill", "web")
		if _, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
			c := testkit.Component(st, "web")
			return c.Restarts == i && c.State == proto.StateRunning
		}); !ok {
			t.Fatalf("web not back after kill %d", i)
		}
	}
	servedSome()
	halt()
	t.Logf("served %d, cut off by kills %d, refused %d", served.Load(), cut.Load(), refused.Load())
	if refused.Load() != 0 {
		t.Fatalf("%d connections refused across %d restarts of the web server", refused.Load(), kills)
	}
	if served.Load() == 0 {
		t.Fatal("nothing served")
	}
}

func TestMain(m *testing.M) { testkit.Main(m) }
