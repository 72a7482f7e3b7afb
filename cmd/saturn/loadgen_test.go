package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"saturn/internal/testkit"
)

// progressRE is one refresh of the load generator's progress line.
var progressRE = regexp.MustCompile(`\x1b\[K\[[= ]*\]\s+\d+%\s+(\S+)\s+(\d+) requests\s+(\d+) req/s( now)?\s+(\d+) errors`)

// TestLoadgenProgressAndReport runs `saturn app loadgen --kernel` as a user
// would, on a terminal (a pseudo-terminal): the progress line is redrawn
// in place with numbers that move, and --report writes a page whose report
// is the one printed. With its output on pipes, there is no progress line.
func TestLoadgenProgressAndReport(t *testing.T) {
	bin := testkit.Saturn(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	dir := t.TempDir()

	t.Run("terminal", func(t *testing.T) {
		page := filepath.Join(dir, "run.html")
		cmd := exec.Command(bin, "app", "loadgen", "--kernel", "-c", "2", "-d", "1500ms", "--report", page, srv.URL+"/")
		tty, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		_, err = io.Copy(&out, tty) // until the program exits (EIO)
		tty.Close()
		if werr := cmd.Wait(); werr != nil {
			t.Fatalf("loadgen: %v\n%s", werr, out.String())
		}
		if err != nil && !errors.Is(err, syscall.EIO) {
			t.Fatal(err)
		}
		var elapsed []time.Duration
		var requests []int
		finals := 0
		for _, m := range progressRE.FindAllStringSubmatch(out.String(), -1) {
			if m[4] == "" {
				finals++
				continue
			}
			n, _ := strconv.Atoi(m[2])
			d, err := time.ParseDuration(m[1])
			if err != nil {
				t.Fatalf("elapsed %q: %v", m[1], err)
			}
			elapsed, requests = append(elapsed, d), append(requests, n)
		}
		if len(requests) < 3 || finals != 1 {
			t.Fatalf("%d progress refreshes and %d final lines, want 3 or more and 1:\n%q", len(requests), finals, out.String())
		}
		for i := 1; i < len(requests); i++ {
			if requests[i] < requests[i-1] || elapsed[i] < elapsed[i-1] {
				t.Errorf("refresh %d: %v %d after %v %d", i, elapsed[i], requests[i], elapsed[i-1], requests[i-1])
			}
		}
		if requests[0] == requests[len(requests)-1] || elapsed[0] == elapsed[len(elapsed)-1] {
			t.Errorf("the numbers never moved: elapsed %v, requests %v", elapsed, requests)
		}
		if strings.Count(out.String(), "\r") < len(requests) {
			t.Errorf("the line is not rewritten in place:\n%q", out.String())
		}

		// The page holds the report that was printed.
		printed := regexp.MustCompile(`requests\s+(\d+) \(`).FindStringSubmatch(out.String())
		html, err := os.ReadFile(page)
		if err != nil || printed == nil {
			t.Fatalf("report %s: %v; printed %q", page, err, out.String())
		}
		js := regexp.MustCompile(`(?s)<script type="application/json" id="loadgen-report">(.*?)</script>`).FindSubmatch(html)
		if js == nil || !bytes.Contains(html, []byte(`<svg id="percentiles"`)) {
			t.Fatalf("the page has no report or no plot:\n%s", html)
		}
		var rep struct {
			Requests int64 `json:"requests"`
		}
		if err := json.Unmarshal(js[1], &rep); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(rep.Requests) != printed[1] {
			t.Errorf("the page reports %d requests, the terminal %s", rep.Requests, printed[1])
		}
	})

	t.Run("pipes", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "app", "loadgen", "--kernel", "-c", "2", "-d", "500ms", srv.URL+"/")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("loadgen: %v\n%s%s", err, stdout.String(), stderr.String())
		}
		if stderr.Len() != 0 || strings.Contains(stdout.String(), "\r") || !strings.Contains(stdout.String(), "requests") {
			t.Errorf("not on a terminal: stdout %q, stderr %q; want the report alone", stdout.String(), stderr.String())
		}
	})

	t.Run("no run, no page", func(t *testing.T) {
		page := filepath.Join(dir, "never.html")
		out, err := exec.Command(bin, "app", "loadgen", "--kernel", "-n", "1", "--report", page, "ftp://127.0.0.1/").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "http:// URL") {
			t.Errorf("a URL loadgen cannot run: %v\n%s", err, out)
		}
		if _, err := os.Stat(page); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a run that never ran left %s: %v", page, err)
		}
	})

	t.Run("bad report path", func(t *testing.T) {
		out, err := exec.Command(bin, "app", "loadgen", "--kernel", "-n", "1", "--report", filepath.Join(dir, "no", "such", "dir.html"), srv.URL+"/").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--report") || strings.Contains(string(out), "requests") {
			t.Errorf("a report that cannot be written: %v\n%s", err, out)
		}
	})
}
