package netproc

import (
	"container/heap"
	"time"

	"golang.org/x/sys/unix"
)

// timers runs functions on the loop at given times: connect timeouts,
// listeners lingering after their app, and whatever a backend asks for
// (package backend's Env.AfterFunc). One timerfd in the loop's epoll set is
// armed for the earliest deadline of a heap. Loop only.
type timers struct {
	fd    int
	heap  timerHeap
	armed time.Time // the deadline the timerfd is set for; zero: disarmed
	now   func() time.Time
}

type timer struct {
	t     *timers
	when  time.Time
	f     func()
	index int // in the heap; -1 once run or stopped
}

func newTimers() (*timers, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &timers{fd: fd, now: time.Now}, nil
}

func (ts *timers) close() { unix.Close(ts.fd) }

// AfterFunc runs f on the loop once d has passed.
func (ts *timers) AfterFunc(d time.Duration, f func()) *timer {
	t := &timer{t: ts, when: ts.now().Add(d), f: f}
	heap.Push(&ts.heap, t)
	ts.rearm()
	return t
}

// Stop cancels t; false if it already ran or was stopped.
func (t *timer) Stop() bool {
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.t.heap, t.index)
	t.t.rearm()
	return true
}

// fire runs what is due; the loop calls it when the timerfd is readable.
func (ts *timers) fire(uint32) {
	var buf [8]byte
	unix.Read(ts.fd, buf[:])
	ts.armed = time.Time{}
	now := ts.now()
	for len(ts.heap) > 0 && !ts.heap[0].when.After(now) {
		t := heap.Pop(&ts.heap).(*timer)
		t.f()
	}
	ts.rearm()
}

// rearm points the timerfd at the earliest deadline, if that changed.
func (ts *timers) rearm() {
	var next time.Time
	if len(ts.heap) > 0 {
		next = ts.heap[0].when
	}
	if next.Equal(ts.armed) {
		return
	}
	ts.armed = next
	var spec unix.ItimerSpec
	if !next.IsZero() {
		d := max(next.Sub(ts.now()), time.Microsecond) // zero would disarm
		spec.Value = unix.NsecToTimespec(d.Nanoseconds())
	}
	unix.TimerfdSettime(ts.fd, 0, &spec, nil)
}

// timerHeap orders timers by deadline.
type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when.Before(h[j].when) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
