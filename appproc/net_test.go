package appproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"saturn/internal/testkit"
	"saturn/netproc"
	"saturn/netproc/netproctest"
	"saturn/ring"
)

// netApp is an App whose only channel goes to a netproc running inside the
// test process (netproctest).
func netApp(t testing.TB, srv *netproctest.Server, name string, g ring.Geometry) *App {
	t.Helper()
	desc, files := srv.Channel(t, name, g)
	ch, err := OpenChannel(desc, files)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return &App{name: name, channels: map[string]*Channel{"netproc": ch}}
}

func startNetproc(t testing.TB) *netproctest.Server {
	return netproctest.Start(t, netproc.Options{})
}

// TestConnConformance runs golang.org/x/net/nettest's suite for net.Conn
// implementations against a pair of appproc connections (one dialled, one
// accepted, both through netproc).
func TestConnConformance(t *testing.T) {
	srv := startNetproc(t)
	a := netApp(t, srv, "nettest", netproctest.Geometry)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ln, err := a.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, err
		}
		type accepted struct {
			c   net.Conn
			err error
		}
		acc := make(chan accepted, 1)
		go func() {
			c, err := ln.Accept()
			acc <- accepted{c, err}
		}()
		c1, err = a.Dial(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			ln.Close()
			return nil, nil, nil, err
		}
		r := <-acc
		if r.err != nil {
			c1.Close()
			ln.Close()
			return nil, nil, nil, r.err
		}
		return c1, r.c, func() { c1.Close(); r.c.Close(); ln.Close() }, nil
	})
}

// TestHTTP serves and fetches with net/http, unchanged, over appproc: the
// server on an appproc listener, the client dialling through appproc.
func TestHTTP(t *testing.T) {
	srv := startNetproc(t)
	a := netApp(t, srv, "web", netproctest.Geometry)
	ln, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("saturn ", 40000) // bigger than a ring buffer
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from %s", r.RemoteAddr, r.Host)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	defer hs.Close()

	client := &http.Client{Transport: &http.Transport{DialContext: a.Dial, MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	base := "http://" + ln.Addr().String()
	for i := range 20 { // keep-alive: these reuse connections
		resp, err := client.Get(base + "/hello")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(body), "hello 127.0.0.1:") {
			t.Fatalf("GET %d: %q", i, body)
		}
	}
	resp, err := client.Get(base + "/big")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != big {
		t.Fatalf("GET /big: %d bytes, want %d", len(body), len(big))
	}
	resp, err = client.Post(base+"/echo", "text/plain", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != big {
		t.Fatalf("POST /echo: %d bytes back, want %d", len(body), len(big))
	}
	// A plain client and a plain server work with appproc on the other end.
	plain, err := http.Get(base + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	ts := httptest.NewServer(mux)
	defer ts.Close()
	resp, err = client.Get(ts.URL + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("appproc client to a plain server: %s", resp.Status)
	}
}

// TestErrors: the errors callers test for, shaped as package net shapes
// them.
func TestErrors(t *testing.T) {
	srv := startNetproc(t)
	a := netApp(t, srv, "errs", netproctest.Geometry)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := closed.Addr().String()
	closed.Close()
	_, err := a.Dial(context.Background(), "tcp", addr)
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial to a closed port: %#v", err)
	}
	if _, err := a.Listen("udp", ":0"); err == nil {
		t.Error("listen on udp succeeded")
	}
	ln, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Listen("tcp", ln.Addr().String()); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second listen on an address: %v", err)
	}
	// Close unblocks Accept; later use fails with net.ErrClosed.
	errc := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	testkit.WaitBlocked(t, "saturn/appproc.(*TCPListener).Accept", 1)
	ln.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Accept")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener: %v", err)
	}
	// An Accept deadline.
	ln2, _ := a.ListenTCP("tcp", "127.0.0.1:0", ListenOptions{})
	defer ln2.Close()
	ln2.SetDeadline(time.Now().Add(30 * time.Millisecond))
	_, err = ln2.Accept()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Accept past its deadline: %v", err)
	}
	ln2.SetDeadline(time.Time{})
	// The listener still works after a timed-out Accept.
	go func() {
		if c, err := net.Dial("tcp", ln2.Addr().String()); err == nil {
			c.Close()
		}
	}()
	if c, err := ln2.Accept(); err != nil {
		t.Errorf("Accept after a timeout: %v", err)
	} else {
		c.Close()
	}
}

// TestDialTimeoutAndCancel: a context deadline bounds the connect, and
// cancelling the context cancels it.
func TestDialTimeoutAndCancel(t *testing.T) {
	full := testkit.FullListener(t)
	srv := startNetproc(t)
	a := netApp(t, srv, "dialer", netproctest.Geometry)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.Dial(ctx, "tcp", full)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial past its deadline: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dial took %v with an 80ms deadline", d)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel)
	if _, err := a.Dial(ctx, "tcp", full); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled dial: %v", err)
	}
	var socks int
	srv.Do(func() { socks = srv.Handler.Sockets("dialer") })
	if socks != 0 {
		t.Errorf("%d sockets left in netproc after failed dials", socks)
	}
}

// TestHalfCloseAndAddresses: CloseWrite ends the peer's stream while
// reading goes on, and the addresses are the ones the peer sees.
func TestHalfCloseAndAddresses(t *testing.T) {
	srv := startNetproc(t)
	a := netApp(t, srv, "half", netproctest.Geometry)
	for _, network := range []string{"tcp4", "tcp6"} {
		host := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
		peer, err := net.Listen(network, host)
		if err != nil {
			t.Logf("%s: %v: skipped", network, err)
			continue
		}
		defer peer.Close()
		c, err := a.DialTCP(context.Background(), network, peer.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := peer.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if c.RemoteAddr().String() != s.LocalAddr().String() || c.LocalAddr().String() != s.RemoteAddr().String() {
			t.Errorf("%s: appproc says %v → %v, the peer %v → %v", network, c.LocalAddr(), c.RemoteAddr(), s.RemoteAddr(), s.LocalAddr())
		}
		c.Write([]byte("request"))
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "request" {
			t.Fatalf("%s: the peer read %q, %v", network, got, err)
		}
		s.Write([]byte("response"))
		s.Close()
		got, err = io.ReadAll(c)
		if err != nil || string(got) != "response" {
			t.Fatalf("%s: read after CloseWrite: %q, %v", network, got, err)
		}
		if err := c.SetNoDelay(false); err != nil {
			t.Errorf("SetNoDelay: %v", err)
		}
		if err := c.SetKeepAlivePeriod(30 * time.Second); err != nil {
			t.Errorf("SetKeepAlivePeriod: %v", err)
		}
		c.Close()
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close: %v", err)
		}
	}
}

// TestManyIdleConnections: more connections wait in Read than the channel
// has buffers, and busy ones still get through: idle Reads stop holding
// buffers when they run short (proto.RecvPoll).
func TestManyIdleConnections(t *testing.T) {
	srv := startNetproc(t)
	g := netproctest.Geometry
	g.BufferCount = 8
	a := netApp(t, srv, "crowd", g)
	ln, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const idle = 24
	var wg sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { // an echo server, goroutine per connection
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	var peers []net.Conn
	for range idle {
		p, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
	}
	testkit.WaitBlocked(t, "saturn/appproc.(*TCPConn).ReadFrom", idle) // every server goroutine is in Read
	for i, p := range peers {
		msg := fmt.Sprintf("conn %d", i)
		p.SetDeadline(time.Now().Add(5 * time.Second))
		p.Write([]byte(msg))
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(p, got); err != nil || string(got) != msg {
			t.Fatalf("connection %d of %d idle ones: %q %v", i, idle, got, err)
		}
	}
	for _, p := range peers {
		p.Close()
	}
	ln.Close()
	<-accepting
	wg.Wait()
}
