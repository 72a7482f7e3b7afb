package appproc

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"saturn/netproc"
	"saturn/netproc/netproctest"
)

// resetStopping undoes a stop, for the tests after one: the state is the
// process's.
func resetStopping() {
	signal.Reset(syscall.SIGTERM, syscall.SIGINT)
	stopping.mu.Lock()
	defer stopping.mu.Unlock()
	stopping.once = sync.Once{}
	stopping.ch, stopping.begun, stopping.closed = nil, false, false
}

// listenWeb starts a netproc whose listeners outlive their app by 10s,
// and listens on a free local port as the app "web".
func listenWeb(t *testing.T) (*netproctest.Server, *App, *TCPListener) {
	t.Helper()
	srv := netproctest.Start(t, netproc.Options{Linger: 10 * time.Second})
	app := netApp(t, srv, "web", netproctest.Geometry)
	ln, err := app.ListenTCP("tcp", "127.0.0.1:0", ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, app, ln
}

// TestGracefulStopHTTP: a plain net/http server on an appproc listener,
// stopped by SIGTERM as the supervisor stops it: Stopping and StopContext
// say so, Shutdown finishes the request in flight, and the listener is
// left to netproc rather than closed: a client that connects while no
// incarnation runs is queued, and the next incarnation adopts the listener
// and serves it.
func TestGracefulStopHTTP(t *testing.T) {
	t.Cleanup(resetStopping)
	srv, _, ln := listenWeb(t)
	addr := ln.Addr().String()

	ctx := StopContext(context.Background())
	inHandler, release := make(chan struct{}), make(chan struct{})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inHandler)
			<-release
		}
		io.WriteString(w, "first")
	})}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	shutdown := make(chan error, 1)
	go func() {
		<-ctx.Done()
		shutdown <- hs.Shutdown(context.Background())
	}()

	slow := getLater("http://" + addr + "/slow")
	<-inHandler
	if IsStopping() {
		t.Fatal("stopping before any signal")
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM) // as `saturn restart web` does
	select {
	case <-Stopping():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not close Stopping's channel")
	}
	<-ctx.Done()
	if cause := context.Cause(ctx); !errors.Is(cause, ErrStopping) {
		t.Errorf("StopContext's cause: %v, want ErrStopping", cause)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v, want http.ErrServerClosed", err)
	}

	// Between incarnations: the listener is kept, so this client waits
	// in its queue instead of being refused.
	between := getLater("http://" + addr + "/")
	close(release)
	if body := <-slow; body != "first" {
		t.Errorf("the request in flight at SIGTERM: %q, want it answered", body)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}

	second := netApp(t, srv, "web", netproctest.Geometry)
	ln2, err := second.ListenTCP("tcp", addr, ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ln2.Adopted() {
		t.Error("the next incarnation's listener was not adopted from the first")
	}
	go http.Serve(ln2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "second") }))
	defer func() {
		resetStopping() // this Close closes
		ln2.Close()
	}()
	if body := <-between; body != "second" {
		t.Errorf("a client that connected between incarnations: %q, want the next one's answer", body)
	}
}

// TestCloseWithoutStopCloses: outside a stop, Close closes: the address is
// free, and a connection is refused.
func TestCloseWithoutStopCloses(t *testing.T) {
	_, app, ln := listenWeb(t)
	ln.Close()
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("a closed listener still accepts")
	}
	ln2, err := app.ListenTCP("tcp", ln.Addr().String(), ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if ln2.Adopted() {
		t.Error("listening again after Close adopted the closed listener")
	}
}

// getLater gets url in a goroutine, and sends the body (or the error's
// text) on the channel it returns.
func getLater(url string) <-chan string {
	out := make(chan string, 1)
	go func() {
		body, err := get(url)
		if err != nil {
			body = err.Error()
		}
		out <- body
	}()
	return out
}

func get(url string) (string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestStopWaitsForFirstBytes: a connection the app accepted before the
// stop, whose client sends its request only afterwards, is served. Stop
// leaves the listener at once, but closes Stopping's channel (on which
// the app calls net/http's Shutdown, which would drop that request and
// close the connection) only once the request has begun to arrive.
func TestStopWaitsForFirstBytes(t *testing.T) {
	t.Cleanup(resetStopping)
	_, _, ln := listenWeb(t)
	accepted := make(chan struct{}, 1)
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") }),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				accepted <- struct{}{}
			}
		},
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	stopping := Stopping()
	go func() {
		<-stopping
		hs.Shutdown(context.Background())
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-accepted
	Stop()
	if !IsStopping() {
		t.Error("IsStopping is false after Stop")
	}
	time.Sleep(StopSettle / 5) // a client slow to send its request
	select {
	case <-stopping:
		t.Fatal("Stopping closed while an accepted connection had brought nothing yet")
	default:
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the request sent after the stop began: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "served" {
		t.Errorf("body %q", body)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v, want http.ErrServerClosed", err)
	}
}
