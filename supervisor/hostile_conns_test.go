package supervisor_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"saturn/proto"
	"saturn/supervisor"
)

// TestHostileManyConnections: one local client opening connection after
// connection could exhaust the supervisor's descriptors. Past
// MaxControlConns open at once, a connection is answered with a clear
// error and closed, and the refusal is logged; once some close, the
// socket serves again.
func TestHostileManyConnections(t *testing.T) {
	in := startInstance(t)
	var held []*proto.ControlConn
	for range supervisor.MaxControlConns {
		held = append(held, dialControl(t, in))
	}
	// The supervisor accepts in order: once the last one held answers,
	// every one before it is counted.
	if _, err := statusOver(t, held[len(held)-1]); err != nil {
		t.Fatalf("status on connection %d: %v", len(held), err)
	}
	extra := dialControl(t, in)
	e := nextError(t, extra, fmt.Sprintf("connection %d", len(held)+1))
	var er proto.ErrorReply
	e.Decode(&er)
	if !strings.Contains(er.Message, "too many control connections") {
		t.Fatalf("refusal says %q", er.Message)
	}
	if _, _, err := extra.Receive(); err == nil {
		t.Fatal("the refused connection stays open")
	}
	logSays(t, in, "control connection refused: too many open", 10*time.Second)
	// The ones it holds still work.
	if _, err := statusOver(t, held[0]); err != nil {
		t.Fatalf("status on the first connection held: %v", err)
	}
	for _, c := range held[:10] {
		c.Close()
	}
	if _, ok := in.WaitForQuiet(10*time.Second, running("netproc", "diskproc")); !ok {
		t.Fatal("the control socket does not serve once connections closed")
	}
}

// TestHostileWaitingRequests: a request answered only once the instance
// changes (restart, launch, detach) costs the supervisor a goroutine that
// asks the loop again at every change. One connection may have a few such
// requests waiting; past that they are refused at once, so a client
// pipelining thousands cannot swamp the loop.
func TestHostileWaitingRequests(t *testing.T) {
	in := startInstance(t)
	c := dialControl(t, in)
	const n = 40
	for i := range n {
		e, _ := proto.NewEnvelope(proto.MsgRestart, uint64(i+1), &proto.Restart{Name: "diskproc"})
		if err := c.Send(e); err != nil {
			t.Fatal(err)
		}
	}
	ok, refused := 0, 0
	c.UnixConn().SetReadDeadline(time.Now().Add(60 * time.Second))
	for range n {
		e, _, err := c.Receive()
		if err != nil {
			t.Fatalf("after %d answers and %d refusals: %v", ok, refused, err)
		}
		var er proto.ErrorReply
		switch {
		case e.Type == proto.MsgOK:
			ok++
		case e.Type == proto.MsgError && e.Decode(&er) == nil && strings.Contains(er.Message, "too many requests waiting"):
			refused++
		default:
			t.Fatalf("unexpected reply %+v", e)
		}
	}
	t.Logf("%d restarts answered, %d refused", ok, refused)
	if refused == 0 || ok == 0 {
		t.Fatalf("%d answered and %d refused: want some of each", ok, refused)
	}
	stillServing(t, in, "the instance is not running")
}
