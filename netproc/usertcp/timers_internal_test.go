package usertcp

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/netproc/tcp"
)

// TestTimersFireInBoundedBatches: a wake-up fires at most maxFirePerWake
// due timers, in deadline order, and leaves the timerfd ready at once for
// the rest.
func TestTimersFireInBoundedBatches(t *testing.T) {
	w, err := newTimerWheel()
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	now := tcp.Time(ts.Nano())
	const n = 3*maxFirePerWake + 10
	for i := range n {
		w.add(timerEntry{when: now - tcp.Time(n-i), slot: int32(i)})
	}
	w.add(timerEntry{when: now + tcp.Time(time.Hour), slot: -1}) // not due
	var fired []int32
	for wake := 1; ; wake++ {
		if wake > 10 {
			t.Fatalf("%d wake-ups and still %d due", wake, n-len(fired))
		}
		pfd := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		if k, _ := unix.Poll(pfd, 100); k != 1 {
			t.Fatalf("wake %d: the timerfd is not ready with %d timers due", wake, n-len(fired))
		}
		before := len(fired)
		w.due(now, func(e timerEntry) { fired = append(fired, e.slot) })
		if got := len(fired) - before; got > maxFirePerWake {
			t.Fatalf("wake %d fired %d timers, more than %d", wake, got, maxFirePerWake)
		}
		if len(fired) == n {
			break
		}
	}
	for i, s := range fired {
		if s != int32(i) {
			t.Fatalf("timer %d fired as the %dth", s, i)
		}
	}
	if len(w.heap) != 1 || w.armed != now+tcp.Time(time.Hour) {
		t.Fatalf("after the due ones: %d queued, armed for %v", len(w.heap), w.armed)
	}
}
