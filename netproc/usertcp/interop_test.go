package usertcp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"saturn/netproc/usertcp"
)

// TestPingAndClosedPort: the kernel in the namespace pings saturn's
// address, and a connection to a port nobody listens on is refused (RST).
func TestPingAndClosedPort(t *testing.T) {
	e := startStack(t, usertcp.Config{})
	t.Run("ping", func(t *testing.T) {
		if _, err := exec.LookPath("ping"); err != nil {
			t.Skip("no ping program here (scripts/deps.sh installs iputils-ping)")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := e.Exec(ctx, "ping", "-c", "3", "-i", "0.2", "-W", "2", e.Addr.String())
		if err != nil {
			t.Fatalf("ping: %v\n%s", err, out)
		}
		t.Logf("%s", out[strings.LastIndex(out, "\n")+1:])
		if n := e.Counters()["icmp.out_echo_reps"]; n < 3 {
			t.Errorf("counters: %d echo replies, want 3", n)
		}
	})
	t.Run("closed port", func(t *testing.T) {
		_, err := e.Dial(e.AddrPort(9))
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("dial to a closed port: %v, want connection refused", err)
		}
		c := e.Counters()
		if c["tcp.no_port"] == 0 || c["tcp.out_rsts"] == 0 {
			t.Errorf("counters: no_port %d, out_rsts %d", c["tcp.no_port"], c["tcp.out_rsts"])
		}
	})
}

// TestCurl: curl from the namespace fetches from net/http served by an app
// over appproc on the usertcp backend (passive open).
func TestCurl(t *testing.T) {
	e := startStack(t, usertcp.Config{})
	ln, err := e.App.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	body := strings.Repeat("saturn ", 20000)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.Path)
		io.WriteString(w, body)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 3 {
		out, err := e.Exec(ctx, "curl", "-sS", "--max-time", "10", fmt.Sprintf("http://%s/hello/%d", e.AddrPort(8080), i))
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		if want := fmt.Sprintf("GET /hello/%d\n", i) + body; out != strings.TrimSpace(want) {
			t.Fatalf("curl got %d bytes, want %d", len(out), len(want))
		}
	}
}

// TestGoClient: a Go client in the namespace against an appproc echo
// server.
func TestGoClientEcho(t *testing.T) {
	e := startStack(t, usertcp.Config{})
	c := e.echoConn(t, 7000, 0)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 5)
	for i := range 100 {
		msg := fmt.Sprintf("%05d", i)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %d: %q, %v", i, buf, err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after close: %d, %v", n, err)
	}
}
