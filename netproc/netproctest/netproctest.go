// Package netproctest runs netproc inside a test process: serverkit's loop
// with netproc's handler and the kernel backend, and channels to it made
// as the supervisor makes them (a sealed region and two eventfd doorbells),
// so that a test can drive the server through real rings without building
// the saturn binary. appproc's tests open the app's end with
// appproc.OpenChannel; netproc's own tests drive the raw rings.
package netproctest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"saturn/internal/serverkit"
	"saturn/netproc"
	"saturn/netproc/kernel"
	"saturn/proto"
	"saturn/ring"
)

// Server is a netproc running in the test process.
type Server struct {
	Loop    *serverkit.Loop
	Handler *netproc.Handler
	cancel  context.CancelFunc
	done    chan error
	nextID  atomic.Uint64
}

// Geometry is the channel shape of saturn's default config, smaller in
// buffers so that tests that exhaust them do so quickly.
var Geometry = ring.Geometry{
	SQEntrySize: proto.SubmissionSize, SQEntries: 256,
	CQEntrySize: proto.CompletionSize, CQEntries: 512,
	BufferSize: 64 << 10, BufferCount: 64,
}

// LoopbackOnly is a Permit that keeps apps on loopback: they may listen on
// loopback or wildcard addresses and connect only to loopback.
func LoopbackOnly(op proto.Op, addr netip.AddrPort) error {
	a := addr.Addr().Unmap()
	if a.IsLoopback() || op == proto.OpListen && a.IsUnspecified() {
		return nil
	}
	return syscall.EACCES
}

// Start runs a netproc with opts until the test ends. Unset options take
// the kernel backend, LoopbackOnly, and a logger that is silent unless
// NETPROCTEST_LOG is set.
func Start(t testing.TB, opts netproc.Options) *Server {
	t.Helper()
	if opts.Backend == nil {
		opts.Backend = kernel.New()
	}
	if opts.Permit == nil {
		opts.Permit = LoopbackOnly
	}
	if opts.Log == nil {
		var w io.Writer = io.Discard
		if os.Getenv("NETPROCTEST_LOG") != "" {
			w = os.Stderr
		}
		opts.Log = slog.New(slog.NewTextHandler(w, nil))
	}
	h := netproc.NewHandler(opts)
	loop, err := serverkit.NewLoop(proto.ServerNet, h, opts.Log)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(loop); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Loop: loop, Handler: h, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- loop.Run(ctx) }()
	t.Cleanup(s.Stop)
	return s
}

// Stop stops the loop (dropping every channel) and closes the handler.
func (s *Server) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.Handler.Close()
	s.cancel = nil
}

// do runs f on the loop and waits for it.
func (s *Server) do(f func()) {
	done := make(chan struct{})
	s.Loop.Post(func() { f(); close(done) })
	<-done
}

// Channel makes a channel of geometry g for the app called app, hands the
// server's end to the loop, and returns the app's end as Attach would
// receive it: a description and its three descriptors (region, server
// doorbell, app doorbell), which the caller owns.
func (s *Server) Channel(t testing.TB, app string, g ring.Geometry) (proto.ChannelDesc, []*os.File) {
	t.Helper()
	return s.ChannelAs(t, app, 0, g)
}

// ChannelAs is Channel for an app that runs as user uid, as the
// supervisor says in the channel's description.
func (s *Server) ChannelAs(t testing.TB, app string, uid uint32, g ring.Geometry) (proto.ChannelDesc, []*os.File) {
	t.Helper()
	return s.ChannelFor(t, proto.ChannelDesc{App: app, UID: uid}, g)
}

// ChannelFor is Channel for the app desc describes (its name, user,
// limits and grants, as the supervisor sends them); its ID, server and
// doorbells are filled in.
func (s *Server) ChannelFor(t testing.TB, desc proto.ChannelDesc, g ring.Geometry) (proto.ChannelDesc, []*os.File) {
	t.Helper()
	id := s.nextID.Add(1)
	app := desc.App
	desc.ID, desc.Server, desc.Bells = id, "netproc", true
	r, err := ring.Create(fmt.Sprintf("netproctest-%s-%d", app, id), g)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sb, err := ring.NewEventDoorbell()
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	originals := []*os.File{r.File(), sb.File()}
	ch, err := serverkit.Open(desc, dup(t, originals))
	if err != nil {
		t.Fatal(err)
	}
	var addErr error
	s.do(func() { addErr = s.Loop.AddChannel(ch) })
	if addErr != nil {
		ch.Close()
		t.Fatal(addErr)
	}
	return desc, dup(t, originals)
}

// Drop tells netproc that the channel's app is gone, as the supervisor does
// when an app exits, and waits until netproc has let go of it.
func (s *Server) Drop(id uint64) {
	s.do(func() { s.Loop.DropChannel(id) })
}

// Do runs f on the loop goroutine and waits, for tests that inspect the
// handler's state.
func (s *Server) Do(f func()) { s.do(f) }

func dup(t testing.TB, files []*os.File) []*os.File {
	t.Helper()
	var out []*os.File
	for _, f := range files {
		d, err := ring.DupFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}
