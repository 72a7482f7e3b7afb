package webserver_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"saturn/proto"
)

// TestGracefulRestartLosesNothing: `saturn restart web`, then `saturn
// upgrade web` to another copy of the program, under two
// kinds of load at once, the load generator's keep-alive connections (a
// closed loop: a request always on its way) and clients that open a new
// connection per request, and not one request fails. The old web server
// leaves its listener to netproc (appproc's TCPListener.Leave), so new
// connections queue rather than being refused; it answers what each
// keep-alive connection sends within its shutdown grace, with Connection:
// close, so clients reconnect, to the new incarnation.
func TestGracefulRestartLosesNothing(t *testing.T) {
	in, url, _ := mainJob(t)
	file := url + "files/1k.bin"

	load := in.Command("app", "loadgen", "--kernel", "--json", "-c", "8", "-d", "5s", file)
	var out strings.Builder
	load.Stdout = &out
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}

	host := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	var perConn, perConnFailed atomic.Int64
	var failures sync.Map
	stopClients := inLoop(4, func() {
		if err := oneRequest(host, "/files/1k.bin"); err != nil {
			perConnFailed.Add(1)
			failures.Store(err.Error(), true)
		}
		perConn.Add(1)
	})
	defer stopClients() // also when the test fails early

	// The second event is an upgrade: a restart from another copy of the
	// program, which reports its blackout.
	upgraded := filepath.Join(t.TempDir(), "saturn-next")
	copyFile(t, in.Bin, upgraded)
	os.Chmod(upgraded, 0o755)
	os.Chmod(filepath.Dir(upgraded), 0o755) // web runs as its own user
	for i := range 2 {
		time.Sleep(1500 * time.Millisecond) // load on the old incarnation, then the restart
		before := in.Status()
		if i == 0 {
			in.MustRun("restart", "web")
		} else {
			out := in.MustRun("upgrade", "web", "--binary", upgraded)
			var ms float64
			if _, err := fmt.Sscanf(out[strings.Index(out, "blackout ")+len("blackout "):], "%gms", &ms); err != nil || ms <= 0 || ms > 5000 {
				t.Errorf("upgrade's report %q: want a blackout in milliseconds, under 5 s", out)
			}
		}
		st := in.Status()
		b, a := componentPID(before, "web"), componentPID(st, "web")
		if a == 0 || a == b {
			t.Fatalf("event %d: web pid %d then %d", i+1, b, a)
		}
		if i == 1 {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", a)); exe != upgraded {
				t.Errorf("after the upgrade web runs %q, want %q", exe, upgraded)
			}
		}
	}
	if err := load.Wait(); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out.String())
	}
	stopClients()

	var rep struct {
		Requests int64            `json:"requests"`
		Errors   map[string]int64 `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("loadgen's report: %v\n%s", err, out.String())
	}
	t.Logf("keep-alive: %d requests, errors %v; a connection per request: %d requests, %d failed", rep.Requests, rep.Errors, perConn.Load(), perConnFailed.Load())
	for kind, n := range rep.Errors {
		if n != 0 {
			t.Errorf("keep-alive load: %d %s errors across two graceful restarts", n, kind)
		}
	}
	if rep.Requests == 0 || perConn.Load() == 0 {
		t.Errorf("no load got through: %d and %d requests", rep.Requests, perConn.Load())
	}
	if perConnFailed.Load() != 0 {
		var errs []string
		failures.Range(func(k, _ any) bool { errs = append(errs, k.(string)); return len(errs) < 5 })
		t.Errorf("a connection per request: %d of %d failed across two graceful restarts: %v", perConnFailed.Load(), perConn.Load(), errs)
	}
}

// inLoop runs fn over and over on n goroutines until the returned stop is
// called (once or more), which waits for them.
func inLoop(n int, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
					fn()
				}
			}
		}()
	}
	var once sync.Once
	return func() { once.Do(func() { close(done) }); wg.Wait() }
}

// oneRequest opens a connection, asks for path with Connection: close and
// reads the whole response: what a client making one request does.
func oneRequest(host, path string) error {
	c, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != 200 || n != 1024 {
		return fmt.Errorf("status %d, %d bytes, %v", resp.StatusCode, n, err)
	}
	return nil
}

func componentPID(st *proto.StatusReply, name string) int {
	for _, c := range st.Components {
		if c.Name == name {
			return c.PID
		}
	}
	return 0
}
