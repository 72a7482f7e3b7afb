package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"saturn/netproc/link"
)

// NetnsDialer opens TCP connections from inside a named network namespace,
// the way a client run with `ip netns exec` would: with the usertcp
// backend, the kernel in saturn's namespace is the web server's peer.
//
// A socket belongs to the namespace of the thread that created it, and
// keeps it wherever it is used afterwards. So a few worker goroutines,
// each on an OS thread that joined the namespace (link.InNamespace),
// make the connections, and hand them to whoever asked.
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
	d := &NetnsDialer{ns: ns, reqs: make(chan dialRequest), done: make(chan struct{})}
	joined := make(chan error, dialWorkers)
	for range dialWorkers {
		d.wg.Add(1)
		go d.worker(joined)
	}
	var errs []error
	for range dialWorkers {
		if err := <-joined; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		d.Close()
		return nil, fmt.Errorf("chaos: %w", errors.Join(errs...))
	}
	return d, nil
}

// worker joins the namespace, says whether it could on joined, and dials
// until the dialer closes.
func (d *NetnsDialer) worker(joined chan<- error) {
	defer d.wg.Done()
	in := false
	err := link.InNamespace(d.ns, func() error {
		in = true
		joined <- nil
		var dialer net.Dialer
		for {
			select {
			case r := <-d.reqs:
				c, err := dialer.DialContext(r.ctx, r.network, r.addr)
				r.out <- dialResult{c, err}
			case <-d.done:
				return nil
			}
		}
	})
	if !in {
		joined <- err
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
