package ring

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// What an app can do to its doorbells, and what must not follow: a server
// or the supervisor blocked on it. The app holds the server's eventfd (the
// same open file description as the server, so one O_NONBLOCK flag and one
// counter for both) and the region's futex words.

// saturated is the largest value an eventfd's counter holds; a write that
// would pass it blocks, or fails with EAGAIN in non-blocking mode.
const saturated = 0xfffffffffffffffe

// appsCopy is the app's descriptor for the server's doorbell: a duplicate,
// sharing the open file description as one received over SCM_RIGHTS does.
func appsCopy(t *testing.T, d *EventDoorbell) int {
	t.Helper()
	fd, err := unix.FcntlInt(uintptr(d.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// makeBlocking clears O_NONBLOCK through fd, for every holder of its file.
func makeBlocking(t *testing.T, fd int) {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func writeCount(t *testing.T, fd int, v uint64) {
	t.Helper()
	var b [8]byte
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	if _, err := unix.Write(fd, b[:]); err != nil {
		t.Fatalf("writing %#x to the eventfd: %v", v, err)
	}
}

// eventfdCount reads an eventfd's counter without touching it, from
// /proc/self/fdinfo.
func eventfdCount(t *testing.T, fd int) uint64 {
	t.Helper()
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(line, "eventfd-count:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("fdinfo: %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("fdinfo of %d has no eventfd-count:\n%s", fd, info)
	return 0
}

// within runs f and fails the test if it has not returned after d: a
// blocked call shows as a failure naming the step, not as a hung test.
func within(t *testing.T, d time.Duration, step string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	case <-time.After(d):
		t.Fatalf("%s blocked for %v", step, d)
	}
}

// TestEventDoorbellIsNeverRead: a sleeper learns of rings from edges and
// leaves the counter alone, so an app can neither make a server's read
// block (there is none) nor lose a wake-up that a read by the server would
// have swallowed.
func TestEventDoorbellIsNeverRead(t *testing.T) {
	d, err := NewEventDoorbell()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The first Sleep may see the edge of adding a non-empty counter.
	d.Ring()
	within(t, 5*time.Second, "first sleep", func() error { return d.Sleep(d.Prepare(), time.Now().Add(time.Second)) })
	const rings = 20
	for i := 2; i <= rings; i++ {
		woke := make(chan error, 1)
		go func() { woke <- d.Sleep(d.Prepare(), time.Now().Add(10*time.Second)) }()
		if err := d.Ring(); err != nil {
			t.Fatal(err)
		}
		if err := <-woke; err != nil {
			t.Fatalf("ring %d: %v", i, err)
		}
	}
	if err := d.Sleep(d.Prepare(), time.Now().Add(20*time.Millisecond)); !errors.Is(err, ErrWaitTimeout) {
		t.Fatalf("sleep with no ring pending: %v, want a timeout", err)
	}
	if n := eventfdCount(t, d.FD()); n != rings {
		t.Fatalf("counter %d after %d rings: someone read it", n, rings)
	}
}

// TestHostileAppCannotBlockServer attacks a channel's doorbells as an app
// can, then does everything a server and the supervisor do with them: a
// new incarnation (which wakes the app), a completion the app asked to be
// woken for, the supervisor's EndIncarnation, sleeping on the submission
// ring, closing. None may block.
func TestHostileAppCannotBlockServer(t *testing.T) {
	for _, attack := range []string{"saturate", "empty"} {
		t.Run(attack, func(t *testing.T) {
			s, err := NewEventDoorbell()
			if err != nil {
				t.Fatal(err)
			}
			r := newRegion(t, testGeometry)
			app, err := r.App(Bells{Server: s})
			if err != nil {
				t.Fatal(err)
			}
			theirs := appsCopy(t, s)
			switch attack {
			case "saturate": // a write to it now blocks
				writeCount(t, theirs, saturated)
			case "empty": // a read of it now blocks
				s.Ring()
				var b [8]byte
				if _, err := unix.Read(theirs, b[:]); err != nil {
					t.Fatal(err)
				}
			}
			makeBlocking(t, theirs)
			word32(r.mem, offCQFutex).Store(0xdeadbeef) // the app's word is the app's to scribble on
			if !app.Complete.ArmWakeup() {
				t.Fatal("completion ring not empty")
			}

			var srv *ServerEnd
			within(t, 5*time.Second, "a new server incarnation", func() (err error) {
				srv, err = r.Server(Bells{Server: s})
				return err
			})
			within(t, 5*time.Second, "publishing a completion to a sleeping app", func() error {
				if n, err := srv.Complete.Reserve(1); n != 1 || err != nil {
					return fmt.Errorf("reserve: %d, %v", n, err)
				}
				return srv.Complete.Publish(1)
			})
			within(t, 5*time.Second, "the server sleeping on its ring", func() error {
				deadline := time.Now().Add(50 * time.Millisecond)
				for {
					n, err := srv.Submit.Wait(WaitPolicy{}, deadline)
					switch {
					case errors.Is(err, ErrWaitTimeout):
						return nil
					case err != nil:
						return err
					case n > 0:
						return fmt.Errorf("woke with %d entries from nowhere", n)
					}
				}
			})
			within(t, 5*time.Second, "the supervisor ending the incarnation", func() error { return r.EndIncarnation() })
			within(t, 5*time.Second, "closing the server's doorbell", s.Close)
		})
	}
}
