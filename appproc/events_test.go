package appproc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"saturn/netproc/netproctest"
	"saturn/proto"
)

// TestEventsEcho runs an echo server written against the event API with
// callbacks (Run), one goroutine for every connection, and checks it with
// plain clients; then a client written as a poll loop (Wait).
func TestEventsEcho(t *testing.T) {
	srv := startNetproc(t)
	a := netApp(t, srv, "events", netproctest.Geometry)
	ev, err := a.Events()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The server: accept → recv → send back → recv ..., all callbacks.
	listening := make(chan netip.AddrPort, 1)
	var onAccept, onRecv EventCallback
	var ln Handle
	onAccept = func(e *Event) {
		if e.Err != nil {
			t.Errorf("accept: %v", e.Err)
			return
		}
		ev.Accept(ln, onAccept) // the next connection
		ev.Recv(e.Handle, make([]byte, 4096), onRecv)
	}
	onRecv = func(e *Event) {
		switch {
		case e.Err != nil:
			ev.Close(e.Handle, nil)
		case e.N == 0: // end of stream
			ev.Close(e.Handle, nil)
		default:
			ev.Send(e.Handle, e.Data, nil)
			ev.Recv(e.Handle, e.Data[:cap(e.Data)], onRecv) // sends go out in order, before this buffer is reused
		}
	}
	ev.Listen(netip.MustParseAddrPort("127.0.0.1:0"), 0, 0, EventCallback(func(e *Event) {
		if e.Err != nil {
			t.Errorf("listen: %v", e.Err)
			close(listening)
			return
		}
		ln = e.Handle
		ev.Accept(ln, onAccept)
		listening <- e.Local
	}))
	done := make(chan error, 1)
	go func() { done <- ev.Run(ctx, nil) }()
	addr, ok := <-listening
	if !ok {
		t.FailNow()
	}
	for i := range 5 {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("message %d", i)
		c.Write([]byte(msg))
		got := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("echo %d: %q %v", i, got, err)
		}
		c.Close()
	}

	// A client as a poll loop, on another app's event API.
	b := netApp(t, srv, "poller", netproctest.Geometry)
	pe, _ := b.Events()
	pe.Connect(addr, time.Second, "connect")
	var conn Handle
	var batch []Event
	got := ""
	for got != "ping" {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		batch, err = pe.Wait(wctx, batch[:0])
		wcancel()
		if err != nil {
			t.Fatalf("waiting for events (got %q): %v", got, err)
		}
		for _, e := range batch {
			if e.Err != nil {
				t.Fatalf("%v %v: %v", e.Op, e.Tag, e.Err)
			}
			switch e.Tag {
			case "connect":
				conn = e.Handle
				if e.Peer != addr || !e.Local.IsValid() {
					t.Errorf("connect reports %v → %v", e.Local, e.Peer)
				}
				pe.Send(conn, []byte("ping"), "send")
				pe.Recv(conn, make([]byte, 16), "recv")
			case "recv":
				got += string(e.Data)
				if got != "ping" {
					pe.Recv(conn, make([]byte, 16), "recv")
				}
			}
		}
	}
	// Cancel a recv that would wait forever: it completes with ECANCELED.
	id, _ := pe.Recv(conn, make([]byte, 16), "idle")
	pe.Cancel(id)
	batch, _ = pe.Wait(ctx, batch[:0])
	if len(batch) != 1 || batch[0].ID != id || batch[0].Err != syscall.ECANCELED {
		t.Fatalf("cancelled recv: %+v", batch)
	}
	pe.Close(conn, "close")
	if batch, _ = pe.Wait(ctx, batch[:0]); batch[0].Op != proto.OpClose || batch[0].Err != nil {
		t.Fatalf("close: %+v", batch)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
}
