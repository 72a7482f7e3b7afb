package webserver

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"saturn/appproc"
	"saturn/netproc"
	"saturn/netproc/netproctest"
)

// testModTime is the modification time of every file in testFS.
var testModTime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// bigData is larger than the write buffer, so that serving it takes the
// streaming path (and, from a directory on kernel sockets, sendfile).
var bigData = func() []byte {
	b := make([]byte, 100<<10)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}()

func testFiles() map[string]string {
	return map[string]string{
		"index.html":        "<h1>home</h1>\n",
		"hello.txt":         "hello, world\n",
		"digits.txt":        "0123456789",
		"style.CSS":         "body{}",
		"noext":             "plain",
		"sub/index.html":    "<h1>sub</h1>\n",
		"sub/a.txt":         "a\n",
		"bare/b.txt":        "b\n",
		"bare/c dir/d.txt":  "d\n",
		"big.bin":           string(bigData),
		"empty.txt":         "",
		"weird name&<>.txt": "weird\n",
	}
}

// testFS is the served tree as an fstest.MapFS, whose files offer
// io.ReaderAt and io.Seeker but are not kernel-backed.
func testFS() fstest.MapFS {
	m := fstest.MapFS{}
	for name, data := range testFiles() {
		m[name] = &fstest.MapFile{Data: []byte(data), ModTime: testModTime, Mode: 0o644}
	}
	return m
}

// testDirFS writes the tree to a temporary directory and returns os.DirFS
// of it: kernel-backed files, so the sendfile path is exercised.
func testDirFS(t testing.TB) fs.FS {
	dir := t.TempDir()
	for name, data := range testFiles() {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, testModTime, testModTime); err != nil {
			t.Fatal(err)
		}
	}
	return os.DirFS(dir)
}

// startServer serves cfg on a loopback port until the test ends and
// returns the address.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	return startServerOn(t, cfg, kernelListen(t))
}

// listeners are the two kinds of listener the server meets: the kernel's
// sockets, and appproc's over a netproc in the test process (whose
// connections park while idle: see conn.park).
var listeners = []struct {
	name   string
	listen func(testing.TB) net.Listener
}{
	{"kernel", kernelListen},
	{"appproc", appprocListen},
}

func kernelListen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// appprocListen listens through appproc, on a netproc (kernel backend)
// that runs in the test process until the test ends.
func appprocListen(t testing.TB) net.Listener {
	srv := netproctest.Start(t, netproc.Options{})
	desc, files := srv.Channel(t, "web", netproctest.Geometry)
	ch, err := appproc.OpenChannel(desc, files)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	ln, err := appproc.NewApp("web", ch).Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startServerOn serves cfg on ln until the test ends and returns the
// address.
func startServerOn(t testing.TB, cfg Config, ln net.Listener) (*Server, string) {
	t.Helper()
	s := newServer(t, cfg)
	return s, serveOn(t, s, ln)
}

// newServer is New(cfg) with testFS as the default root, for a test that
// sets something up before serveOn.
func newServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Root == nil {
		cfg.Root = testFS()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serveOn serves s on ln until the test ends and returns the address.
func serveOn(t testing.TB, s *Server, ln net.Listener) string {
	t.Helper()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// testClock is a clock that moves only when the test says, for the
// open-file cache's checks (fileCache.clock). It is safe for concurrent
// use: the connections' goroutines read it.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t0 time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// connStates counts s's connections by state (stateNew, stateBusy,
// stateIdle), for a test that waits until a connection is where it wants
// it before acting.
func connStates(s *Server) map[int32]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[int32]int{}
	for c := range s.active {
		n[c.state.Load()]++
	}
	return n
}

// DialRaw connects to addr for a test that speaks HTTP by hand, with a
// deadline 10 s from now for every read and write, so that a server that
// fails to answer fails the test rather than hangs it. The caller closes
// the connection. Exported for the end-to-end tests of package
// webserver_test.
func DialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// exchange writes raw to a new connection to addr, half-closes it, and
// returns everything the server sends until it closes the connection.
func exchange(t testing.TB, addr, raw string) string {
	t.Helper()
	c := DialRaw(t, addr)
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading responses: %v", err)
	}
	return string(out)
}

// parsedResponse is one response of a raw exchange with its body read.
type parsedResponse struct {
	*http.Response
	body string
}

// parseResponses splits a raw exchange into responses; methods says, per
// response, the request method (HEAD responses have no body).
func parseResponses(t testing.TB, out string, methods ...string) []parsedResponse {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(out))
	var rs []parsedResponse
	for i := 0; ; i++ {
		if _, err := br.Peek(1); err == io.EOF {
			return rs
		}
		m := "GET"
		if i < len(methods) {
			m = methods[i]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("response %d: %v\nraw:\n%s", i, err, out)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v\nraw:\n%s", i, err, out)
		}
		rs = append(rs, parsedResponse{resp, string(body)})
	}
}

// seqFS hides io.ReaderAt and io.Seeker from its files, as a minimal fs.FS
// would: the server must read such files sequentially and offer no ranges.
type seqFS struct{ fs.FS }

type seqFile struct{ f fs.File }

func (s seqFS) Open(name string) (fs.File, error) {
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return seqFile{f}, nil
}
func (f seqFile) Stat() (fs.FileInfo, error) { return f.f.Stat() }
func (f seqFile) Read(p []byte) (int, error) { return f.f.Read(p) }
func (f seqFile) Close() error               { return f.f.Close() }
