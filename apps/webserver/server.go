package webserver

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve once Shutdown or Close has been
// called.
var ErrServerClosed = errors.New("webserver: server closed")

// Server is a static-file HTTP/1.1 server. Its methods are safe for
// concurrent use. Each accepted connection is served by one goroutine, which
// reads requests, writes responses and owns every buffer of the connection;
// no other goroutine is started per request.
type Server struct {
	cfg   Config
	types contentTypes
	log   *accessLog
	date  dateCache

	cache *fileCache // nil unless Config.OpenFileCache

	shutting atomic.Bool
	// graceEnd is when Shutdown's grace for idle connections ends, in
	// UnixNano; set before shutting.
	graceEnd atomic.Int64
	conns    sync.WaitGroup // one count per live connection goroutine
	busyLog  everySecond    // paces the log of 503s

	// mu guards the two sets; it is never held while calling into a
	// connection or a listener except to Close them.
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	active    map[*conn]struct{}
}

// New returns a Server for cfg, with defaults applied.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var cache *fileCache
	if cfg.OpenFileCache > 0 {
		cache = newFileCache(cfg.Root, cfg.OpenFileCache, cfg.OpenFileCacheSize, cfg.ContentCache, cfg.ContentCacheFileMax)
	}
	return &Server{
		cfg:       cfg,
		cache:     cache,
		types:     newContentTypes(cfg.ContentTypes),
		log:       newAccessLog(cfg.AccessLog, cfg.AccessLogFormat),
		listeners: map[net.Listener]struct{}{},
		active:    map[*conn]struct{}{},
	}, nil
}

// Serve is the package-level convenience: it serves ln with cfg until ctx is
// done, then shuts down gracefully within cfg.ShutdownTimeout (the SIGTERM
// path: stop accepting, finish the requests in flight, return). It returns
// nil after a clean shutdown.
func Serve(ctx context.Context, ln net.Listener, cfg Config) error {
	return ServeListeners(ctx, cfg, ln)
}

// ServeListeners is Serve for one server on several listeners (plain HTTP
// and HTTPS, say): if one fails, the others are shut down too and its
// error is returned.
func ServeListeners(ctx context.Context, cfg Config, lns ...net.Listener) error {
	s, err := New(cfg)
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	if len(lns) == 0 {
		return errors.New("webserver: no listener to serve")
	}
	served := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { served <- s.Serve(ln) }()
	}
	pending := len(lns)
	select {
	case err = <-served:
		pending--
		// A listener failed: stop at once, as a server with one would.
		s.Close()
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
		defer cancel()
		err = s.Shutdown(sctx)
	}
	for ; pending > 0; pending-- {
		if serr := <-served; !errors.Is(serr, ErrServerClosed) && err == nil {
			err = serr
		}
	}
	return err
}

// Serve accepts connections on ln and serves each on its own goroutine
// until ln fails or the server is shut down. It always returns an error:
// ErrServerClosed after Shutdown or Close. ln is closed on return.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrack(ln)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			// Out of descriptors or buffers: wait and try again, as
			// net/http does, rather than spin or give up.
			if ne, ok := err.(net.Error); ok && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.cfg.ErrorLog.Warn("webserver: accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, nc)
		s.add(c)
		go c.serve()
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// Shutdown stops the server gracefully: it closes the listeners, lets every
// connection finish the request it is serving (a request whose head has
// begun to arrive counts), closes idle connections, and waits for all of
// them. If ctx ends first, the remaining connections are closed and ctx's
// error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.graceEnd.Store(time.Now().Add(max(s.cfg.ShutdownGrace, 0)).UnixNano())
	s.shutting.Store(true)
	s.mu.Lock()
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.active {
		c.interruptIfIdle()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
		s.closeCache()
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// graceDeadline is when an idle connection closes during Shutdown: the end
// of ShutdownGrace, or a time long past when there is none.
func (s *Server) graceDeadline() time.Time {
	if s.cfg.ShutdownGrace < 0 {
		return aLongTimeAgo
	}
	return time.Unix(0, s.graceEnd.Load())
}

func (s *Server) closeCache() {
	if s.cache != nil {
		s.cache.close()
	}
}

// Close stops the server at once: listeners and connections are closed,
// requests in flight are cut off. It returns when nothing is left running.
func (s *Server) Close() error {
	s.shutting.Store(true)
	s.mu.Lock()
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.active {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.conns.Wait()
	s.closeCache()
	return nil
}

func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting.Load() {
		return false
	}
	s.listeners[ln] = struct{}{}
	// While Serve runs, Shutdown waits for it as for a connection: so a
	// connection its Accept returns during the shutdown is added and
	// served, not dropped (see add).
	s.conns.Add(1)
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
	ln.Close()
	s.conns.Done()
}

// add registers a new connection. During a shutdown too: a client that
// Accept returned as the listener closed (or that netproc handed over as
// the app left its listener) is served within the shutdown's grace, with
// Connection: close, rather than dropped; Serve holds Shutdown's wait
// open meanwhile (track), so the WaitGroup is never added to after it
// reached zero.
func (s *Server) add(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active[c] = struct{}{}
	s.conns.Add(1)
}

func (s *Server) remove(c *conn) {
	s.mu.Lock()
	delete(s.active, c)
	s.mu.Unlock()
	s.conns.Done()
}

// everySecond says yes at most once a second: for a log line that a burst
// would otherwise repeat per request.
type everySecond struct{ last atomic.Int64 }

func (e *everySecond) allow(now time.Time) bool {
	sec := now.Unix()
	last := e.last.Load()
	return sec != last && e.last.CompareAndSwap(last, sec)
}
