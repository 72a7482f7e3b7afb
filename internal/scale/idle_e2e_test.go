// Package scale_test holds saturn's end-to-end tests at scale: thousands
// of idle keep-alive connections held by one app, on each netproc backend,
// through the CLI and real clients. They prove what docs/design.md
// ("Connections are cheap") claims: idle connections hold nothing that
// other work needs, new clients are served meanwhile, the apps' idle
// timeouts fire whatever the count, and status counts each app's sockets
// against its limit.
package scale_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/netproc/link"
	"saturn/proto"
)

// idleConns is how many idle connections each test holds: ten times the
// completion ring's slots, which is where an app froze before waits held
// no slot.
const idleConns = 5000

// idleTimeout is the apps' idle timeout in these tests: long enough to
// open every connection and serve the new clients, short enough to wait
// for.
const idleTimeout = 10 * time.Second

func TestMain(m *testing.M) { testkit.Main(m) }

// backend is one netproc backend as these tests drive it: the [netproc]
// section of the config, and how a client reaches an address there.
type backend struct {
	name    string
	netproc string                              // the [netproc] section's keys
	host    string                              // where the app listens, as the client dials it (no port)
	dial    func(addr string) (net.Conn, error) // a client's connect
	dialAll func(addr string, n int) ([]net.Conn, error)
}

var nsCounter atomic.Int32

// backends are the kernel backend (clients on loopback) and, where the
// machine allows, usertcp (clients in the instance's own namespace, where
// saturn's address is).
func backends(t *testing.T) []backend {
	kernel := backend{
		name: "kernel", netproc: "backend = \"kernel\"\n", host: "127.0.0.1",
		dial: func(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) },
	}
	kernel.dialAll = func(addr string, n int) ([]net.Conn, error) { return dialMany(kernel.dial, addr, n) }
	out := []backend{kernel}
	if why := testkit.NoTUN(); why != "" {
		t.Logf("usertcp skipped: %s", why)
		return out
	}
	pid, n := os.Getpid(), nsCounter.Add(1)
	ns := fmt.Sprintf("satsc%d-%d", pid%100000, n)
	prefix := fmt.Sprintf("10.%d.%d.2/24", 200+pid%50, n)
	user := backend{
		name:    "usertcp",
		netproc: fmt.Sprintf("backend = \"usertcp\"\nnetns = %q\naddress = %q\n", ns, prefix),
		host:    strings.TrimSuffix(prefix, "/24"),
	}
	// Clients connect from inside the namespace: a socket belongs to the
	// namespace of the thread that makes it, which joins it and is then
	// discarded (never unlocked).
	user.dialAll = func(addr string, n int) ([]net.Conn, error) {
		var conns []net.Conn
		err := link.InNamespace(ns, func() error {
			var err error
			conns, err = dialMany(kernel.dial, addr, n)
			return err
		})
		return conns, err
	}
	user.dial = func(addr string) (net.Conn, error) {
		cs, err := user.dialAll(addr, 1)
		if err != nil {
			return nil, err
		}
		return cs[0], nil
	}
	return append(out, user)
}

// dialMany opens n connections to addr, one after the other (a burst of
// thousands at once would only measure the accept queue).
func dialMany(dial func(string) (net.Conn, error), addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := dial(addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("connection %d of %d: %w", len(conns)+1, n, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// netUsage is what status says the app holds in netproc, or nil.
func netUsage(st *proto.StatusReply, app string) *proto.ChannelUsage {
	net := testkit.Component(st, "netproc")
	if net == nil {
		return nil
	}
	for _, ch := range net.Channels {
		if ch.App == app {
			return ch.Usage
		}
	}
	return nil
}

// waitSockets waits until status says the app holds want sockets (±slack)
// in netproc, against a limit.
func waitSockets(t *testing.T, in *testkit.Instance, app string, want, slack int, within time.Duration) {
	t.Helper()
	st, ok := in.WaitFor(within, func(st *proto.StatusReply) bool {
		u := netUsage(st, app)
		return u != nil && u.Sockets >= want-slack && u.Sockets <= want+slack && u.SocketLimit > 0
	})
	if !ok {
		t.Fatalf("status never showed %s holding %d sockets in netproc: %+v", app, want, netUsage(st, app))
	}
}

// TestWebServerHoldsIdleConnections: the web server holds idleConns idle
// keep-alive connections (each served one request first), serves new
// clients meanwhile, and closes them all at its idle timeout; status
// counts them and then counts them gone.
func TestWebServerHoldsIdleConnections(t *testing.T) {
	saturn := testkit.Saturn(t)
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			port := 18000 + os.Getpid()%1000
			listen := fmt.Sprintf("%s:%d", be.host, port)
			if be.name == "kernel" {
				listen = testkit.FreeLoopback(t)
			}
			cfg := fmt.Sprintf("[netproc]\n%s\n[diskproc]\nsample_site = true\n\n[[app]]\nname = \"web\"\ncommand = [%q, \"app\", \"webserver\", \"--root\", \"/\", \"--listen\", %q, \"--idle-timeout\", %q, \"--header-timeout\", \"2m\"]\n",
				be.netproc, saturn, listenArg(be, listen), idleTimeout.String())
			in := testkit.NewInstance(t, cfg)
			in.Start()
			// The header timeout is long: every connection is opened before
			// any sends its request, and on a loaded machine opening 5,000
			// can take longer than the default 10 s a fresh connection has.
			request := "GET / HTTP/1.1\r\nHost: saturn\r\n\r\n"
			get(t, be, listen) // the file is in the web server's cache before the burst

			held, err := be.dialAll(listen, idleConns)
			if err != nil {
				t.Fatalf("opening %d connections: %v", idleConns, err)
			}
			opened := time.Now()
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			readers := make([]*bufio.Reader, len(held))
			for i, c := range held {
				c.SetDeadline(time.Now().Add(idleTimeout + 60*time.Second))
				io.WriteString(c, request)
				readers[i] = bufio.NewReader(c)
			}
			for i, r := range readers {
				resp, err := http.ReadResponse(r, nil)
				if err != nil || resp.StatusCode != 200 {
					if err == nil {
						b, _ := io.ReadAll(resp.Body)
						err = fmt.Errorf("status %d: %q", resp.StatusCode, b)
					}
					t.Fatalf("held connection %d: its request: %v", i, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			waitSockets(t, in, "web", idleConns+1, 0, 10*time.Second) // and the listener

			// New clients are served while they are held.
			var slowest time.Duration
			for range 200 {
				slowest = max(slowest, get(t, be, listen))
			}
			if slowest > 2*time.Second {
				t.Errorf("beside %d idle connections the slowest new request took %v", idleConns, slowest)
			}
			t.Logf("%d idle connections held; the slowest of 200 new requests took %v", idleConns, slowest)

			// The idle timeout closes every one of them.
			closed := 0
			for i, r := range readers {
				if _, err := r.ReadByte(); err != io.EOF {
					t.Fatalf("held connection %d: %v, want the end of the stream from the idle timeout", i, err)
				}
				closed++
			}
			if took := time.Since(opened); took > idleTimeout+30*time.Second {
				t.Errorf("the idle timeout (%v) closed them %v after they were opened", idleTimeout, took)
			}
			waitSockets(t, in, "web", 1, 0, 20*time.Second) // the listener alone
			t.Logf("all %d closed by the idle timeout", closed)
		})
	}
}

// TestEventEchoHoldsIdleConnections: the same through the event API, with
// examples/echo-events: no goroutine per connection, a receive waiting on
// each, its idle timeout closing them.
func TestEventEchoHoldsIdleConnections(t *testing.T) {
	echo := testkit.Build(t, "./examples/echo-events")
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			listen := fmt.Sprintf("%s:%d", be.host, 17000+os.Getpid()%1000)
			if be.name == "kernel" {
				listen = testkit.FreeLoopback(t)
			}
			in := testkit.NewInstance(t, fmt.Sprintf("[netproc]\n%s", be.netproc))
			in.Start()
			in.MustRun("attach", "--name", "echo", "--", echo, "--listen", listen, "--idle-timeout", idleTimeout.String())
			if _, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
				c := testkit.Component(st, "echo")
				return c != nil && c.Info["listen"] != ""
			}); !ok {
				t.Fatal("echo-events never said it listens")
			}

			held, err := be.dialAll(listen, idleConns)
			if err != nil {
				t.Fatalf("opening %d connections: %v", idleConns, err)
			}
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for i, c := range held {
				c.SetDeadline(time.Now().Add(idleTimeout + 60*time.Second))
				if _, err := fmt.Fprintf(c, "hello %05d", i); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]byte, len("hello 00000"))
			for i, c := range held {
				if _, err := io.ReadFull(c, got); err != nil || string(got) != fmt.Sprintf("hello %05d", i) {
					t.Fatalf("held connection %d echoed %q, %v", i, got, err)
				}
			}
			waitSockets(t, in, "echo", idleConns+1, 0, 10*time.Second)

			for i := range 200 {
				c, err := be.dial(listen)
				if err != nil {
					t.Fatalf("new client %d beside %d idle connections: %v", i, idleConns, err)
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "ping")
				if _, err := io.ReadFull(c, got[:4]); err != nil || string(got[:4]) != "ping" {
					t.Fatalf("new client %d beside %d idle connections: %q, %v", i, idleConns, got[:4], err)
				}
				c.Close()
			}

			for i, c := range held {
				if _, err := c.Read(got); err != io.EOF {
					t.Fatalf("held connection %d: %v, want the end of the stream from the idle timeout", i, err)
				}
			}
			waitSockets(t, in, "echo", 1, 0, 20*time.Second)
		})
	}
}

// get makes one request of "/" on a new connection, failing the test
// unless it is answered 200, and says how long it took.
func get(t *testing.T, be backend, addr string) time.Duration {
	t.Helper()
	start := time.Now()
	c, err := be.dial(addr)
	if err != nil {
		t.Fatalf("a new client: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: saturn\r\nConnection: close\r\n\r\n")
	out, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(out), "HTTP/1.1 200 ") {
		t.Fatalf("a new client: %q, %v", out, err)
	}
	return time.Since(start)
}

// listenArg is what the app is told to listen on: on usertcp, any address
// of saturn's (":PORT"); on kernel, loopback only.
func listenArg(be backend, listen string) string {
	if be.name == "usertcp" {
		_, port, _ := net.SplitHostPort(listen)
		return ":" + port
	}
	return listen
}
