package webserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"saturn/internal/testkit"
)

// TestSlowSenders: a client that sends its head too slowly is answered 408
// and dropped when HeaderTimeout runs out, whether it stalls or drips; one
// that never sends anything is dropped silently; an idle keep-alive
// connection is closed after IdleTimeout.
func TestSlowSenders(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) { testSlowSenders(t, l.listen(t)) })
	}
}

func testSlowSenders(t *testing.T, ln net.Listener) {
	const timeout = 300 * time.Millisecond
	_, addr := startServerOn(t, Config{HeaderTimeout: timeout, IdleTimeout: 2 * timeout}, ln)
	tests := []struct {
		name   string
		send   func(c net.Conn)
		want   string // prefix of everything the server sends
		within time.Duration
	}{
		{"stalls mid-head", func(c net.Conn) { io.WriteString(c, "GET / HTTP/1.1\r\nHost:") }, "HTTP/1.1 408 ", 2 * timeout},
		{"drips", func(c net.Conn) {
			for _, b := range []byte("GET /digits.txt HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				// Deliberate: this client is the slow peer under test,
				// whose bytes keep coming but whose head takes longer
				// than HeaderTimeout in all.
				time.Sleep(timeout / 20)
			}
		}, "HTTP/1.1 408 ", 3 * timeout},
		{"sends nothing", func(net.Conn) {}, "", 2 * timeout},
		{"idle after a request", func(c net.Conn) { io.WriteString(c, "GET /digits.txt HTTP/1.1\r\nHost: x\r\n\r\n") }, "HTTP/1.1 200 ", 3 * timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := DialRaw(t, addr)
			defer c.Close()
			start := time.Now()
			go tt.send(c)
			out, err := io.ReadAll(c)
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("server did not close: %v after %v", err, elapsed)
			}
			if !strings.HasPrefix(string(out), tt.want) || (tt.want == "" && len(out) > 0) {
				t.Errorf("got %q, want prefix %q", out, tt.want)
			}
			// Generous: the subtests run in parallel, and in the full
			// suite beside other packages under the race detector; what
			// this bound catches is a timeout that never fires.
			if elapsed > tt.within+5*time.Second {
				t.Errorf("closed after %v, want about %v", elapsed, tt.within)
			}
		})
	}
}

// TestShutdown: Shutdown closes idle connections at once, lets a request in
// flight finish (its response says Connection: close), finishes a request
// whose head had begun, refuses new connections, and returns nil.
func TestShutdown(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) { testShutdown(t, l.listen(t)) })
	}
}

func testShutdown(t *testing.T, ln net.Listener) {
	s, err := New(Config{Root: testFS()})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	dial := func() net.Conn {
		c := DialRaw(t, addr)
		t.Cleanup(func() { c.Close() })
		return c
	}
	// idle: served one request, now waiting for the next.
	idle := dial()
	io.WriteString(idle, "GET /digits.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	idleR := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(idleR, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("idle connection's request: %v", err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	// busy: asked for a big file and does not read it yet, so the server
	// is blocked writing when Shutdown begins.
	busy := dial()
	busy.(*net.TCPConn).SetReadBuffer(16 << 10)
	go io.WriteString(busy, strings.Repeat("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", 200))
	// partial: has sent half a head.
	partial := dial()
	io.WriteString(partial, "GET /hello.txt HTTP/1.1\r\n")
	// Shutdown must find them so: idle waiting, busy and partial each
	// with a request begun.
	testkit.Eventually(t, 10*time.Second, func() bool {
		n := connStates(s)
		return n[stateIdle] == 1 && n[stateBusy] == 2
	}, "one idle connection and two busy ones (have %v)", connStates(s))

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()

	if _, err := idleR.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v, want EOF", err)
	}
	// Shutdown went through every connection under s.mu: once it can be
	// taken, partial has been left to finish (or wrongly interrupted).
	s.mu.Lock()
	s.mu.Unlock()
	io.WriteString(partial, "Host: x\r\n\r\n")
	if out, err := io.ReadAll(partial); err != nil || !strings.HasPrefix(string(out), "HTTP/1.1 200 ") || !strings.Contains(string(out), "Connection: close") {
		t.Errorf("partial head: %q, %v", out, err)
	}
	br := bufio.NewReader(busy)
	n := 0
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(b, bigData) {
			t.Fatalf("busy response %d: %d bytes, %v", n, len(b), err)
		}
		n++
		if resp.Close {
			break
		}
	}
	if n == 0 || n == 200 {
		t.Errorf("busy connection got %d responses; want the one in flight (and any before it), then close", n)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("a connection was accepted after Shutdown")
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

// TestShutdownDeadline: when the context ends first, Shutdown closes what
// is left and says so.
func TestShutdownDeadline(t *testing.T) {
	s, addr := startServer(t, Config{})
	c := DialRaw(t, addr)
	defer c.Close()
	io.WriteString(c, "GET /hello.txt HTTP/1.1\r\n") // never finished
	testkit.Eventually(t, 10*time.Second, func() bool { return connStates(s)[stateBusy] == 1 },
		"the server to read the head's first line (have %v)", connStates(s))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want DeadlineExceeded", err)
	}
}

// TestServeFunc: the package-level Serve returns nil once its context ends.
func TestServeFunc(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Config{Root: testFS()}) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := New(Config{}); !errors.Is(err, ErrNoRoot) {
		t.Errorf("New without Root: %v", err)
	}
}

// pipeListener hands out the server ends of net.Pipe pairs: connections
// with no kernel socket, no io.ReaderFrom and synchronous writes, as
// appproc's may be.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }
func (l *pipeListener) dial() net.Conn {
	client, server := net.Pipe()
	l.conns <- server
	return client
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// TestPipeConn runs pipelined requests, big files included, over net.Pipe.
func TestPipeConn(t *testing.T) {
	for name, root := range fsKinds(t) {
		t.Run(name, func(t *testing.T) {
			s, err := New(Config{Root: root, IndexFile: "index.html"})
			if err != nil {
				t.Fatal(err)
			}
			ln := newPipeListener()
			go s.Serve(ln)
			defer s.Close()
			c := ln.dial()
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			reqs := "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /digits.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=1-2,4-5\r\n\r\n" +
				"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /sub/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
			go io.WriteString(c, reqs)
			out, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			rs := parseResponses(t, string(out), "GET", "GET", "HEAD", "GET")
			want := []int{200, 206, 200, 200}
			if name == "seqfs" {
				want[1] = 200
			}
			if len(rs) != 4 {
				t.Fatalf("%d responses", len(rs))
			}
			for i, r := range rs {
				if r.StatusCode != want[i] {
					t.Errorf("response %d: %d, want %d", i, r.StatusCode, want[i])
				}
			}
			if rs[0].body != string(bigData) || rs[3].body != "<h1>sub</h1>\n" {
				t.Errorf("bodies differ")
			}
		})
	}
}

// TestAccessLog: one combined-format line per response, hostile bytes
// escaped.
func TestAccessLog(t *testing.T) {
	var log testkit.SyncBuffer
	_, addr := startServer(t, Config{AccessLog: &log})
	exchange(t, addr, "GET /digits.txt HTTP/1.1\r\nHost: x\r\nUser-Agent: a\"b\xff\r\nReferer: http://r/\r\n\r\n"+
		"HEAD /nope HTTP/1.0\r\n\r\n")
	exchange(t, addr, "BAD\r\n\r\n")
	logLines(t, log.String(),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /digits.txt HTTP/1.1" 200 10 "http://r/" "a\\x22b\\xff"$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[.*\] "HEAD /nope HTTP/1.0" 404 0 "-" "-"$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[.*\] "-" 400 \d+ "-" "-"$`),
	)
}

// TestIdleConnectionsPark: on appproc's connections an idle keep-alive
// connection waits without a goroutine (conn.park), so that holding many
// costs no stack each; new clients are served meanwhile, and the idle
// timeout still closes every one of them.
func TestIdleConnectionsPark(t *testing.T) {
	const idle = 600 // more than the channel's call slots (512)
	const timeout = 1500 * time.Millisecond
	_, addr := startServerOn(t, Config{IdleTimeout: timeout}, appprocListen(t))
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, idle)
	readers := make([]*bufio.Reader, idle)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		conns[i], readers[i] = c, bufio.NewReader(c)
		io.WriteString(c, "GET /digits.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	for i, r := range readers {
		resp, err := http.ReadResponse(r, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	// Parked: no goroutine per idle connection (a little slack for the
	// goroutines of wake-ups in flight).
	testkit.Until(5*time.Second, func() bool { return runtime.NumGoroutine()-before <= idle/10 })
	if grown := runtime.NumGoroutine() - before; grown > idle/10 {
		t.Errorf("%d idle connections hold %d goroutines; want them parked", idle, grown)
	}
	// A new client is served while they are held.
	c := DialRaw(t, addr)
	defer c.Close()
	io.WriteString(c, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if out, err := io.ReadAll(c); err != nil || !strings.HasPrefix(string(out), "HTTP/1.1 200 ") {
		t.Fatalf("a new client beside %d idle ones: %q, %v", idle, out, err)
	}
	// A parked connection wakes for its next request.
	io.WriteString(conns[0], "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(readers[0], nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a parked connection's next request: %v", err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	// The idle timeout closes them all.
	start := time.Now()
	for i, r := range readers {
		if _, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("idle connection %d: %v, want EOF from the idle timeout", i, err)
		}
	}
	if took := time.Since(start); took > timeout+3*time.Second {
		t.Errorf("the idle timeout (%v) closed the connections after %v", timeout, took)
	}
}
