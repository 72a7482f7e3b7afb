package ring

import "fmt"

// Bells names the doorbells of a channel.
//
// Server wakes the server when the app submits. A nil Server bell is a
// futex on the region's word for it, which needs no descriptor (an
// in-process server, a test); saturn's servers are given an EventDoorbell,
// which they watch, edge-triggered and never reading it, in one epoll set
// with their sockets. Both sides of a channel must use the same kind.
//
// The app's doorbell, which wakes the app when the server completes, is
// always a futex on the region's word for it. Servers ring it, and so does
// the supervisor when a server dies (EndIncarnation), and a futex wake
// cannot block them whatever the app does to the word, where a write to an
// eventfd can: the app could make the shared descriptor blocking and
// saturate its counter.
type Bells struct {
	Server Doorbell
}

func (r *Region) bells(b Bells) (server, app Doorbell) {
	server = b.Server
	if server == nil {
		server = newFutexDoorbell(word32(r.mem, offSQFutex), &r.closed)
	}
	return server, r.appBell()
}

// appBell is the app's doorbell: the region's futex word for it.
func (r *Region) appBell() Doorbell { return newFutexDoorbell(word32(r.mem, offCQFutex), &r.closed) }

func (r *Region) submissionRing(bell Doorbell) ringShared {
	return ringShared{
		mem: r.mem, slotsOff: int(r.lay.sqOffset),
		entrySize: r.geo.SQEntrySize, mask: r.geo.SQEntries - 1, capacity: r.geo.SQEntries,
		head: word32(r.mem, offSQHead), tail: word32(r.mem, offSQTail),
		wakeFlag: word32(r.mem, offSQWakeFlag), bell: bell,
	}
}

func (r *Region) completionRing(bell Doorbell) ringShared {
	return ringShared{
		mem: r.mem, slotsOff: int(r.lay.cqOffset),
		entrySize: r.geo.CQEntrySize, mask: r.geo.CQEntries - 1, capacity: r.geo.CQEntries,
		head: word32(r.mem, offCQHead), tail: word32(r.mem, offCQTail),
		wakeFlag: word32(r.mem, offCQWakeFlag), bell: bell,
	}
}

// AppEnd is the app's side of a channel: it produces submissions, consumes
// completions and owns the free buffers. Exactly one AppEnd may exist per
// region, in one process.
type AppEnd struct {
	Submit   *Producer
	Complete *Consumer
	Pool     *Pool
	// ServerBell wakes the server; AppBell is the app's own (what
	// Complete.Wait sleeps on, a futex word of the region).
	ServerBell, AppBell Doorbell
}

// App opens the app's side of the channel.
func (r *Region) App(b Bells) (*AppEnd, error) {
	server, app := r.bells(b)
	sq, err := newProducer(r.submissionRing(server), nil)
	if err != nil {
		return nil, fmt.Errorf("submission ring: %w", err)
	}
	cq, err := newConsumer(r.completionRing(app), nil)
	if err != nil {
		return nil, fmt.Errorf("completion ring: %w", err)
	}
	pool := newPool(r.mem, int(r.lay.poolOffset), r.geo.BufferSize, r.geo.BufferCount)
	return &AppEnd{Submit: sq, Complete: cq, Pool: pool, ServerBell: server, AppBell: app}, nil
}

// ServerEnd is a server incarnation's side of a channel: it consumes
// submissions, produces completions and records the buffers lent to it.
type ServerEnd struct {
	Submit   *Consumer
	Complete *Producer
	Loans    *Loans
	// Epoch is this incarnation's number; Resume is the submission position
	// at which it started (see Region.ServerEpoch).
	Epoch, Resume uint32
	// ServerBell is the server's own (Submit's); AppBell wakes the app,
	// and never blocks (see Bells).
	ServerBell, AppBell Doorbell
}

// Server opens the server's side of the channel and begins a new
// incarnation: it takes up the rings where the last incarnation left them,
// bumps the epoch, records the resume position, and wakes the app so that
// it notices.
//
// The server's duties, in order, for each batch of entries:
//  1. Peek, decode each slot once into private memory, then Release the
//     slots before acting on any entry. An entry the server has released is
//     its responsibility: if it dies, the app resubmits it (it lies before
//     the next incarnation's resume position); an entry not yet released is
//     carried out by the next incarnation instead. Releasing late would let
//     a crash run an entry twice.
//  2. Take the buffer an entry names before using it; if Take fails, answer
//     with an error completion that names no buffer.
//  3. Return the buffer before publishing the completion that names it.
func (r *Region) Server(b Bells) (*ServerEnd, error) {
	server, app := r.bells(b)
	sq, err := newConsumer(r.submissionRing(server), word64(r.mem, offSubmitted))
	if err != nil {
		return nil, fmt.Errorf("submission ring: %w", err)
	}
	cq, err := newProducer(r.completionRing(app), word64(r.mem, offCompleted))
	if err != nil {
		return nil, fmt.Errorf("completion ring: %w", err)
	}
	state := word64(r.mem, offServerState)
	epoch := uint32(state.Load()>>32) + 1
	resume := sq.Position()
	r.setDown(false)
	state.Store(uint64(epoch)<<32 | uint64(resume))
	if err := app.Ring(); err != nil {
		return nil, fmt.Errorf("waking the app: %w", err)
	}
	loans := newLoans(r.mem, int(r.lay.poolOffset), r.geo.BufferSize, r.geo.BufferCount)
	return &ServerEnd{Submit: sq, Complete: cq, Loans: loans, Epoch: epoch, Resume: resume, ServerBell: server, AppBell: app}, nil
}

// EndIncarnation closes the books of a server incarnation that died: it
// bumps the epoch and records the submission position the dead one stopped
// at as the resume position, then wakes the app, exactly as the next
// incarnation's Server call will. The supervisor calls it the moment it
// sees a server die, so that an app learns at once (not only when the
// server is back) which of its requests the dead one took: it fails the
// ones that cannot be replayed and queues the rest for the next
// incarnation. The dead process can no longer move the submission ring's
// head, so the position recorded here is the one the next incarnation will
// find; its own epoch bump then finds nothing more to replay.
//
// The wake-up is a futex wake on the region's word for the app, so nothing
// the app has done can make EndIncarnation block (see Bells).
func (r *Region) EndIncarnation() error {
	head := word32(r.mem, offSQHead).Load()
	state := word64(r.mem, offServerState)
	epoch := uint32(state.Load()>>32) + 1
	r.setDown(true) // before the epoch, which is what the app watches
	state.Store(uint64(epoch)<<32 | uint64(head))
	return r.appBell().Ring()
}
