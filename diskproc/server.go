package diskproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"saturn/configs"
	"saturn/diskproc/uring"
	"saturn/internal/serverkit"
	"saturn/proto"
	"saturn/ring"
)

// Options configure a Server.
type Options struct {
	// Root is the directory every path resolves beneath. It must exist.
	Root string
	// Backend is "uring", "threads" or "auto" (uring when it works here).
	Backend string
	// MaxOpen and MaxInflight are each app's limits: files open, and
	// requests accepted and not yet completed. Default 1024 each.
	MaxOpen, MaxInflight int
	// Workers is the size of the threads backend's pool (default 64); the
	// io_uring backend keeps MetaWorkers (default 4) for metadata.
	Workers, MetaWorkers int
	// RingEntries sizes the io_uring submission ring (default 256).
	RingEntries uint32
	// Persist is the persistent memory that outlives an incarnation
	// (proto.PersistFromEnv). Nil: private memory of PersistSize bytes, for a
	// server that runs once (tests; or to simulate a restart, pass the
	// same memfd to the next Server).
	Persist     *os.File
	PersistSize int64
	// OrphanAfter is how long after start records of channels that never
	// came back are released (their apps left while no diskproc ran).
	// Default 30s.
	OrphanAfter time.Duration
	// MaxApps is how many apps may attach at once (the supervisor's
	// [supervisor] max_apps): each is guaranteed its share of diskproc's
	// open files (see shares.go). Default 64.
	MaxApps int
	// MaxPinned bounds the memory the io_uring backend pins by
	// registering channels' buffers with the kernel (each channel's
	// whole pool); channels past it are served without registered
	// buffers. Default 256 MiB.
	MaxPinned int64
	Log       *slog.Logger
}

func (o *Options) fill() {
	if o.Backend == "" {
		o.Backend = "auto"
	}
	if o.MaxOpen <= 0 {
		o.MaxOpen = 1024
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 1024
	}
	if o.Workers <= 0 {
		o.Workers = 64
	}
	if o.MetaWorkers <= 0 {
		o.MetaWorkers = 4
	}
	if o.RingEntries == 0 {
		o.RingEntries = 256
	}
	if o.PersistSize <= 0 {
		o.PersistSize = 4 << 20
	}
	if o.OrphanAfter <= 0 {
		o.OrphanAfter = 30 * time.Second
	}
	if o.MaxApps <= 0 {
		o.MaxApps = 64
	}
	if o.MaxPinned <= 0 {
		o.MaxPinned = 256 << 20
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Server is diskproc's logic: a serverkit.Handler (and RoundEnder) that
// serves every app's channel on one loop. Apart from New, Bind and Close,
// its methods run on the loop goroutine.
type Server struct {
	opts    Options
	log     *slog.Logger
	root    int
	persist *persistTable
	back    backend
	why     string // why auto chose the backend it chose
	loop    *serverkit.Loop

	apps    map[uint64]*appState
	byChan  map[uint64][]record // loaded records not yet claimed by a channel
	freeOps []*op               // see newOp
	stats   stats               // disk.* counters (stats.go)
}

// New opens the root and the persistent table and sets up the backend.
func New(opts Options) (*Server, error) {
	opts.fill()
	root, err := openRoot(opts.Root)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Log, root: root, apps: map[uint64]*appState{}, byChan: map[uint64][]record{}}
	if s.persist, err = openPersist(opts.Persist, opts.PersistSize); err != nil {
		unix.Close(root)
		return nil, err
	}
	for _, r := range s.persist.load() {
		s.byChan[r.channel] = append(s.byChan[r.channel], r)
	}
	if s.back, s.why, err = chooseBackend(root, &opts); err != nil {
		s.persist.close()
		unix.Close(root)
		return nil, err
	}
	return s, nil
}

// chooseBackend sets up the backend opts ask for; "auto" takes io_uring
// when a ring can be set up here and says why when it cannot.
func chooseBackend(root int, opts *Options) (backend, string, error) {
	switch opts.Backend {
	case "uring", "auto":
		b, err := newUringBackend(root, opts.RingEntries, opts.MetaWorkers, opts.Log)
		if err == nil {
			b.maxPinned = opts.MaxPinned
			return b, "", nil
		}
		if opts.Backend == "uring" {
			return nil, "", fmt.Errorf("diskproc: backend \"uring\": %w", err)
		}
		w, werr := newWorkers(root, opts.Workers)
		if werr != nil {
			return nil, "", werr
		}
		return threadsBackend{w}, err.Error(), nil
	case "threads":
		w, err := newWorkers(root, opts.Workers)
		if err != nil {
			return nil, "", err
		}
		return threadsBackend{w}, "", nil
	}
	return nil, "", fmt.Errorf("diskproc: backend %q: want \"uring\", \"threads\" or \"auto\"", opts.Backend)
}

// Backend names the backend in use.
func (s *Server) Backend() string { return s.back.name() }

// Info is what status shows of the server.
func (s *Server) Info() map[string]string {
	b := s.back.name()
	if s.opts.Backend == "auto" {
		b += " (auto"
		if s.why != "" {
			b += ": " + s.why
		}
		b += ")"
	}
	info := map[string]string{
		"backend":      b,
		"root":         rootInfo(s.opts.Root, s.root),
		"max_open":     strconv.Itoa(s.opts.MaxOpen),
		"max_inflight": strconv.Itoa(s.opts.MaxInflight),
	}
	s.stats.add(info)
	if s.loop != nil && s.loop.AdaptSpin != nil {
		info["disk.spin_hits"] = strconv.FormatUint(s.loop.AdaptSpin.Hits.Load(), 10)
		info["disk.spin_misses"] = strconv.FormatUint(s.loop.AdaptSpin.Misses.Load(), 10)
	}
	if ub, ok := s.back.(*uringBackend); ok {
		info["uring"] = fmt.Sprintf("sq %d, cq %d, fixed buffers %v, fixed files %v", ub.ring.SQSize(), ub.ring.CQSize(), ub.fixedBufs, ub.fixedFiles)
	}
	return info
}

// Bind attaches the server to its loop: the backend's descriptors join the
// loop's epoll set. Call it before the loop runs.
func (s *Server) Bind(loop *serverkit.Loop) error {
	s.loop = loop
	// The loop spins as long as spinning has lately paid: on a machine
	// with more runnable threads than processors a fixed 50 µs spin mostly
	// held a processor the apps needed, and slept anyway.
	loop.AdaptSpin = &ring.AdaptiveSpin{Max: loop.Spin}
	if err := s.back.bind(loop, s.finish); err != nil {
		return err
	}
	// io_uring queues task work for completions to the thread that
	// submitted; keeping the loop on one thread makes that thread the one
	// that sleeps in epoll_wait.
	loop.Post(func() { runtime.LockOSThread() })
	time.AfterFunc(s.opts.OrphanAfter, func() { loop.Post(s.releaseOrphans) })
	return nil
}

// Close releases the backend, the persistent table and the root. The loop
// must have stopped (it drops every channel as it stops).
func (s *Server) Close() error {
	return errors.Join(s.back.close(), s.persist.close(), unix.Close(s.root))
}

// Main runs diskproc under its supervisor until ctx ends or the supervisor
// goes away.
func Main(ctx context.Context, cfg *configs.Config, log *slog.Logger) error {
	persist, err := proto.PersistFromEnv()
	if err != nil {
		log.Warn("no persistent memory: open files will not survive a restart", "err", err)
		persist = nil
	}
	s, err := New(Options{
		Root: cfg.Diskproc.Root, Backend: cfg.Diskproc.Backend,
		MaxOpen: cfg.Diskproc.MaxOpen, MaxInflight: cfg.Diskproc.MaxInflight,
		MaxApps: cfg.Supervisor.MaxApps, MaxPinned: int64(cfg.Diskproc.MaxPinned),
		Persist: persist, Log: log,
	})
	if persist != nil {
		persist.Close() // mapped; the supervisor keeps the memfd
	}
	if err != nil {
		return err
	}
	log.Info("diskproc starting", "backend", s.Backend(), "root", cfg.Diskproc.Root)
	err = serverkit.ServeWith(ctx, proto.ServerDisk, s, log, s.Info, s.Bind)
	return errors.Join(err, s.Close())
}

// ProbeUring reports whether the io_uring backend can run here, and why
// not: for tests that need it to skip with a reason.
func ProbeUring() error { return uring.Probe() }
