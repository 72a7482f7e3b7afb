package ring

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
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
//
// A Ring is not lost either when it comes while the consumer is awake: the
// next Sleep ends at once. That is what makes a Ring with nothing to read
// (an Interrupt, or a new server incarnation) safe: the consumer looks at
// what it waits for after each Sleep, and a Ring after that look ends the
// next Sleep, so it looks again.
type Doorbell interface {
	// Prepare returns the token to pass to Sleep. Call it before setting
	// the wake flag.
	Prepare() uint32
	// Sleep blocks until Ring is called (after the previous Sleep returned,
	// or after the doorbell was made), the deadline passes (ErrWaitTimeout;
	// a zero deadline means none), or a spurious wake-up. Callers re-check
	// the ring, and anything else they wait for, after every return.
	Sleep(token uint32, deadline time.Time) error
	// Ring wakes the sleeper, if any. It is safe from any goroutine or
	// process.
	Ring() error
}

// FutexDoorbell is a doorbell on a 32-bit word in shared memory: Ring bumps
// the word and calls FUTEX_WAKE; Sleep calls FUTEX_WAIT while the word still
// holds the value it had when the previous Sleep returned, so that a Ring
// in between is not lost. It needs no file descriptors, but a sleeper
// occupies an OS thread.
//
// Ring cannot block, whatever the peer has done: FUTEX_WAKE never waits, and
// a word the peer rewrote only makes its own sleep end early or late. That is
// why every channel's app doorbell is one (see Bells): servers and the
// supervisor ring it, and neither may ever block on an app.
//
// A FutexDoorbell value belongs to one side: the sleeper's record of what
// it has seen is private (Sleep and Prepare from one goroutine at a time);
// Ring is safe from anywhere. Once its region is closed, Ring and Sleep fail
// instead of touching memory that is no longer mapped.
type FutexDoorbell struct {
	word   *atomic.Uint32
	closed *atomic.Bool // the region's: set once it is unmapped
	seen   uint32       // the word when the last Sleep returned (or when d was made)
}

func newFutexDoorbell(word *atomic.Uint32, closed *atomic.Bool) *FutexDoorbell {
	return &FutexDoorbell{word: word, closed: closed, seen: word.Load()}
}

var errRegionClosed = errors.New("ring: futex doorbell of a closed region")

// Prepare implements Doorbell: the token is the word as the sleeper last
// saw it, so that any Ring since then ends the Sleep at once.
func (d *FutexDoorbell) Prepare() uint32 { return d.seen }

// Sleep implements Doorbell.
func (d *FutexDoorbell) Sleep(token uint32, deadline time.Time) error {
	if d.closed.Load() {
		return errRegionClosed
	}
	defer func() { d.seen = d.word.Load() }()
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
	if d.closed.Load() {
		return errRegionClosed
	}
	d.word.Add(1)
	if err := futexWake(d.word, 1); err != nil {
		return fmt.Errorf("ring: futex wake: %w", err)
	}
	return nil
}

// EventDoorbell is a doorbell on an eventfd: a channel's server doorbell,
// which the app rings and which the server gathers, with the doorbells of
// its other channels, into one epoll set next to its sockets. Unlike a futex
// word it is a file descriptor, so it can be polled and passes between
// processes like any descriptor.
//
// An eventfd is shared with the peer in a way a futex word is not: its
// counter, and its O_NONBLOCK flag (which belongs to the open file
// description, not to the descriptor), are the same for every process that
// holds it, and any of them may clear the flag, saturate the counter, or
// empty it. A write to a saturated counter then blocks, and so does a read
// of an empty one. So an EventDoorbell is never read, by anyone: its counter
// only grows (one per Ring; 2^64-2 rings are out of reach), and a sleeper
// learns of a Ring from the edge it makes in an edge-triggered epoll set,
// whatever the counter holds. Only Ring writes, and whoever rings a doorbell
// shared with a peer accepts that the peer can make it block: an app rings
// its server's, nobody rings an app's (the app's doorbell is a futex word).
type EventDoorbell struct {
	file *os.File
	fd   int // file's descriptor, read once without disturbing its mode

	sleepOnce sync.Once
	sleepEp   int // the epoll set Sleep waits in, made at the first Sleep
	sleepErr  error
}

// NewEventDoorbell creates an eventfd doorbell.
func NewEventDoorbell() (*EventDoorbell, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("ring: eventfd: %w", err)
	}
	return &EventDoorbell{file: os.NewFile(uintptr(fd), "eventfd"), fd: fd, sleepEp: -1}, nil
}

// EventDoorbellFromFile wraps an inherited or received eventfd. It takes
// ownership of f.
func EventDoorbellFromFile(f *os.File) (*EventDoorbell, error) {
	fd, err := RawFD(f)
	if err != nil {
		return nil, err
	}
	return &EventDoorbell{file: f, fd: fd, sleepEp: -1}, nil
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

// DupFile returns a new file for f's open file description (a region, a
// doorbell), close-on-exec, leaving its blocking mode alone as RawFD does.
// The caller owns it.
func DupFile(f *os.File) (*os.File, error) {
	fd, err := RawFD(f)
	if err == nil {
		fd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// File is the eventfd, for handing to another process. It stays owned by d.
func (d *EventDoorbell) File() *os.File { return d.file }

// FD is the eventfd's descriptor, for adding to an epoll set, with
// EPOLLET: the counter is never emptied, so a level-triggered watch would
// fire for ever. It stays owned by d.
func (d *EventDoorbell) FD() int { return d.fd }

// Close closes the eventfd. It does not ring (that would be a write to a
// descriptor the peer may have made blocking): a goroutine sleeping on d
// must be woken, by Ring, before d is closed.
func (d *EventDoorbell) Close() error {
	d.sleepOnce.Do(func() { d.sleepErr = errors.New("ring: eventfd doorbell is closed") })
	var err error
	if d.sleepEp >= 0 {
		err = unix.Close(d.sleepEp)
	}
	return errors.Join(err, d.file.Close())
}

// Prepare implements Doorbell. Every Ring makes an edge, so none is lost
// and no token is needed.
func (d *EventDoorbell) Prepare() uint32 { return 0 }

// Sleep implements Doorbell: it waits for an edge in an epoll set of d's
// own, never reading the eventfd. The first Sleep may return at once (the
// counter is not empty, so adding it to the set makes an edge), which is a
// spurious wake-up. A signal interrupting epoll_wait (Go's runtime sends
// them to preempt goroutines) does not end the sleep. Only one goroutine
// may sleep on d at a time (it is one consumer's doorbell).
func (d *EventDoorbell) Sleep(_ uint32, deadline time.Time) error {
	d.sleepOnce.Do(func() {
		ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			d.sleepErr = fmt.Errorf("ring: epoll for eventfd doorbell: %w", err)
			return
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(d.fd)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, d.fd, &ev); err != nil {
			unix.Close(ep)
			d.sleepErr = fmt.Errorf("ring: watching eventfd doorbell: %w", err)
			return
		}
		d.sleepEp = ep
	})
	if d.sleepErr != nil {
		return d.sleepErr
	}
	var events [1]unix.EpollEvent
	for {
		timeout := -1
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return ErrWaitTimeout
			}
			timeout = int((left + time.Millisecond - 1) / time.Millisecond) // round up: never wake early
		}
		n, err := unix.EpollWait(d.sleepEp, events[:], timeout)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return fmt.Errorf("ring: epoll_wait on eventfd doorbell: %w", err)
		case n == 0:
			return ErrWaitTimeout
		}
		return nil
	}
}

// Ring implements Doorbell. It writes to the eventfd, so it blocks if
// another holder made the descriptor blocking and saturated the counter (see
// EventDoorbell: only a side that may wait for its peer rings a doorbell it
// shares with one). A saturated counter in non-blocking mode is an error:
// rings alone cannot saturate it, so someone wrote to it directly, and no
// Ring will make an edge again.
func (d *EventDoorbell) Ring() error {
	one := [8]byte{1}
	for {
		_, err := unix.Write(d.fd, one[:])
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return fmt.Errorf("ring: eventfd doorbell is saturated: %w", err)
		}
		return fmt.Errorf("ring: ringing eventfd: %w", err)
	}
}

// WaitPolicy says how a consumer waits for entries.
type WaitPolicy struct {
	// Spin is how long to poll an empty ring before sleeping. Zero means
	// sleep at once; a negative value means never sleep (spin only).
	Spin time.Duration
	// Adapt, if set, chooses the spin instead of Spin, and learns from
	// how each wait went (see AdaptiveSpin).
	Adapt *AdaptiveSpin
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
	spin := policy.Spin
	if policy.Adapt != nil {
		spin = policy.Adapt.Budget()
	}
	if spin != 0 {
		start := time.Now()
		for i := 1; ; i++ {
			if c.ready() {
				if policy.Adapt != nil {
					policy.Adapt.Paid()
				}
				return c.Peek(int(c.r.capacity))
			}
			if i%128 == 0 {
				now := time.Now()
				if spin > 0 && now.Sub(start) >= spin {
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
	if policy.Adapt != nil {
		policy.Adapt.Slept()
	}
	token := c.r.bell.Prepare()
	storeThenLoad(c.r.wakeFlag, 1)
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
// so that its owner can notice a shutdown or an epoch change. It rings the
// consumer's own doorbell: an app may interrupt its completion ring (a futex
// word); a server must not interrupt its submission ring, whose doorbell is
// an eventfd the app can make blocking (see EventDoorbell).
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
	storeThenLoad(c.r.wakeFlag, 1)
	if c.ready() {
		c.r.wakeFlag.Store(0)
		return false
	}
	return true
}

// DisarmWakeup clears the wake flag set by ArmWakeup.
func (c *Consumer) DisarmWakeup() { c.r.wakeFlag.Store(0) }
