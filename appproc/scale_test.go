package appproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/netproc"
	"saturn/netproc/netproctest"
	"saturn/proto"
	"saturn/ring"
)

// smallGeometry has few call slots and buffers, so that a test can hold
// several times as many idle connections as either.
var smallGeometry = ring.Geometry{
	SQEntrySize: proto.SubmissionSize, SQEntries: 64,
	CQEntrySize: proto.CompletionSize, CQEntries: 64,
	BufferSize: 16 << 10, BufferCount: 16,
}

// TestIdleReadsHoldNothing proves the property that lets one app hold
// any number of idle connections: a Read that waits holds neither a call
// slot nor a buffer. With three times as many connections blocked in
// Read as the channel has call slots (and twelve times its buffers), a
// Write, a Close, a new Dial and a new Accept on other connections all
// complete, the idle Reads' deadlines fire, and every idle connection
// still gets its bytes when its peer sends them.
func TestIdleReadsHoldNothing(t *testing.T) {
	srv := startNetproc(t)
	a := netApp(t, srv, "idle", smallGeometry)
	ch, _ := a.Channel("netproc")
	idle := 3 * int(smallGeometry.CQEntries)

	ln, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make([]net.Conn, idle)
	conns := make([]net.Conn, idle)
	for i := range idle {
		if peers[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		defer peers[i].Close()
		if conns[i], err = ln.Accept(); err != nil {
			t.Fatalf("accept %d: %v", i, err)
		}
		defer conns[i].Close()
	}

	// Every connection blocked in Read, with a deadline far off.
	type result struct {
		i   int
		got string
		err error
	}
	results := make(chan result, idle)
	var reading sync.WaitGroup
	for i, c := range conns {
		reading.Add(1)
		go func() {
			buf := make([]byte, 64)
			reading.Done()
			n, err := c.Read(buf)
			results <- result{i, string(buf[:n]), err}
		}()
	}
	reading.Wait()
	waitFor(t, "every idle Read's recv to reach netproc", func() bool {
		ops, _ := waiting(srv, "idle")
		return ops >= idle
	})
	if free := ch.FreeBuffers(); free < int(smallGeometry.BufferCount)/2 {
		t.Errorf("%d idle Reads left %d of %d buffers free: they hold buffers", idle, free, smallGeometry.BufferCount)
	}

	// Other work still gets through: a new connection, a write and a read
	// on it, its close; and an outgoing dial.
	done := make(chan error, 1)
	go func() { done <- busyWork(a, ln) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("with %d connections idle in Read, a new connection's accept, write, read, close and a dial did not complete", idle)
	}

	// Each idle connection gets its own bytes.
	for i, p := range peers {
		if _, err := fmt.Fprintf(p, "hello %d", i); err != nil {
			t.Fatal(err)
		}
	}
	for range idle {
		select {
		case r := <-results:
			if want := fmt.Sprintf("hello %d", r.i); r.err != nil || r.got != want {
				t.Errorf("idle connection %d read %q, %v; want %q", r.i, r.got, r.err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("idle connections did not all get their bytes")
		}
	}

	// Idle Reads' deadlines fire, however many there are.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		go func() {
			_, err := c.Read(make([]byte, 64))
			results <- result{i: i, err: err}
		}()
	}
	for range idle {
		select {
		case r := <-results:
			if !errors.Is(r.err, os.ErrDeadlineExceeded) {
				t.Errorf("idle connection %d: Read past its deadline says %v", r.i, r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("idle Reads' deadlines did not all fire")
		}
	}
}

// busyWork accepts a new connection on ln and echoes a message over it,
// closes it, and dials ln through appproc.
func busyWork(a *App, ln net.Listener) error {
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer client.Close()
	c, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	if _, err := c.Write([]byte("busy")); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "busy" {
		return fmt.Errorf("the peer read %q, %v", got, err)
	}
	client.Write([]byte("back"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "back" {
		return fmt.Errorf("read %q, %v", got, err)
	}
	if err := c.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := a.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	return d.Close()
}

// waiting counts the operations the app called name has waiting in srv,
// on its loop.
func waiting(srv *netproctest.Server, name string) (ops, bufs int) {
	res := make(chan [2]int, 1)
	srv.Loop.Post(func() {
		o, b := srv.Handler.Waiting(name)
		res <- [2]int{o, b}
	})
	r := <-res
	return r[0], r[1]
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, cond, "%s", what)
}

// TestAcceptPastMemoryLimit: an accept past the app's memory limit in
// netproc fails with ENOBUFS as a temporary error (so that servers back
// off and retry, as they do on EMFILE), the connection stays queued, and
// it is accepted once the app closes another.
func TestAcceptPastMemoryLimit(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{Limits: netproc.Limits{Memory: 3 * 6144}}) // three kernel sockets
	a := netApp(t, srv, "fat", netproctest.Geometry)
	ln, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	for range 2 {
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("accept within the limit: %v", err)
		}
		conns = append(conns, c)
	}
	_, err = ln.Accept()
	var ne net.Error
	if !errors.Is(err, syscall.ENOBUFS) || !errors.As(err, &ne) || !ne.Temporary() {
		t.Fatalf("accept past the memory limit: %v; want a temporary ENOBUFS", err)
	}
	conns[0].Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept once a connection closed: %v", err)
	}
	c.Close()
}
