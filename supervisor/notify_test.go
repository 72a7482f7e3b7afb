package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// TestSDSend: a message reaches a datagram socket named by a path or by an
// abstract name (@...), and a name that is neither is refused.
func TestSDSend(t *testing.T) {
	for _, addr := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@saturn-notify-test-%d", os.Getpid()),
	} {
		ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		if err := sdSend(addr, "READY=1\nSTATUS=up"); err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		buf := make([]byte, 64)
		ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := ln.Read(buf)
		ln.Close()
		if err != nil || string(buf[:n]) != "READY=1\nSTATUS=up" {
			t.Errorf("%s: read %q, %v", addr, buf[:n], err)
		}
	}
	if err := sdSend("relative/socket", "READY=1"); err == nil {
		t.Error("a relative NOTIFY_SOCKET was accepted")
	}
	// Nobody listening: an error, returned at once.
	if err := sdSend(filepath.Join(t.TempDir(), "none"), "READY=1"); err == nil {
		t.Error("a send to no socket succeeded")
	}
}

// TestSDSendNeverWaits: a systemd that does not read its socket cannot
// block the supervisor: once the socket's queue is full, a send fails at
// once (EAGAIN) instead of waiting for room.
func TestSDSendNeverWaits(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		for range 100_000 {
			if err := sdSend(addr, "STATUS=filling the queue"); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if !errors.Is(err, unix.EAGAIN) {
			t.Fatalf("100,000 sends to a socket nobody reads: %v, want EAGAIN", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a send to a full socket blocked")
	}
}

func TestStatusLine(t *testing.T) {
	cs := []*component{
		{name: "netproc", state: proto.StateRunning},
		{name: "diskproc", state: proto.StateRunning},
		{name: "web", state: proto.StateRestarting},
		{name: "job", state: proto.StateFailed},
	}
	if got, want := statusLine(cs), "2 of 4 running; web restarting, job failed"; got != want {
		t.Errorf("statusLine = %q, want %q", got, want)
	}
	if got, want := statusLine(cs[:2]), "2 of 2 running"; got != want {
		t.Errorf("statusLine = %q, want %q", got, want)
	}
}
