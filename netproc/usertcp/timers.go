package usertcp

import (
	"time"

	"golang.org/x/sys/unix"

	"saturn/netproc/tcp"
)

// The connection timers: the core reports one deadline per connection
// (Output.Timer), and the shell keeps them all in one binary heap on the
// loop, with one timerfd in the loop's epoll set armed for the earliest.
// No Go timer or closure is made per connection, so 100,000 connections
// cost 100,000 small heap entries at most.
//
// The heap is lazy. A connection remembers the deadline of the entry it
// has queued (queuedAt). A deadline that moves later leaves that entry in
// place: when it fires, the connection's real deadline is found to be
// later and is queued then. Only a deadline that moves earlier, or a
// connection with no entry, pushes a new one; the entry it replaces
// becomes stale and is dropped when it surfaces (its deadline or
// generation no longer matches). An RTO pushed forward by every ACK thus
// costs no heap work at all.

// timerEntry is one queued deadline.
type timerEntry struct {
	when tcp.Time
	slot int32  // the connection's record; -1: housekeeping
	gen  uint32 // the connection's generation when queued
}

type timerHeap []timerEntry

func (h timerHeap) less(i, j int) bool { return h[i].when < h[j].when }

func (h *timerHeap) push(e timerEntry) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *timerHeap) pop() timerEntry {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// timerWheel is the heap and its timerfd. Loop only.
type timerWheel struct {
	fd    int
	heap  timerHeap
	armed tcp.Time // what the timerfd is set for; 0: disarmed
}

func newTimerWheel() (*timerWheel, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &timerWheel{fd: fd}, nil
}

func (w *timerWheel) close() { unix.Close(w.fd) }

// add queues an entry and re-arms the timerfd if it is now the earliest.
func (w *timerWheel) add(e timerEntry) {
	w.heap.push(e)
	if w.armed == 0 || e.when < w.armed {
		w.arm(e.when)
	}
}

// arm sets the timerfd for the absolute monotonic time at.
func (w *timerWheel) arm(at tcp.Time) {
	w.armed = at
	var spec unix.ItimerSpec
	if at != 0 {
		spec.Value = unix.NsecToTimespec(max(int64(at), 1))
	}
	unix.TimerfdSettime(w.fd, unix.TFD_TIMER_ABSTIME, &spec, nil)
}

// maxFirePerWake bounds the timers one wake-up fires. When tens of
// thousands of peers vanish at once, their retransmission timers fall due
// together: fired in one go, the retransmissions left in one batch and the
// kernel's answers (RSTs) overflowed the TUN device's queue (500 packets),
// so the connections they would have ended went on retransmitting for
// minutes. Past the bound the timerfd is re-armed to fire at once, after
// the loop has written this batch and read what came back.
const maxFirePerWake = 256

// due pops the entries whose time has come, at most maxFirePerWake of
// them, passing each to fire, and re-arms for the next. fire may add
// entries.
func (w *timerWheel) due(now tcp.Time, fire func(timerEntry)) {
	var buf [8]byte
	unix.Read(w.fd, buf[:])
	w.armed = 0
	for n := 0; len(w.heap) > 0 && w.heap[0].when <= now; n++ {
		if n == maxFirePerWake {
			w.arm(now) // in the past: fires as soon as the loop polls again
			return
		}
		fire(w.heap.pop())
	}
	if len(w.heap) > 0 {
		w.arm(w.heap[0].when)
	} else {
		w.arm(0)
	}
}

// schedule queues c's new deadline d (0: none) lazily, as described above.
func (s *Stack) schedule(c *conn, d tcp.Time) {
	c.deadline = d
	if d == 0 || (c.queuedAt != 0 && c.queuedAt <= d) {
		return
	}
	c.queuedAt = d
	s.timers.add(timerEntry{when: d, slot: c.slot, gen: c.gen})
}

// housekeepEvery is how often the stack does its periodic work: reclaiming
// the pages of emptied buffers, expiring IP reassemblies, publishing its
// counters for status.
const housekeepEvery = 250 * time.Millisecond

// onTimer runs what is due: connection timers and housekeeping.
func (s *Stack) onTimer(uint32) {
	s.enter(false)
	defer s.exit()
	now := s.now
	s.timers.due(now, func(e timerEntry) {
		if e.slot < 0 {
			s.housekeep()
			s.timers.add(timerEntry{when: now.Add(housekeepEvery), slot: -1})
			return
		}
		c := s.conns[e.slot]
		if c == nil || c.gen != e.gen || c.queuedAt != e.when {
			return // stale: the connection is gone, or queued another entry
		}
		c.queuedAt = 0
		if c.deadline == 0 {
			return
		}
		if c.deadline > now {
			s.schedule(c, c.deadline) // it moved later meanwhile
			return
		}
		s.step(c, tcp.Input{Kind: tcp.InTimer})
	})
}
