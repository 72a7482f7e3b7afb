package supervisor_test

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/internal/testkit"
	"saturn/proto"
)

// TestHostileClientDoesNotRead: a control client that sends requests and
// never reads the replies used to block the supervisor's loop as soon as
// the replies filled its socket (the loop wrote them), so that nothing
// else happened, not even restarts, until the client went away. Now the
// replies queue beside the loop: while such a client is stuck,
// `saturn kill netproc` still restarts netproc at once, and a client that
// goes on sending is dropped.
func TestHostileClientDoesNotRead(t *testing.T) {
	in := startInstance(t)
	flood := dialControl(t, in)
	e, _ := proto.NewEnvelope(proto.MsgStatus, 1, &proto.Status{})
	req, err := proto.AppendFrame(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	st, err := statusOver(t, dialControl(t, in))
	if err != nil {
		t.Fatal(err)
	}
	reply, _ := proto.NewEnvelope(proto.MsgStatusReply, 1, st)
	replyFrame, _ := proto.AppendFrame(nil, reply)
	// Enough requests that their replies overflow the socket's buffers
	// (about 200 KiB of sk_buffs, each reply a few hundred bytes of data
	// in about a kilobyte of buffer) several times over, and few enough
	// that they stay well inside the session's queue bound (1 MiB), so
	// that the client is stuck, not yet dropped.
	n := (384 << 10) / len(replyFrame)
	flood.UnixConn().SetWriteDeadline(time.Now().Add(10 * time.Second)) // a wedged supervisor stops reading us
	for i := range n {
		if _, err := flood.UnixConn().Write(req); err != nil {
			t.Fatalf("request %d of %d: %v", i, n, err)
		}
	}
	flood.UnixConn().SetWriteDeadline(time.Time{})
	unread := func() int {
		rc, _ := flood.UnixConn().SyscallConn()
		var v int
		rc.Control(func(fd uintptr) { v, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		return v
	}
	// Wait until the kernel holds all it will of the replies: the rest
	// wait in the supervisor.
	var last int
	if !testkit.Until(10*time.Second, func() bool {
		prev := last
		last = unread()
		return last > 0 && last == prev && last < n*len(replyFrame)
	}) {
		t.Fatalf("the socket holds %d bytes of %d replies (%d bytes)", last, n, n*len(replyFrame))
	}
	t.Logf("%d requests sent, unread; the socket holds %d of the %d bytes of replies", n, last, n*len(replyFrame))

	old := testkit.Component(in.Status(), "netproc").PID
	killed := time.Now()
	if out, err := in.Run("kill", "netproc"); err != nil {
		t.Fatalf("kill while a client does not read: %v %s", err, out)
	}
	st2, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		c := testkit.Component(st, "netproc")
		return c.State == proto.StateRunning && c.PID != old && c.Restarts == 1
	})
	if !ok {
		t.Fatalf("netproc not restarted while a client does not read: %+v", testkit.Component(st2, "netproc"))
	}
	t.Logf("netproc back %v after the kill", time.Since(killed).Round(time.Millisecond))

	// The client goes on sending without reading: it is dropped.
	dropped := make(chan error, 1)
	go func() {
		for {
			if _, err := flood.UnixConn().Write(req); err != nil {
				dropped <- err
				return
			}
		}
	}()
	select {
	case err := <-dropped:
		t.Logf("the flooding client was dropped: %v", err)
	case <-time.After(30 * time.Second):
		flood.Close()
		t.Fatal("a client that never reads was not dropped within 30 s")
	}
	logSays(t, in, "does not read its replies", 10*time.Second)
	stillServing(t, in, "the instance is not running")
	if strings.Contains(in.Log("supervisor"), "panic") {
		t.Fatal("the supervisor panicked")
	}
}
