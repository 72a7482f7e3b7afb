package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"

	"github.com/vishvananda/netns"
)

// NetnsDialer opens TCP connections from inside a named network namespace,
// the way a client run with `ip netns exec` would: with the usertcp
// backend, the kernel in saturn's namespace is the web server's peer.
//
// A socket belongs to the namespace of the thread that created it, and
// keeps it wherever it is used afterwards. So a few worker goroutines,
// each locked to an OS thread that joined the namespace, make the
// connections, and hand them to whoever asked; those threads are never
// unlocked, so when a worker ends the runtime discards its thread rather
// than let another goroutine run in the namespace.
type NetnsDialer struct {
	ns   string
	reqs chan dialRequest
	done chan struct{} // closed by Close
	wg   sync.WaitGroup
	once sync.Once
}

type dialRequest struct {
	ctx           context.Context
	network, addr string
	out           chan<- dialResult
}

type dialResult struct {
	c   net.Conn
	err error
}

// dialWorkers bounds the dials in progress at once: the checking clients,
// the load generator's connections and the probe together stay below it.
const dialWorkers = 16

// NewNetnsDialer starts the workers of a dialer into namespace ns.
func NewNetnsDialer(ns string) (*NetnsDialer, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, fmt.Errorf("chaos: namespace %q: %w", ns, err)
	}
	defer h.Close()
	d := &NetnsDialer{ns: ns, reqs: make(chan dialRequest), done: make(chan struct{})}
	joined := make(chan error, dialWorkers)
	for range dialWorkers {
		d.wg.Add(1)
		go d.worker(h, joined)
	}
	var errs []error
	for range dialWorkers {
		if err := <-joined; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		d.Close()
		return nil, fmt.Errorf("chaos: joining namespace %q: %w", ns, errors.Join(errs...))
	}
	return d, nil
}

// worker joins the namespace on its own thread, reports, and dials until
// the dialer closes.
func (d *NetnsDialer) worker(h netns.NsHandle, joined chan<- error) {
	defer d.wg.Done()
	// Back to its own namespace before it is unlocked (see
	// testkit.InNamespace for why); discarded if it cannot.
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		joined <- err
		return
	}
	defer orig.Close()
	if err := netns.Set(h); err != nil {
		joined <- err
		return
	}
	defer func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	joined <- nil
	var dialer net.Dialer
	for {
		select {
		case r := <-d.reqs:
			c, err := dialer.DialContext(r.ctx, r.network, r.addr)
			r.out <- dialResult{c, err}
		case <-d.done:
			return
		}
	}
}

// DialContext connects from inside the namespace; its shape is
// http.Transport.DialContext's (and loadgen.DialFunc's). After Close it
// fails with net.ErrClosed (an HTTP transport may still be dialing for a
// request its client gave up on).
func (d *NetnsDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	out := make(chan dialResult, 1)
	select {
	case d.reqs <- dialRequest{ctx, network, addr, out}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-d.done:
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.ErrClosed}
	}
	r := <-out
	return r.c, r.err
}

// Close ends the workers (and their threads), once a dial in progress
// has finished.
func (d *NetnsDialer) Close() {
	d.once.Do(func() { close(d.done) })
	d.wg.Wait()
}
