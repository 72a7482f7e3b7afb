// Package disktest runs diskproc in-process for tests: a serverkit loop
// with a diskproc.Server over a temporary root, and channels to it made the
// way the supervisor makes them, whose app ends are ordinary
// appproc.Channels (or raw ring ends, for tests that write entries by
// hand). A restart keeps the regions and the persistent memory, as the
// supervisor does, and starts a new Server incarnation on them.
package disktest

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/appproc"
	"saturn/diskproc"
	"saturn/internal/serverkit"
	"saturn/proto"
	"saturn/ring"
)

// Geometry is the channels' default shape: small enough for many tests,
// with page-sized buffers so O_DIRECT works.
var Geometry = ring.Geometry{
	SQEntrySize: proto.SubmissionSize, SQEntries: 64,
	CQEntrySize: proto.CompletionSize, CQEntries: 128,
	BufferSize: 16 << 10, BufferCount: 32,
}

// Server is a running in-process diskproc.
type Server struct {
	t       testing.TB
	Root    string
	Opts    diskproc.Options
	Srv     *diskproc.Server
	loop    *serverkit.Loop
	cancel  context.CancelFunc
	done    chan error
	persist *os.File
	chans   []*Chan
}

// Chan is one channel: the supervisor's objects, and the app's end.
type Chan struct {
	ID     uint64
	Region *ring.Region
	SBell  *ring.EventDoorbell
	App    *appproc.Channel // nil for a raw channel
	FS     *appproc.FS
	// Grants go with the channel to every incarnation of the server; nil:
	// unrestricted.
	Grants *proto.ChannelGrants
}

var nextID atomic.Uint64

// Start runs diskproc over root (a new temporary directory when empty)
// with opts (Root, Persist and Log are filled in; the persistent memory
// is PersistSize bytes, 4 MiB by default). It stops at cleanup.
func Start(t testing.TB, opts diskproc.Options) *Server {
	t.Helper()
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	fd, err := unix.MemfdCreate("disktest-persist", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	persist := os.NewFile(uintptr(fd), "persist")
	size := opts.PersistSize
	if size <= 0 {
		size = 4 << 20
	}
	if err := persist.Truncate(size); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Root: opts.Root, Opts: opts, persist: persist}
	s.start()
	t.Cleanup(func() {
		for _, c := range s.chans {
			if c.App != nil {
				c.App.Close()
			}
		}
		s.Stop()
		for _, c := range s.chans {
			c.Region.Close()
			c.SBell.Close()
		}
		persist.Close()
	})
	return s
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.Opts
	opts.Persist = s.persist
	if opts.Log == nil && testing.Verbose() {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := diskproc.New(opts)
	if err != nil {
		s.t.Fatal(err)
	}
	loop, err := serverkit.NewLoop(proto.ServerDisk, srv, slog.New(slog.DiscardHandler))
	if err != nil {
		s.t.Fatal(err)
	}
	// The loop shares this process's two Ps with the test and the
	// channels' dispatchers: spinning would only steal their time.
	loop.Spin = 0
	if err := srv.Bind(loop); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.Srv, s.loop, s.cancel, s.done = srv, loop, cancel, make(chan error, 1)
	go func() { s.done <- loop.Run(ctx) }()
	for _, c := range s.chans {
		s.serve(c)
	}
}

// Stop stops the server (gracefully: what it holds stays on record for a
// next incarnation).
func (s *Server) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	if err := <-s.done; err != nil {
		s.t.Errorf("diskproc loop: %v", err)
	}
	s.Srv.Close()
	s.cancel = nil
}

// Persist is the persistent memory every incarnation gets.
func (s *Server) Persist() *os.File { return s.persist }

// Restart stops the server and starts a new incarnation on the same
// regions and persistent memory.
func (s *Server) Restart() {
	s.Stop()
	s.Resume()
}

// Resume starts a new incarnation after Stop.
func (s *Server) Resume() {
	s.t.Helper()
	s.start()
}

// Channel makes a new app channel with an appproc end.
func (s *Server) Channel() *Chan {
	c := s.RawChannel(Geometry)
	files := dupAll(s.t, c)
	app, err := appproc.OpenChannel(proto.ChannelDesc{ID: c.ID, Server: "diskproc", App: "test", Bells: true}, files)
	if err != nil {
		s.t.Fatal(err)
	}
	c.App, c.FS = app, appproc.NewFS(app)
	return c
}

// FS is a new channel's file system.
func (s *Server) FS() *appproc.FS { return s.Channel().FS }

// RawChannel makes a new channel of geometry g whose app end the test
// opens itself (Region.App with Bells).
func (s *Server) RawChannel(g ring.Geometry) *Chan {
	s.t.Helper()
	return s.RawChannelWith(g, nil)
}

// RawChannelWith is RawChannel for an app with grants, as the supervisor
// sends them.
func (s *Server) RawChannelWith(g ring.Geometry, grants *proto.ChannelGrants) *Chan {
	s.t.Helper()
	id := nextID.Add(1)
	r, err := ring.Create("disktest", g)
	if err != nil {
		s.t.Fatal(err)
	}
	sb, _ := ring.NewEventDoorbell()
	c := &Chan{ID: id, Region: r, SBell: sb, Grants: grants}
	s.chans = append(s.chans, c)
	s.serve(c)
	return c
}

// Bells are the channel's doorbells, for Region.App.
func (c *Chan) Bells() ring.Bells { return ring.Bells{Server: c.SBell} }

// serve hands c to the running server and waits until it is served.
func (s *Server) serve(c *Chan) {
	s.t.Helper()
	ch, err := serverkit.Open(proto.ChannelDesc{ID: c.ID, Server: "diskproc", App: "test", Bells: true, Grants: c.Grants}, dupAll(s.t, c))
	if err != nil {
		s.t.Fatal(err)
	}
	added := make(chan error, 1)
	s.loop.Post(func() { added <- s.loop.AddChannel(ch) })
	select {
	case err := <-added:
		if err != nil {
			s.t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		s.t.Fatal("diskproc did not take a channel within 10s")
	}
}

// Drop tells the server that c's app is gone, as the supervisor does.
func (s *Server) Drop(c *Chan) {
	done := make(chan struct{})
	s.loop.Post(func() { s.loop.DropChannel(c.ID); close(done) })
	<-done
}

func dupAll(t testing.TB, c *Chan) []*os.File {
	var out []*os.File
	for _, f := range []*os.File{c.Region.File(), c.SBell.File()} {
		d, err := ring.DupFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// Backends are the backends to run a suite on: threads always, and uring
// where io_uring works (else the test logs why it is left out).
func Backends(t testing.TB) []string {
	out := []string{"threads"}
	if err := diskproc.ProbeUring(); err != nil {
		t.Logf("io_uring backend not tested here: %v", err)
	} else {
		out = append(out, "uring")
	}
	return out
}
