package webserver

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"saturn/internal/testkit"
)

// TestShutdownGrace: during Shutdown an idle keep-alive connection may
// bring one more request within ShutdownGrace, and it is answered, with
// Connection: close; one that brings nothing is closed once the grace
// ends; with no grace (negative) idle connections close at once. On kernel
// sockets and on appproc's, where the idle connection is parked.
func TestShutdownGrace(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			t.Run("request within the grace", func(t *testing.T) {
				s, addr := startServerOn(t, Config{ShutdownGrace: 5 * time.Second}, l.listen(t))
				c, r := idleConn(t, s, addr)
				shut := make(chan error, 1)
				go func() { shut <- s.Shutdown(context.Background()) }()
				testkit.Eventually(t, 10*time.Second, func() bool { return s.shutting.Load() }, "Shutdown to begin")
				io.WriteString(c, "GET /digits.txt HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatalf("the request sent during the shutdown: %v", err)
				}
				io.Copy(io.Discard, resp.Body)
				if resp.StatusCode != 200 || !resp.Close {
					t.Errorf("answered %d, Connection: close %v; want 200 and close", resp.StatusCode, resp.Close)
				}
				if _, err := r.ReadByte(); err != io.EOF {
					t.Errorf("after the answer: %v, want EOF", err)
				}
				if err := <-shut; err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			})
			t.Run("nothing within the grace", func(t *testing.T) {
				const grace = 300 * time.Millisecond
				s, addr := startServerOn(t, Config{ShutdownGrace: grace}, l.listen(t))
				_, r := idleConn(t, s, addr)
				start := time.Now()
				go s.Shutdown(context.Background())
				if _, err := r.ReadByte(); err != io.EOF {
					t.Errorf("idle connection: %v, want EOF", err)
				}
				if d := time.Since(start); d < grace/2 {
					t.Errorf("closed after %v, before the grace of %v", d, grace)
				}
			})
			t.Run("no grace", func(t *testing.T) {
				s, addr := startServerOn(t, Config{ShutdownGrace: -1}, l.listen(t))
				_, r := idleConn(t, s, addr)
				go s.Shutdown(context.Background())
				if _, err := r.ReadByte(); err != io.EOF {
					t.Errorf("idle connection: %v, want EOF", err)
				}
			})
		})
	}
}

// idleConn makes a connection that has had one request answered and is
// idle (parked, on appproc) in the server.
func idleConn(t *testing.T, s *Server, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c := DialRaw(t, addr)
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, "GET /digits.txt HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	testkit.Eventually(t, 10*time.Second, func() bool { return connStates(s)[stateIdle] == 1 }, "the connection to be idle (have %v)", connStates(s))
	return c, r
}
