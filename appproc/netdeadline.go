package appproc

import (
	"sync"
	"time"
)

// deadline is one direction's deadline of a socket: a channel that is
// closed when the deadline passes, so that a blocked call can select on
// it, and replaced whenever the deadline moves, so that moving it affects
// calls already waiting (as net.Conn requires). Safe for concurrent use.
//
// A server moves its deadlines at every request (net/http's and saturn's
// both do), so set re-arms a timer it stopped before it fired rather than
// allocating another.
type deadline struct {
	mu     sync.Mutex
	t      time.Time
	timer  *time.Timer   // armed: closes expiry at t
	spare  *time.Timer   // stopped before it fired, bound to expiry: re-armed by the next set
	expiry chan struct{} // closed once t has passed
	// onExpire, if set, is called (without mu) each time the deadline
	// passes, after expiry is closed: for what waits without a goroutine
	// to select on expiry (TCPConn.WaitRead).
	onExpire func()
}

func newDeadline(onExpire func()) deadline {
	return deadline{expiry: make(chan struct{}), onExpire: onExpire}
}

// set moves the deadline to t; the zero time means none.
func (d *deadline) set(t time.Time) {
	if d.setLocked(t) && d.onExpire != nil {
		d.onExpire()
	}
}

// setLocked is set's work, under mu; it reports whether the deadline has
// just passed (t is in the past and was not already).
func (d *deadline) setLocked(t time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		if d.timer.Stop() {
			d.spare = d.timer
		} else {
			<-d.expiry // the timer fired: wait until it closed the channel
		}
		d.timer = nil
	}
	d.t = t
	var left time.Duration
	if !t.IsZero() {
		left = time.Until(t)
	}
	closed := isClosed(d.expiry)
	switch {
	case !t.IsZero() && left <= 0: // passed already
		if !closed {
			close(d.expiry)
		}
		d.spare = nil // bound to a closed channel now
		return !closed
	case closed: // a deadline that passed is moved, or removed
		d.expiry = make(chan struct{})
		d.spare = nil
	}
	if t.IsZero() {
		return false
	}
	if d.spare != nil {
		d.timer, d.spare = d.spare, nil
		d.timer.Reset(left)
		return false
	}
	expiry, onExpire := d.expiry, d.onExpire
	d.timer = time.AfterFunc(left, func() {
		close(expiry)
		if onExpire != nil {
			onExpire()
		}
	})
	return false
}

// wait is the channel closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expiry
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool { return isClosed(d.wait()) }

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
