package netproc_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// longRun asks the resume tests for their long sizes (1 GiB), as does
// SATURN_LONG=1.
var longRun = flag.Bool("long", false, "run the long variants (TestUserTCPResume*: 1 GiB)")

// streamSize is a test stream's size: short, or 1 GiB in the long run.
func streamSize(short int64) int64 {
	if *longRun || os.Getenv("SATURN_LONG") == "1" {
		return 1 << 30
	}
	return short
}

// pattern is the byte at stream offset i of the test streams: not periodic
// at any buffer size, so that a byte skipped or repeated shows.
func pattern(b []byte, off int64) {
	for i := range b {
		x := uint64(off + int64(i))
		x ^= x >> 17
		x *= 0x9e3779b97f4a7c15
		b[i] = byte(x >> 56)
	}
}

// resumeInstance starts an instance on usertcp (resume on, the default),
// its namespace ns (testkit.InstanceNamespace) and address prefix, and the
// rest of the config.
func resumeInstance(t *testing.T, ns, prefix, rest string) *testkit.Instance {
	t.Helper()
	policy := "backoff = \"20ms\"\nmax_backoff = \"40ms\"\n"
	in := testkit.NewInstance(t, fmt.Sprintf("[netproc]\nbackend = \"usertcp\"\nnetns = %q\naddress = %q\n%s%s", ns, prefix, policy, rest))
	t.Cleanup(func() {
		if testkit.NamespaceExists(ns) {
			in.Run("supervisor", "stop")
			testkit.RemoveNamespace(ns)
		}
	})
	return in
}

// killNetproc kills netproc and waits for its next incarnation to run.
func killNetproc(t *testing.T, in *testkit.Instance, restarts int) time.Duration {
	t.Helper()
	start := time.Now()
	in.MustRun("kill", "netproc")
	if _, ok := in.WaitFor(20*time.Second, func(st *proto.StatusReply) bool {
		c := testkit.Component(st, "netproc")
		return c.State == proto.StateRunning && c.Restarts == restarts
	}); !ok {
		t.Fatalf("netproc not back after kill %d", restarts)
	}
	return time.Since(start)
}

// TestUserTCPResumeDownload is issue 8's "Beyond": a download from the web
// server over usertcp, netproc killed in the middle, and every byte arrives
// exactly, on the same connection, from the same web server process. The
// client (a kernel socket in saturn's namespace) stops reading a quarter
// of the way in, so that the kill lands with the server's sends in flight
// and its buffers full; it reads on once netproc is back. 128 MiB, or
// 1 GiB with -long or SATURN_LONG=1.
func TestUserTCPResumeDownload(t *testing.T) {
	testkit.NeedTUN(t)
	size := streamSize(128 << 20)
	ns := testkit.InstanceNamespace(t, "satres")
	root := filepath.Join(t.TempDir(), "site")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	want := writePatternFile(t, filepath.Join(root, "big.bin"), size)
	if err := os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const addr = "10.94.0.2:8080"
	in := resumeInstance(t, ns, "10.94.0.2/24", fmt.Sprintf(`
[diskproc]
root = %q
[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", ":8080"]
`, root))
	in.Start()
	waitHTTP(t, ns, addr, "/hello.txt", 20*time.Second)
	webPID := testkit.Component(in.Status(), "web").PID

	c, err := testkit.DialInNamespace(ns, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	fmt.Fprintf(c, "GET /big.bin HTTP/1.1\r\nHost: saturn\r\nConnection: close\r\n\r\n")
	br := bufio.NewReaderSize(c, 256<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != size {
		t.Fatalf("GET /big.bin: %s, %d bytes; want 200, %d", resp.Status, resp.ContentLength, size)
	}
	h := sha256.New()
	n, err := io.CopyN(h, resp.Body, size/4)
	if err != nil {
		t.Fatalf("the first quarter: %d bytes, %v", n, err)
	}
	down := killNetproc(t, in, 1)
	t.Logf("netproc killed after %d MiB and running again %v later", n>>20, down.Round(time.Millisecond))
	start := time.Now()
	m, err := io.Copy(h, resp.Body)
	n += m
	if err != nil || n != size {
		t.Fatalf("after the kill: %d of %d bytes, %v", n, size, err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		t.Fatalf("the %d bytes arrived with SHA-256 %x; the file's is %x", size, got, want)
	}
	t.Logf("the other %d MiB arrived in %v, byte-exact", m>>20, time.Since(start).Round(time.Millisecond))
	if web := testkit.Component(in.Status(), "web"); web.PID != webPID || web.Restarts != 0 {
		t.Errorf("the web server did not ride out netproc's death: %+v", web)
	}
	checkResumed(t, in, 1)
	in.MustRun("supervisor", "stop")
}

// echoThroughKills writes size bytes of pattern to c, an echo server's
// connection, in chunks of chunk bytes, reads them back byte-exact while
// netproc is killed twice (after a third and two thirds of the stream),
// and checks the stream ends cleanly: no error on either side.
func echoThroughKills(t *testing.T, in *testkit.Instance, c net.Conn, size int64, chunk int) {
	t.Helper()
	werr := make(chan error, 1)
	go func() {
		buf := make([]byte, chunk)
		for off := int64(0); off < size; off += int64(len(buf)) {
			b := buf[:min(int64(len(buf)), size-off)]
			pattern(b, off)
			if _, err := c.Write(b); err != nil {
				werr <- err
				return
			}
		}
		werr <- c.(*net.TCPConn).CloseWrite()
	}()
	got := make([]byte, chunk)
	want := make([]byte, len(got))
	var n int64
	kills := 0
	for n < size {
		k, err := c.Read(got)
		pattern(want[:k], n)
		if !bytes.Equal(got[:k], want[:k]) {
			t.Fatalf("echoed bytes differ at offset %d..%d: %s", n, n+int64(k), diagnose(got[:k], n))
		}
		n += int64(k)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", n, size, err)
		}
		if kills < 2 && n > int64(kills+1)*size/3 {
			kills++
			d := killNetproc(t, in, kills)
			t.Logf("kill %d after %d MiB: netproc running again %v later", kills, n>>20, d.Round(time.Millisecond))
		}
	}
	if err := <-werr; err != nil {
		t.Fatalf("sending: %v", err)
	}
	if k, err := c.Read(got); k != 0 || err != io.EOF {
		t.Errorf("after the stream: %d bytes, %v; want the end", k, err)
	}
}

// TestUserTCPResumeEcho streams through examples/echo (receive and send,
// io.Copy on a TCPConn) while netproc is killed twice: the bytes come back
// exactly, on the same connection, and echo never sees an error.
func TestUserTCPResumeEcho(t *testing.T) {
	testkit.NeedTUN(t)
	size := streamSize(64 << 20)
	ns := testkit.InstanceNamespace(t, "satrese")
	const addr = "10.93.0.2:7007"
	in := resumeInstance(t, ns, "10.93.0.2/24", "")
	echo := testkit.Build(t, "./examples/echo")
	in.Start()
	in.MustRun("attach", "--name", "echo", "--", echo, "--listen", ":7007")
	waitEchoNS(t, ns, addr, 10*time.Second)

	c, err := testkit.DialInNamespace(ns, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	echoThroughKills(t, in, c, size, 256<<10)
	if logs := in.MustRun("logs", "echo", "-n", "0"); strings.Contains(logs, "reset") || strings.Count(logs, "listening on") != 1 {
		t.Errorf("echo saw the deaths:\n%s", logs)
	}
	checkResumed(t, in, 2)
	in.MustRun("supervisor", "stop")
}

// writePatternFile writes size bytes of pattern to path and returns their
// SHA-256.
func writePatternFile(t *testing.T, path string, size int64) []byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), size-off)]
		pattern(b, off)
		h.Write(b)
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	return h.Sum(nil)
}

// waitHTTP waits until GET path answers 200 from inside ns.
func waitHTTP(t *testing.T, ns, addr, path string, within time.Duration) {
	t.Helper()
	var err error
	if !testkit.Until(within, func() bool {
		err = getOnce(ns, addr, path)
		return err == nil
	}) {
		t.Fatalf("GET %s from %s: %v", path, ns, err)
	}
}

// getOnce makes one GET path from inside ns, and wants a 200.
func getOnce(ns, addr, path string) error {
	c, err := testkit.DialInNamespace(ns, addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: saturn\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}

// diagnose says where the stream bytes b, read at offset off, came from:
// the first one that differs from the pattern, and the stream offset its
// run of bytes matches (a skip or a repeat), if one nearby does.
func diagnose(b []byte, off int64) string {
	want := make([]byte, len(b))
	pattern(want, off)
	i := 0
	for i < len(b) && b[i] == want[i] {
		i++
	}
	run := b[i:min(len(b), i+64)]
	probe := make([]byte, len(run))
	for d := int64(-8 << 20); d <= 8<<20; d++ {
		at := off + int64(i) + d
		if at < 0 {
			continue
		}
		pattern(probe, at)
		if bytes.Equal(probe, run) {
			return fmt.Sprintf("first difference at %d; the bytes from there are the stream's from %d (%+d)", off+int64(i), at, d)
		}
	}
	return fmt.Sprintf("first difference at %d; the bytes from there match no offset within 8 MiB (% x)", off+int64(i), run[:min(16, len(run))])
}

// checkResumed checks that each of the kills netproc went through ended
// with its next incarnation handing a connection back to its app, rather
// than the transfer having been served around the deaths.
func checkResumed(t *testing.T, in *testkit.Instance, kills int) {
	t.Helper()
	logs := in.MustRun("logs", "netproc", "-n", "0")
	if n := strings.Count(logs, "app's connections resumed"); n != kills {
		t.Errorf("netproc resumed an app's connections %d times; want %d (one per kill)", n, kills)
	}
	if strings.Contains(logs, "reset connections no app claimed") {
		t.Errorf("netproc reset connections nobody claimed")
	}
}
