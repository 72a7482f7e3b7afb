package appproc

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"saturn/proto"
)

// Graceful stops. The supervisor asks an app to stop by sending it SIGTERM:
// `saturn stop`, `saturn restart NAME`, `saturn upgrade NAME` and a reload
// that changes the app all do, and send SIGKILL if it has not exited after
// stop_grace. An app learns of it here, and stops at a request boundary:
//
//	ctx := appproc.StopContext(context.Background())
//	srv := &http.Server{Handler: h}
//	go func() {
//		<-ctx.Done() // SIGTERM
//		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//		defer cancel()
//		srv.Shutdown(sctx) // leaves the listener, finishes what is in flight
//	}()
//	if err := srv.Serve(ln); err != http.ErrServerClosed {
//		log.Fatal(err)
//	}
//
// A stop goes in two steps. At once, IsStopping reports true, and every
// listener of the process is left to the app's next incarnation (Leave):
// netproc goes on queueing connections on it, and the next incarnation's
// Listen adopts them, so no client is refused across a restart. An Accept
// waiting on a left listener goes on waiting, until the app closes the
// listener (which then returns nil: net/http's Shutdown does). Then, once
// every connection the app had accepted has brought its first bytes (at
// most StopSettle), Stopping's channel closes. The wait is for servers
// like net/http's, whose Shutdown drops a request that had not begun to
// arrive when it was called, even on a connection accepted before, where
// the client (which does not retry a new connection) would see it closed.
//
// A listener closed while the app is stopping is left, not closed, too.
// An app that stops for good leaves its listeners as well; netproc closes
// them after its linger (30 s).

// StopSettle bounds the wait, in a stop, for connections the app accepted
// to bring their first bytes before Stopping's channel closes.
const StopSettle = 250 * time.Millisecond

// settleMargin is how long a stop waits after the last of those bytes
// arrived, for the app to read the request they begin.
const settleMargin = 20 * time.Millisecond

// ErrStopping is StopContext's cause when the app is asked to stop.
var ErrStopping = errors.New("appproc: the app is asked to stop")

var stopping struct {
	once   sync.Once // installs the signal handler
	mu     sync.Mutex
	ch     chan struct{} // Stopping's; closed once the stop has settled
	begun  bool          // Stop was called (or a signal came)
	closed bool          // ch is closed
}

func stopChan() chan struct{} {
	stopping.mu.Lock()
	defer stopping.mu.Unlock()
	if stopping.ch == nil {
		stopping.ch = make(chan struct{})
	}
	return stopping.ch
}

// Stopping returns a channel that is closed when the app is asked to stop:
// on SIGTERM or SIGINT, or when the app calls Stop.
//
// The first call to Stopping or StopContext catches SIGTERM and SIGINT for
// the process: from then on the first of them no longer ends it, the app
// ends itself once it has shut down (within the supervisor's stop_grace).
// A second one, or one after the stop has settled, ends it at once, as it
// would have without the handler. An app that never calls them dies of
// SIGTERM: netproc keeps its listeners then too, but its connections are
// cut, as for any app that dies (docs/restart.md).
func Stopping() <-chan struct{} {
	stopping.once.Do(func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		stopped := stopChan()
		go func() {
			select {
			case <-sig:
				Stop()
			case <-stopped: // Stop, called by the app
			}
			// The next one has its default effect: an app stuck in its
			// shutdown can still be ended by hand.
			signal.Stop(sig)
			signal.Reset(syscall.SIGTERM, syscall.SIGINT)
		}()
	})
	return stopChan()
}

// StopContext returns a context that is done when the app is asked to stop
// (see Stopping), or when parent is. Its cause (context.Cause) is
// ErrStopping for a stop.
func StopContext(parent context.Context) context.Context {
	ch := Stopping()
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		select {
		case <-ch:
			cancel(ErrStopping)
		case <-ctx.Done():
		}
	}()
	return ctx
}

// Stop begins a graceful stop of the app, as SIGTERM does: the app's
// listeners are left to its next incarnation at once, and Stopping's
// channel closes once the connections it accepted have brought their
// first bytes (see above). It returns at once, and ends nothing by itself.
func Stop() {
	stopping.mu.Lock()
	begun := stopping.begun
	stopping.begun = true
	stopping.mu.Unlock()
	if begun {
		return
	}
	go func() {
		for _, l := range openListeners() {
			l.park()
		}
		settle(time.Now().Add(StopSettle))
		ch := stopChan()
		stopping.mu.Lock()
		defer stopping.mu.Unlock()
		if !stopping.closed {
			stopping.closed = true
			close(ch)
		}
	}()
}

// IsStopping reports whether a stop has begun (Stop was called, or a
// signal came), even if Stopping's channel is not closed yet.
func IsStopping() bool {
	stopping.mu.Lock()
	defer stopping.mu.Unlock()
	return stopping.begun
}

// settle waits until no connection the app accepted lately is still
// without its first bytes, then settleMargin, or until deadline.
func settle(deadline time.Time) {
	for waitingFirstBytes() && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(max(0, min(settleMargin, time.Until(deadline))))
}

// The listeners a stop leaves: every open one of the process.
var listeners struct {
	mu   sync.Mutex
	open map[*TCPListener]struct{}
}

func registerListener(l *TCPListener) {
	listeners.mu.Lock()
	defer listeners.mu.Unlock()
	if listeners.open == nil {
		listeners.open = map[*TCPListener]struct{}{}
	}
	listeners.open[l] = struct{}{}
}

func unregisterListener(l *TCPListener) {
	listeners.mu.Lock()
	defer listeners.mu.Unlock()
	delete(listeners.open, l)
}

func openListeners() []*TCPListener {
	listeners.mu.Lock()
	defer listeners.mu.Unlock()
	var ls []*TCPListener
	for l := range listeners.open {
		ls = append(ls, l)
	}
	return ls
}

// park leaves l to the next incarnation for a stop; Accept then waits for
// Close, which returns nil.
func (l *TCPListener) park() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.parked = make(chan struct{})
	l.mu.Unlock()
	l.close(proto.CloseKeep)
}

// unpark is Close (or Leave) of a parked listener: the Accepts waiting
// return net.ErrClosed. False if l is not parked, or was unparked before.
func (l *TCPListener) unpark() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.parked == nil || l.unparked {
		return false
	}
	l.unparked = true
	close(l.parked)
	return true
}

// waitUnpark holds an Accept on a parked listener until Close, or until
// its deadline.
func (l *TCPListener) waitUnpark() error {
	l.mu.Lock()
	p := l.parked
	l.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p:
		return nil
	case <-l.dl.wait():
		return os.ErrDeadlineExceeded
	}
}

// The connections accepted last, which a stop waits on until each has
// brought its first bytes: a bounded ring, so that it costs nothing to
// keep; a connection that never sends holds a stop for StopSettle at
// most.
var recentAccepts struct {
	mu    sync.Mutex
	conns [256]*TCPConn
	next  int
}

// accepted notes c, a connection just accepted, for a stop.
func accepted(c *TCPConn) *TCPConn {
	recentAccepts.mu.Lock()
	recentAccepts.conns[recentAccepts.next%len(recentAccepts.conns)] = c
	recentAccepts.next++
	recentAccepts.mu.Unlock()
	return c
}

// waitingFirstBytes reports whether a connection accepted lately is open
// and has received nothing yet.
func waitingFirstBytes() bool {
	recentAccepts.mu.Lock()
	defer recentAccepts.mu.Unlock()
	for _, c := range recentAccepts.conns {
		if c == nil {
			continue
		}
		c.mu.Lock()
		waiting := !c.closed && c.recvOff == 0 && c.rerr == nil
		c.mu.Unlock()
		if waiting {
			return true
		}
	}
	return false
}
