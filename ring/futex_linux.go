package ring

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations (linux/futex.h). We use the shared (not _PRIVATE) forms.
const (
	futexOpWait = 0
	futexOpWake = 1
)

// The futex words live in a MAP_SHARED mapping, so the (non-private) futex
// operations match waiters and wakers across processes.

func futexWait(word *atomic.Uint32, val uint32, timeout time.Duration) error {
	var ts *unix.Timespec
	if timeout > 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)),
		futexOpWait, uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func futexWake(word *atomic.Uint32, n int) error {
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)),
		futexOpWake, uintptr(n), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
