package ring

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Doorbell wakes a consumer sleeping on an empty ring.
//
// The protocol that makes wake-ups cheap: a consumer that finds its ring
// empty spins for a while; if still empty, it takes a token from Prepare,
// sets the ring's wake flag, checks the ring once more, and only then Sleeps
// with the token. A producer, after publishing, rings the doorbell only if
// the wake flag is set, and clears it as it rings. A busy channel therefore
// makes no wake-up syscalls at all, and a wake-up that races with the
// consumer falling asleep is never lost: either the consumer's last check
// sees the new entries, or the producer sees the flag, and the token makes a
// Ring between Prepare and Sleep end the Sleep at once.
type Doorbell interface {
	// Prepare returns the token to pass to Sleep. Call it before setting
	// the wake flag.
	Prepare() uint32
	// Sleep blocks until Ring is called (after Prepare returned token), the
	// deadline passes (ErrWaitTimeout; a zero deadline means none), or a
	// spurious wake-up. Callers re-check the ring after every return.
	Sleep(token uint32, deadline time.Time) error
	// Ring wakes the sleeper, if any. It is safe from any goroutine or
	// process.
	Ring() error
}

// FutexDoorbell is a doorbell on a 32-bit word in shared memory: Ring bumps
// the word and calls FUTEX_WAKE; Sleep calls FUTEX_WAIT while the word still
// holds the token. It needs no file descriptors, but a sleeper occupies an OS
// thread.
type FutexDoorbell struct {
	word *atomic.Uint32
}

// Prepare implements Doorbell.
func (d *FutexDoorbell) Prepare() uint32 { return d.word.Load() }

// Sleep implements Doorbell.
func (d *FutexDoorbell) Sleep(token uint32, deadline time.Time) error {
	var timeout time.Duration
	if !deadline.IsZero() {
		timeout = time.Until(deadline)
		if timeout <= 0 {
			return ErrWaitTimeout
		}
	}
	err := futexWait(d.word, token, timeout)
	switch {
	case err == nil, errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		return nil
	case errors.Is(err, unix.ETIMEDOUT):
		return ErrWaitTimeout
	}
	return fmt.Errorf("ring: futex wait: %w", err)
}

// Ring implements Doorbell.
func (d *FutexDoorbell) Ring() error {
	d.word.Add(1)
	if err := futexWake(d.word, 1); err != nil {
		return fmt.Errorf("ring: futex wake: %w", err)
	}
	return nil
}

// EventDoorbell is a doorbell on an eventfd. Unlike a futex word it is a
// file descriptor, so a server can gather the doorbells of many channels
// into one epoll set next to its sockets (netproc does), and it passes
// between processes like any descriptor. Sleep polls the descriptor and
// blocks its OS thread, as a futex wait does; it does not depend on the
// descriptor's O_NONBLOCK flag, which is shared by every process holding it
// and which os/exec clears when it hands a descriptor to a child.
type EventDoorbell struct {
	file *os.File
	fd   int // file's descriptor, read once without disturbing its mode
}

// NewEventDoorbell creates an eventfd doorbell.
func NewEventDoorbell() (*EventDoorbell, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("ring: eventfd: %w", err)
	}
	return &EventDoorbell{file: os.NewFile(uintptr(fd), "eventfd"), fd: fd}, nil
}

// EventDoorbellFromFile wraps an inherited or received eventfd. It takes
// ownership of f.
func EventDoorbellFromFile(f *os.File) (*EventDoorbell, error) {
	fd, err := RawFD(f)
	if err != nil {
		return nil, err
	}
	return &EventDoorbell{file: f, fd: fd}, nil
}

// RawFD is f's descriptor number. Unlike f.Fd it leaves the descriptor's
// blocking mode alone.
func RawFD(f *os.File) (int, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := sc.Control(func(raw uintptr) { fd = int(raw) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// File is the eventfd, for handing to another process. It stays owned by d.
func (d *EventDoorbell) File() *os.File { return d.file }

// FD is the eventfd's descriptor, for adding to an epoll set. It stays
// owned by d.
func (d *EventDoorbell) FD() int { return d.fd }

// Close wakes any sleeper and closes the eventfd.
func (d *EventDoorbell) Close() error {
	d.Ring()
	return d.file.Close()
}

// Prepare implements Doorbell. An eventfd counts rings, so none is lost and
// no token is needed.
func (d *EventDoorbell) Prepare() uint32 { return 0 }

// Sleep implements Doorbell. A signal interrupting poll(2) (Go's runtime
// sends them to preempt goroutines) does not end the sleep.
func (d *EventDoorbell) Sleep(_ uint32, deadline time.Time) error {
	fds := []unix.PollFd{{Fd: int32(d.fd), Events: unix.POLLIN}}
	for {
		timeout := -1
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return ErrWaitTimeout
			}
			timeout = int((left + time.Millisecond - 1) / time.Millisecond) // round up: never wake early
		}
		n, err := unix.Poll(fds, timeout)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return fmt.Errorf("ring: poll on eventfd: %w", err)
		case n == 0:
			return ErrWaitTimeout
		case fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0:
			return fmt.Errorf("ring: eventfd doorbell is broken (revents %#x)", fds[0].Revents)
		}
		// Readable: the counter is non-zero, so this read does not block
		// even if the descriptor is in blocking mode. Only the sleeper
		// reads it.
		var buf [8]byte
		if _, err := unix.Read(d.fd, buf[:]); err != nil && err != unix.EAGAIN && err != unix.EINTR {
			return fmt.Errorf("ring: reading eventfd: %w", err)
		}
		return nil
	}
}

// Ring implements Doorbell.
func (d *EventDoorbell) Ring() error {
	one := [8]byte{1}
	for {
		_, err := unix.Write(d.fd, one[:])
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN: // the counter is saturated: a wake-up is pending anyway
			return nil
		case nil:
			return nil
		}
		return fmt.Errorf("ring: ringing eventfd: %w", err)
	}
}

// WaitPolicy says how a consumer waits for entries.
type WaitPolicy struct {
	// Spin is how long to poll an empty ring before sleeping. Zero means
	// sleep at once; a negative value means never sleep (spin only).
	Spin time.Duration
}

// DefaultSpin is a spin budget that covers a typical round trip through a
// busy peer, so a loaded channel never sleeps, without burning a core for
// long when the peer goes idle.
const DefaultSpin = 50 * time.Microsecond

// Wait blocks until at least one entry is ready, the deadline passes
// (ErrWaitTimeout; zero means none), or the doorbell rings with nothing to
// read (Interrupt, or a ring left over from earlier): then it returns 0 and
// no error, and the caller checks whatever made it wait and waits again. It
// spins first, as the policy says, then sleeps on the ring's doorbell.
func (c *Consumer) Wait(policy WaitPolicy, deadline time.Time) (int, error) {
	if n, err := c.Peek(int(c.r.capacity)); n > 0 || err != nil {
		return n, err
	}
	if policy.Spin != 0 {
		start := time.Now()
		for i := 1; ; i++ {
			if c.ready() {
				return c.Peek(int(c.r.capacity))
			}
			if i%128 == 0 {
				now := time.Now()
				if policy.Spin > 0 && now.Sub(start) >= policy.Spin {
					break
				}
				if !deadline.IsZero() && now.After(deadline) {
					return 0, ErrWaitTimeout
				}
				if i%4096 == 0 {
					runtime.Gosched()
				}
			}
		}
	}
	if c.r.bell == nil {
		return 0, errors.New("ring: cannot sleep: the ring has no doorbell")
	}
	token := c.r.bell.Prepare()
	c.r.wakeFlag.Store(1)
	if c.ready() {
		c.r.wakeFlag.Store(0)
		return c.Peek(int(c.r.capacity))
	}
	err := c.r.bell.Sleep(token, deadline)
	c.r.wakeFlag.Store(0)
	if err != nil {
		return 0, err
	}
	return c.Peek(int(c.r.capacity))
}

// Interrupt wakes a Wait in progress on this consumer (from any goroutine),
// so that its owner can notice a shutdown or an epoch change.
func (c *Consumer) Interrupt() error {
	if c.r.bell == nil {
		return nil
	}
	return c.r.bell.Ring()
}

// ArmWakeup is the sleep protocol of Wait, split for a server that sleeps
// on many rings at once (in epoll, say): it sets the wake flag and reports
// whether the ring is still empty. If it is not, the flag is cleared again
// and the caller must not sleep. After waking, call DisarmWakeup.
func (c *Consumer) ArmWakeup() (empty bool) {
	c.r.wakeFlag.Store(1)
	if c.ready() {
		c.r.wakeFlag.Store(0)
		return false
	}
	return true
}

// DisarmWakeup clears the wake flag set by ArmWakeup.
func (c *Consumer) DisarmWakeup() { c.r.wakeFlag.Store(0) }
