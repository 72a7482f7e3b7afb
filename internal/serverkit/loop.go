// Package serverkit is what saturn's servers share: the event loop that
// serves every app's channel and the server's own descriptors (sockets, an
// io_uring's eventfd) from one epoll set, and the link to the supervisor
// through which channels arrive and leave.
//
// The loop runs on one goroutine, which owns every channel and the
// handler's state. Each round it drains up to a capped number of entries
// from every channel in turn, so that no app can starve another; decodes
// each entry once into private memory and releases its slots before acting
// (the ring package's server duty); answers what it can itself (bad
// entries, nop, operations of the other server); hands the rest to the
// handler; and publishes each channel's completions in one batch. When
// nothing is left to do it arms every channel's wake flag and sleeps in
// epoll_wait.
//
// No app can block it. Completions wake an app through the region's futex
// word, which never blocks the waker. The channels' doorbells are eventfds
// the apps hold too, sharing their counters and blocking modes: the loop
// watches them edge-triggered and never reads or writes them (see
// ring.EventDoorbell), so an app that empties one, saturates it or makes it
// blocking loses only its own wake-ups.
package serverkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"saturn/proto"
	"saturn/ring"
)

// Handler is a server's logic. All its methods run on the loop goroutine.
type Handler interface {
	// Added is called when a channel arrives (for a new app, or again for
	// every app after a restart of this server).
	Added(ch *Channel) error
	// Dropped is called when a channel leaves: its app is gone. Release
	// everything held for it.
	Dropped(ch *Channel)
	// Submit carries out one valid entry of an operation this server
	// serves (never OpNop). It must complete it exactly once, now or later,
	// with ch.Complete. sub.Buf, if any, is not yet taken: use
	// ch.End.Loans.Take. sub points into the loop's own memory and is
	// valid only during the call: copy what you keep.
	Submit(ch *Channel, sub *proto.Submission)
}

// RoundEnder is a Handler that also wants to hear when a round's entries
// have all been handed to it, before the round's completions are
// published: a handler that batches work (an io_uring submission, a wake-up
// of its workers) submits the batch there, once per round instead of once
// per entry.
type RoundEnder interface {
	EndRound()
}

// A spinning loop reads the clock every spinTurns turns, and polls its
// descriptors every spinPollEvery.
const (
	spinTurns     = 64
	spinPollEvery = 5 * time.Microsecond
)

// PerRound caps the entries taken from one channel in one round.
const PerRound = 64

// Loop is a server's event loop.
type Loop struct {
	server  proto.Server
	handler Handler
	log     *slog.Logger

	epfd  int
	tasks *ring.EventDoorbell // rung by Post; watched edge-triggered like the channels' bells

	mu      sync.Mutex // guards queued
	queued  []func()
	stopped bool
	posted  atomic.Bool // queued may be non-empty: runTasks skips the lock otherwise

	// Spin is how long an idle loop keeps polling before it sleeps: a
	// request that arrives within it is served without a wake-up.
	Spin time.Duration
	// AdaptSpin, if set before Run, chooses the spin instead of Spin, from
	// how often spinning has paid (ring.AdaptiveSpin).
	AdaptSpin *ring.AdaptiveSpin

	// Loop only:
	channels []*Channel
	byBell   map[int]*Channel
	fds      map[int]func(events uint32)
	backlogs bool // some channel has completions waiting for room
	// A round's decoded entries: kept here rather than on round's stack,
	// from which they would escape (the handler gets pointers) and cost an
	// allocation of some 5 KiB every round.
	subs [PerRound]proto.Submission
	errs [PerRound]error
}

// NewLoop creates a loop for server, with handler's logic.
func NewLoop(server proto.Server, handler Handler, log *slog.Logger) (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("serverkit: epoll: %w", err)
	}
	tasks, err := ring.NewEventDoorbell()
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	l := &Loop{server: server, handler: handler, log: log, epfd: epfd, tasks: tasks,
		byBell: map[int]*Channel{}, fds: map[int]func(uint32){}, Spin: ring.DefaultSpin}
	if err := l.epollAdd(tasks.FD(), unix.EPOLLIN|unix.EPOLLET); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

func (l *Loop) epollAdd(fd int, events uint32) error {
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
}

func (l *Loop) close() {
	unix.Close(l.epfd)
	l.tasks.Close()
}

// Post runs f on the loop goroutine soon. Safe from any goroutine; f is
// dropped if the loop has stopped.
func (l *Loop) Post(f func()) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.queued = append(l.queued, f)
	l.posted.Store(true)
	l.mu.Unlock()
	l.tasks.Ring()
}

// Stopping reports whether the loop is shutting down: Dropped is then
// called for every channel because the server stops, not because its app
// left, and state meant for the next incarnation must be kept.
func (l *Loop) Stopping() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopped
}

// AddFD watches fd for events, calling cb with what happened. Loop only.
func (l *Loop) AddFD(fd int, events uint32, cb func(events uint32)) error {
	if err := l.epollAdd(fd, events); err != nil {
		return err
	}
	l.fds[fd] = cb
	return nil
}

// ModFD changes the events watched on fd. Loop only.
func (l *Loop) ModFD(fd int, events uint32) error {
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
}

// DelFD stops watching fd. Loop only.
func (l *Loop) DelFD(fd int) error {
	delete(l.fds, fd)
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

// Channels lists the channels being served. Loop only.
func (l *Loop) Channels() []*Channel { return l.channels }

// AddChannel starts serving ch. Loop only.
func (l *Loop) AddChannel(ch *Channel) error {
	if err := l.handler.Added(ch); err != nil {
		return err
	}
	// Edge-triggered: the bell is never read (an app could make the read
	// block), so a level-triggered watch would report it for ever.
	if err := l.epollAdd(ch.bell.FD(), unix.EPOLLIN|unix.EPOLLET); err != nil {
		l.handler.Dropped(ch)
		return err
	}
	l.channels = append(l.channels, ch)
	l.byBell[ch.bell.FD()] = ch
	l.log.Info("channel added", "id", ch.Desc.ID, "app", ch.Desc.App, "epoch", ch.End.Epoch, "resume", ch.End.Resume)
	return nil
}

// DropChannel stops serving the channel with id and closes it. Loop only.
func (l *Loop) DropChannel(id uint64) {
	for i, ch := range l.channels {
		if ch.Desc.ID == id {
			l.removeChannel(i, "dropped")
			return
		}
	}
}

func (l *Loop) removeChannel(i int, why string) {
	ch := l.channels[i]
	l.handler.Dropped(ch)
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, ch.bell.FD(), nil)
	delete(l.byBell, ch.bell.FD())
	l.channels = append(l.channels[:i], l.channels[i+1:]...)
	ch.Close()
	l.log.Info("channel removed", "id", ch.Desc.ID, "app", ch.Desc.App, "why", why)
}

// Run serves until ctx is cancelled, then drops every channel.
func (l *Loop) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { l.tasks.Ring() })
	defer stop()
	defer func() {
		l.mu.Lock()
		l.stopped = true
		l.mu.Unlock()
		for len(l.channels) > 0 {
			l.removeChannel(len(l.channels)-1, "server stopping")
		}
		l.close()
	}()
	events := make([]unix.EpollEvent, 128)
	var idleSince, lastPoll time.Time
	spins := 0
	idle := false // the last round found nothing to do
	for ctx.Err() == nil {
		l.runTasks()
		if l.round() {
			if idle && l.AdaptSpin != nil {
				l.AdaptSpin.Paid()
			}
			idle = false
			idleSince = time.Time{}
			continue
		}
		idle = true
		spin := l.Spin
		if l.AdaptSpin != nil {
			spin = l.AdaptSpin.Budget()
		}
		if spin > 0 {
			// Spinning polls the rings (memory loads, in round) on every
			// turn, reads the clock every spinTurns turns, and polls the
			// other descriptors every spinPollEvery: an epoll_wait and a
			// clock read per turn made a busy server spend most of its
			// time on them (the clock is slow in a VM).
			if spins++; spins%spinTurns != 0 {
				continue
			}
			now := time.Now()
			if idleSince.IsZero() {
				idleSince, lastPoll = now, now
			}
			if now.Sub(lastPoll) >= spinPollEvery {
				lastPoll = now
				if n, _ := unix.EpollWait(l.epfd, events, 0); n > 0 {
					for _, ev := range events[:n] {
						l.event(int(ev.Fd), ev.Events)
					}
					if l.AdaptSpin != nil {
						l.AdaptSpin.Paid()
					}
					idle = false
					idleSince = time.Time{}
					continue
				}
			}
			if now.Sub(idleSince) < spin {
				continue
			}
		}
		idleSince = time.Time{}
		if !l.armAll() {
			continue
		}
		if l.AdaptSpin != nil {
			l.AdaptSpin.Slept()
		}
		timeout := -1
		if l.backlogs {
			timeout = 5 // retry completions waiting for room
		}
		n, err := unix.EpollWait(l.epfd, events, timeout)
		l.disarmAll()
		idle = false // what wakes us was not caught by a spin
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("serverkit: epoll_wait: %w", err)
		}
		for _, ev := range events[:max(n, 0)] {
			l.event(int(ev.Fd), ev.Events)
		}
	}
	return nil
}

func (l *Loop) runTasks() {
	if !l.posted.Load() {
		return
	}
	l.mu.Lock()
	l.posted.Store(false)
	tasks := l.queued
	l.queued = nil
	l.mu.Unlock()
	for _, f := range tasks {
		f()
	}
}

// event handles one epoll event. A doorbell's edge needs nothing more: the
// next turn runs the posted tasks and serves every channel; the bell itself
// is left alone (see Loop).
func (l *Loop) event(fd int, events uint32) {
	if fd == l.tasks.FD() || l.byBell[fd] != nil {
		return
	}
	if cb := l.fds[fd]; cb != nil {
		cb(events)
	}
}

// round serves every channel once and publishes completions. It reports
// whether there was anything to do.
func (l *Loop) round() bool {
	busy := false
	subs, errs := &l.subs, &l.errs
	for i := 0; i < len(l.channels); i++ {
		ch := l.channels[i]
		if ch.dead != nil {
			l.log.Error("channel is corrupt; dropping it", "id", ch.Desc.ID, "app", ch.Desc.App, "err", ch.dead)
			l.removeChannel(i, "corrupt")
			i--
			continue
		}
		n, err := ch.End.Submit.Peek(PerRound)
		if err != nil {
			ch.dead = err
			continue
		}
		for k := range n {
			subs[k], errs[k] = proto.DecodeSubmission(ch.End.Submit.Slot(k))
		}
		ch.End.Submit.Release(n) // before acting: see ring.Region.Server
		for k := range n {
			l.dispatch(ch, &subs[k], errs[k])
		}
		busy = busy || n > 0
	}
	if re, ok := l.handler.(RoundEnder); ok {
		re.EndRound()
	}
	l.backlogs = false
	for _, ch := range l.channels {
		if ch.flush() {
			l.backlogs = true
		}
	}
	return busy
}

// dispatch answers what the loop can answer itself and hands the rest to
// the handler.
func (l *Loop) dispatch(ch *Channel, sub *proto.Submission, decodeErr error) {
	switch {
	case decodeErr != nil:
		ch.CompleteErr(sub, syscall.EINVAL, l.takeForError(ch, sub))
	case !sub.Op.ServedBy(l.server):
		ch.CompleteErr(sub, syscall.EOPNOTSUPP, l.takeForError(ch, sub))
	case sub.Op == proto.OpNop:
		held := l.takeForError(ch, sub)
		c := proto.Completion{UserData: sub.UserData, Buf: proto.NoBuffer}
		if held {
			c.Buf = sub.Buf
		}
		ch.Complete(c)
	default:
		l.handler.Submit(ch, sub)
	}
}

// takeForError takes an entry's buffer, if it names a valid one the server
// does not hold, so that the error completion can hand it back: an honest
// app gets every buffer back, and a bad index is never echoed.
func (l *Loop) takeForError(ch *Channel, sub *proto.Submission) bool {
	if sub.Buf == proto.NoBuffer {
		return false
	}
	_, err := ch.End.Loans.Take(sub.Buf, 0)
	return err == nil
}

// armAll sets every channel's wake flag before sleeping; false if one had
// entries after all (then nothing is armed).
func (l *Loop) armAll() bool {
	for i, ch := range l.channels {
		if !ch.End.Submit.ArmWakeup() {
			for _, c := range l.channels[:i] {
				c.End.Submit.DisarmWakeup()
			}
			return false
		}
	}
	return true
}

func (l *Loop) disarmAll() {
	for _, ch := range l.channels {
		ch.End.Submit.DisarmWakeup()
	}
}
