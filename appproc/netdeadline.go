package appproc

import (
	"sync"
	"time"
)

// deadline is one direction's deadline of a socket: a channel that is
// closed when the deadline passes, so that a blocked call can select on
// it, and replaced whenever the deadline moves, so that moving it affects
// calls already waiting (as net.Conn requires). Safe for concurrent use.
type deadline struct {
	mu     sync.Mutex
	t      time.Time
	timer  *time.Timer
	expiry chan struct{} // closed once t has passed
}

func newDeadline() deadline { return deadline{expiry: make(chan struct{})} }

// set moves the deadline to t; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expiry // the timer fired: wait until it closed the channel
	}
	d.timer = nil
	d.t = t
	closed := isClosed(d.expiry)
	if t.IsZero() {
		if closed {
			d.expiry = make(chan struct{})
		}
		return
	}
	if left := time.Until(t); left > 0 {
		if closed {
			d.expiry = make(chan struct{})
		}
		expiry := d.expiry
		d.timer = time.AfterFunc(left, func() { close(expiry) })
		return
	}
	if !closed {
		close(d.expiry)
	}
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
