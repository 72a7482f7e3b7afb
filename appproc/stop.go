package appproc

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
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
// Once the app is stopping, closing one of its listeners (TCPListener.Close,
// which net/http's Shutdown calls) leaves the socket to the app's next
// incarnation (Leave) instead of closing it: netproc goes on queueing
// connections on it, and the next incarnation's Listen adopts them, so no
// client is refused across a restart. An app that stops for good leaves its
// listeners too; netproc closes them after its linger (30 s).

// ErrStopping is StopContext's cause when the app is asked to stop.
var ErrStopping = errors.New("appproc: the app is asked to stop")

var stopping struct {
	once   sync.Once // installs the signal handler
	mu     sync.Mutex
	ch     chan struct{} // closed by stop
	closed bool
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
// A second one ends it at once, as it would have without the handler.
func Stopping() <-chan struct{} {
	stopping.once.Do(func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		go func() {
			<-sig
			// The next one has its default effect: an app stuck in its
			// shutdown can still be ended by hand.
			signal.Reset(syscall.SIGTERM, syscall.SIGINT)
			Stop()
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

// Stop begins a graceful stop of the app, as SIGTERM does: Stopping's
// channel closes, and listeners closed from then on are left to the next
// incarnation. It does not end anything by itself.
func Stop() {
	ch := stopChan()
	stopping.mu.Lock()
	defer stopping.mu.Unlock()
	if !stopping.closed {
		stopping.closed = true
		close(ch)
	}
}

// IsStopping reports whether the app is stopping (Stopping's channel is
// closed).
func IsStopping() bool {
	stopping.mu.Lock()
	defer stopping.mu.Unlock()
	return stopping.closed
}
