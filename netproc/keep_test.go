package netproc_test

import (
	"net"
	"testing"
	"time"

	"saturn/netproc"
	"saturn/netproc/netproctest"
	"saturn/proto"
)

// TestCloseKeep: a graceful restart. The app closes its listener with
// proto.CloseKeep and goes; clients that connect meanwhile are queued, not
// refused; the next incarnation's listen adopts the listener and accepts
// them. An app cannot hold more than its share of kept listeners by
// listening and leaving port after port: past 64, CloseKeep closes.
func TestCloseKeep(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{Linger: 10 * time.Second})
	first := newRawApp(t, srv, "web")
	ln, bound, _ := first.listen("127.0.0.1:0", 0)
	if c, _ := first.call(proto.Submission{Op: proto.OpClose, Handle: ln, Args: [3]uint64{proto.CloseKeep}}); c.Result != 0 {
		t.Fatalf("close with CloseKeep: %v", errOf(c))
	}
	var socks, kept int
	srv.Do(func() { socks, kept = srv.Handler.Sockets("web"), srv.Handler.Kept() })
	if socks != 0 || kept != 1 {
		t.Fatalf("after CloseKeep the app holds %d sockets and netproc keeps %d listeners; want 0 and 1", socks, kept)
	}
	srv.Drop(first.desc.ID)

	client, err := net.Dial("tcp", bound.String())
	if err != nil {
		t.Fatalf("a client between incarnations was refused: %v", err)
	}
	defer client.Close()
	client.Write([]byte("between"))

	second := newRawApp(t, srv, "web")
	second.adoptQueued(bound, "between")

	// Listening and leaving port after port: kept up to 64, closed after.
	churner := newRawApp(t, srv, "churner")
	var last string
	for range 65 {
		ln, bound, c := churner.listen("127.0.0.1:0", 0)
		if c.Result < 0 {
			t.Fatalf("listen: %v", errOf(c))
		}
		churner.call(proto.Submission{Op: proto.OpClose, Handle: ln, Args: [3]uint64{proto.CloseKeep}})
		last = bound.String()
	}
	srv.Do(func() { kept = srv.Handler.Kept() })
	if kept != 64 {
		t.Errorf("netproc keeps %d listeners, want 64 of the churner's (none of web's: adopted)", kept)
	}
	if c, err := net.Dial("tcp", last); err == nil {
		c.Close()
		t.Errorf("the 65th listener left with CloseKeep still accepts: it should have closed")
	}
}
