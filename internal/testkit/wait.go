package testkit

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Until calls cond until it reports true, or until timeout has passed, and
// reports whether it did. It checks at once, then after pauses that grow
// from 1 ms to 20 ms, so that a condition that holds soon is seen soon and
// one that takes long costs little. Tests wait on conditions with it, never
// on sleeps: a sleep long enough for a loaded machine is a waste on an idle
// one, and one short enough for an idle machine is a flake on a loaded one.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		if cond() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// Eventually is Until that fails t (Fatal) if cond does not hold within
// timeout, saying what the test waited for: format and args.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !Until(timeout, cond) {
		t.Fatalf("waited %v for %s", timeout, fmt.Sprintf(format, args...))
	}
}

// Blocked counts the goroutines blocked (waiting on a channel, a select, a
// lock, a sleep, a system call or the network: anything but running)
// inside the function fn, named as a stack trace names it
// ("saturn/netproc/link.(*Channel).Read"). A test that checks that Close
// unblocks a blocked call waits with it until the call blocks.
func Blocked(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, body, _ := strings.Cut(g, "\n")
		if strings.Contains(head, "[running]") || strings.Contains(head, "[runnable]") {
			continue
		}
		if strings.Contains(body, fn+"(") {
			count++
		}
	}
	return count
}

// WaitBlocked waits until n goroutines are blocked inside fn (Blocked),
// and fails t if they are not within 10 s.
func WaitBlocked(t testing.TB, fn string, n int) {
	t.Helper()
	Eventually(t, 10*time.Second, func() bool { return Blocked(fn) >= n }, "%d goroutines blocked in %s", n, fn)
}
