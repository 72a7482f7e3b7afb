package appproc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"syscall"
	"time"

	"saturn/proto"
	"saturn/ring"
)

// Channel is an app's end of its channel to one server. Any number of
// goroutines may call Do at once: each call becomes one submission, and the
// goroutine parks until its completion arrives. One dispatcher goroutine
// per channel reaps completions and wakes the callers.
//
// What an operation holds while it is in flight (see proto.Op.Waits): a
// call (everything but accept, connect and receive) holds one of the
// channel's call slots, as many as its completion ring has entries, so
// that its completion always finds room; it holds a data buffer too if it
// carries bytes. A wait holds no slot, however long its peer takes, and
// with proto.FlagSelect no buffer either: its output arrives in one of
// the buffers the channel keeps provided to the server (see provide.go).
// So a hundred thousand idle connections, each with a receive waiting,
// hold nothing that a send, a close or a new connection needs.
//
// Locks: mu guards the submission ring, the buffer pool and the table of
// calls in flight. The dispatcher takes it only briefly per batch, never
// while sleeping.
type Channel struct {
	server string
	region *ring.Region
	end    *ring.AppEnd
	bufs   chan struct{} // a token per free buffer
	slots  chan struct{} // a token per call that may be in flight (waits take none)

	mu       sync.Mutex
	inflight map[uint64]*call
	nextID   uint64
	epoch    uint32 // the server incarnation we last saw
	dead     error  // set once: the channel no longer works
	closing  bool
	// reserved counts reservations not yet submitted or given back (see
	// reserve); unmapLater says close left the unmapping to the last.
	reserved   int
	unmapLater bool

	// wakeDue: an entry published under mu found the server asleep; the
	// holder of mu rings its doorbell after letting mu go (unlockWake).
	wakeDue bool
	// woken: calls the dispatcher completed under mu, whose callers it
	// wakes once mu is let go (dispatcher only).
	woken []*call
	// spin, if set, adapts the dispatcher's spin to how often it pays
	// (dispatcher only). Only diskproc's channel has it so far: measured
	// there (docs/benchmarks.md), not yet on netproc's.
	spin *ring.AdaptiveSpin

	restarts int // server restarts seen (for tests and status)
	done     chan struct{}
	bell     io.Closer // the server's doorbell, closed with the channel (nil for a test's pair)
	closed   bool      // close ran

	// Buffers provided to the server for FlagSelect waits (provide.go).
	provided  map[uint32]uint32 // lent with an OpProvide entry at this ring position
	reprovide []uint32          // held, to be provided (again) as the ring has room
	selecting bool              // a FlagSelect wait was submitted: keep buffers provided
}

// Request describes one operation for Do.
type Request struct {
	Op     proto.Op
	Flags  proto.SubmitFlag
	Handle uint64
	Offset uint64
	Aux    uint32
	Args   [3]uint64
	// In is copied into a data buffer that travels with the entry (the
	// bytes to send or write, a path, an address). At most BufferSize.
	In []byte
	// Out is where the bytes the server leaves in the buffer are copied
	// (received or read data, a stat record). At most BufferSize.
	Out []byte
	// Room asks for a buffer of this many bytes for the server to fill,
	// for a call started with Start, whose callback reads the bytes from
	// the buffer itself instead of having them copied to Out.
	Room int
	// Replay marks an idempotent request: if the server dies before
	// answering, it is submitted again to the next incarnation, and the
	// caller sees only the delay. Other requests fail with ECONNRESET.
	Replay bool
	// Resume marks a request that is replayed like Replay's when the
	// server says that what it serves survives its death
	// (ring.CapResume: netproc resuming connections), and fails with
	// ECONNRESET otherwise: a send, receive or close on a connection,
	// whose stream offset (proto.FlagStream) lets the next incarnation
	// carry it out exactly once. If the next incarnation has not started
	// within ResumeWait, it fails with ECONNRESET after all.
	Resume bool
}

// ResumeWait bounds how long a request replayed under Request.Resume waits
// for the server's next incarnation to start before it fails with
// ECONNRESET, as it would have without resume. It outlasts the
// supervisor's default back-off ceiling (10 s) and the start of netproc.
var ResumeWait = 15 * time.Second

// Response is a completed operation.
type Response struct {
	Result int64              // the count or handle; never negative (see Do's error)
	Aux    uint64             // per-op
	Flags  proto.CompleteFlag // per-op
	N      int                // bytes copied into Request.Out
	ID     uint64             // the call's ID, for a Callback (see Start)
}

type call struct {
	req Request
	sub proto.Submission
	pos uint32 // the submission's ring position, for replay after a restart
	buf uint32 // the lent buffer, or NoBuffer
	// filled is how many bytes of a reserved buffer the caller filled
	// (see reserve); buf is set before submit for such a call.
	filled uint32
	resp   Response
	err    error
	done   chan struct{}
	owner  bool // a goroutine still waits for it (false after it gave up)
	// resumed: replayed under Request.Resume to an incarnation not yet
	// started; gaveUp: failed by ResumeWait, and still in flight (its
	// buffer lent) until a completion or the channel's end.
	resumed, gaveUp bool
	// sink, for a call made with Start, takes the completion instead of
	// done and Out; see Start.
	sink func(resp Response, data []byte, err error)
	// slot: it holds one of the channel's call slots (it is not a wait).
	slot bool
}

// ErrChannelClosed: the app closed the channel, or the supervisor went away.
var ErrChannelClosed = errors.New("appproc: channel closed")

func newChannel(server string, region *ring.Region, end *ring.AppEnd) *Channel {
	c := &Channel{
		server: server, region: region, end: end,
		bufs:     make(chan struct{}, end.Pool.Len()),
		slots:    make(chan struct{}, end.Complete.Capacity()),
		inflight: map[uint64]*call{},
		done:     make(chan struct{}),
		provided: map[uint32]uint32{},
	}
	for range end.Pool.Len() {
		c.bufs <- struct{}{}
	}
	for range end.Complete.Capacity() {
		c.slots <- struct{}{}
	}
	c.epoch, _ = region.ServerEpoch()
	if server == DiskServer {
		c.spin = &ring.AdaptiveSpin{}
	}
	go c.dispatch()
	return c
}

// Server names the server at the other end.
func (c *Channel) Server() string { return c.server }

// BufferSize is the most bytes one request can carry in or out.
func (c *Channel) BufferSize() int { return c.end.Pool.BufferSize() }

// Restarts is how many times the server at the other end changed
// incarnation while the channel lived (a death and the next start may count
// as two: the supervisor ends a dead incarnation at once).
func (c *Channel) Restarts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restarts
}

// Do submits req and waits for its completion. A negative result comes back
// as an error wrapping the errno. If ctx ends first, Do returns ctx.Err()
// and the request is cancelled with OpCancel (it may still complete; its
// buffer comes back either way).
func (c *Channel) Do(ctx context.Context, req *Request) (Response, error) {
	bs := c.end.Pool.BufferSize()
	if len(req.In) > bs || len(req.Out) > bs || req.Room > bs {
		return Response{}, fmt.Errorf("appproc: %s request of %d bytes in, %d out: a buffer holds %d", req.Op, len(req.In), len(req.Out), bs)
	}
	if err := checkSelect(req); err != nil {
		return Response{}, err
	}
	needSlot, needBuf := roomFor(req)
	if err := c.takeRoom(needSlot, needBuf, ctx.Done(), nil); err != nil {
		if err == errAborted {
			err = ctx.Err()
		}
		return Response{}, err
	}
	cl := &call{req: *req, done: make(chan struct{}), owner: true, buf: proto.NoBuffer, slot: needSlot}
	if err := c.submit(cl, needBuf); err != nil {
		c.giveRoom(needSlot, needBuf)
		return Response{}, err
	}
	if ctx.Done() == nil { // no select for a context that never ends
		<-cl.done
		return cl.resp, cl.err
	}
	select {
	case <-cl.done:
		return cl.resp, cl.err
	case <-ctx.Done():
		c.abandon(cl)
		return Response{}, ctx.Err()
	}
}

func (c *Channel) deadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return c.dead
	}
	return ErrChannelClosed
}

// submit encodes cl and publishes it.
func (c *Channel) submit(cl *call, needBuf bool) error {
	c.mu.Lock()
	defer c.unlockWake()
	if c.dead != nil {
		if cl.buf != proto.NoBuffer {
			c.end.Pool.Free(cl.buf) // a reservation's: the call owns it now
		}
		return c.dead
	}
	c.nextID++
	id := c.nextID
	sub := proto.Submission{
		Op: cl.req.Op, Flags: cl.req.Flags, Buf: proto.NoBuffer, Handle: cl.req.Handle,
		UserData: id, Offset: cl.req.Offset, Aux: cl.req.Aux, Args: cl.req.Args,
	}
	switch {
	case cl.buf != proto.NoBuffer:
		// Reserved and filled in place by the caller (see reserve).
		sub.Buf, sub.Len = cl.buf, cl.filled
	case needBuf:
		b, err := c.end.Pool.Alloc()
		if err != nil {
			return fmt.Errorf("appproc: %w", err) // cannot happen: we hold a token
		}
		copy(c.end.Pool.Bytes(b), cl.req.In)
		sub.Buf, cl.buf = b, b
		sub.Len = uint32(max(len(cl.req.In), len(cl.req.Out), cl.req.Room))
	case sub.Flags&proto.FlagSelect != 0:
		// The server chooses a provided buffer when the output is ready.
		sub.Len = uint32(max(len(cl.req.Out), cl.req.Room))
		c.selecting = true
		c.provide()
	}
	cl.sub = sub
	if err := c.push(cl); err != nil {
		if needBuf {
			c.end.Pool.Free(cl.buf)
		}
		return err
	}
	c.inflight[id] = cl
	return nil
}

// push lends cl's buffer and publishes its entry, waiting for a free slot if
// the server is behind. mu held.
func (c *Channel) push(cl *call) error {
	for wait := time.Microsecond; ; wait = min(2*wait, time.Millisecond) {
		n, err := c.end.Submit.Reserve(1)
		if err != nil {
			c.kill(err)
			return err
		}
		if n == 1 {
			break
		}
		// Full: the server has not consumed yet. It will; back off.
		c.unlockWake()
		time.Sleep(wait)
		c.mu.Lock()
		if c.dead != nil {
			return c.dead
		}
	}
	if cl.buf != proto.NoBuffer {
		if err := c.end.Pool.Lend(cl.buf); err != nil {
			return err
		}
	}
	cl.pos = c.end.Submit.Position()
	cl.sub.Encode(c.end.Submit.Slot(0))
	if c.end.Submit.PublishDeferred(1) {
		c.wakeDue = true
	}
	return nil
}

// unlockWake lets mu go, then rings the server's doorbell if an entry
// published meanwhile asked for it (see ring.Producer.PublishDeferred):
// callers submitting at once then never queue on mu behind one preempted
// in the wake-up's system call. A doorbell that cannot ring leaves the
// server asleep on entries it would never serve: the channel is dead.
func (c *Channel) unlockWake() {
	wake := c.wakeDue
	c.wakeDue = false
	c.mu.Unlock()
	if !wake {
		return
	}
	if err := c.end.Submit.Wake(); err != nil {
		c.mu.Lock()
		c.kill(err)
		c.mu.Unlock()
	}
}

// abandon gives up waiting for cl; it stays in flight until its completion
// returns its buffer, and the server is asked to cancel it.
func (c *Channel) abandon(cl *call) {
	c.mu.Lock()
	cl.owner = false
	_, still := c.inflight[cl.sub.UserData]
	c.mu.Unlock()
	if still {
		go c.Do(context.Background(), &Request{Op: proto.OpCancel, Args: [3]uint64{cl.sub.UserData}})
	}
}

// dispatch reaps completions until the channel dies.
func (c *Channel) dispatch() {
	defer close(c.done)
	var deadline time.Time
	for {
		n, err := c.end.Complete.Wait(ring.WaitPolicy{Spin: ring.DefaultSpin, Adapt: c.spin}, deadline)
		if errors.Is(err, ring.ErrWaitTimeout) {
			n, err = 0, nil
		}
		if err != nil {
			c.mu.Lock()
			c.kill(err)
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		if c.closing {
			c.kill(ErrChannelClosed)
			c.mu.Unlock()
			return
		}
		epoch, resume := c.region.ServerEpoch()
		c.reap(n)
		if epoch != c.epoch {
			// Completions the dead incarnation posted are all in the ring
			// by now; reap them before deciding what to replay.
			for {
				k, err := c.end.Complete.Peek(c.end.Complete.Capacity())
				if err != nil || k == 0 {
					break
				}
				c.reap(k)
			}
			c.serverRestarted(epoch, resume)
		}
		// Provide again the buffers the completions brought back. If the
		// submission ring is full, look again shortly: waits that found
		// no buffer are waiting for these.
		deadline = time.Time{}
		if !c.provide() {
			deadline = time.Now().Add(reprovideRetry)
		}
		dead := c.dead != nil
		c.unlockWake()
		c.wakeCallers()
		if dead {
			return // a completion broke the protocol (see reap)
		}
	}
}

// wakeCallers wakes the callers of the calls reap completed, after mu is
// let go: a caller woken under mu would often find it taken by the
// dispatcher still at work, and park again on it. Dispatcher only.
func (c *Channel) wakeCallers() {
	for i, cl := range c.woken {
		close(cl.done)
		c.woken[i] = nil
	}
	c.woken = c.woken[:0]
}

// reap handles n ready completions. mu held.
func (c *Channel) reap(n int) {
	for i := range n {
		comp, _ := proto.DecodeCompletion(c.end.Complete.Slot(i))
		if comp.UserData == provideID {
			c.refusedProvide(comp)
			continue
		}
		cl := c.inflight[comp.UserData]
		if cl == nil {
			continue // not ours (a server bug, or a late answer to a replayed call)
		}
		delete(c.inflight, comp.UserData)
		if comp.Flags != 0 {
			// No operation of the ABI has more than one completion, or
			// any other flag: a server that says otherwise is broken or
			// hostile, and its channel is not to be trusted further.
			cl.err = fmt.Errorf("%w: completion of %s with flags %#x", ErrCorruptCompletion, cl.req.Op, uint32(comp.Flags))
			c.completeCall(cl, nil)
			c.kill(cl.err)
			continue
		}
		c.finish(cl, comp)
	}
	c.end.Complete.Release(n)
}

// ErrCorruptCompletion: the server posted a completion the ABI does not
// allow (flags no operation has, a buffer the app never lent it). The
// channel is declared dead with it: every call in flight fails, and so
// does every later one.
var ErrCorruptCompletion = errors.New("appproc: the server broke the ring protocol")

// finish completes cl with comp, taking its buffer back. mu held.
func (c *Channel) finish(cl *call, comp proto.Completion) {
	cl.resp = Response{Result: comp.Result, Aux: comp.Aux, Flags: comp.Flags}
	cl.err = comp.Err()
	if cl.buf == proto.NoBuffer && comp.Buf != proto.NoBuffer {
		c.finishSelected(cl, comp)
		return
	}
	if cl.buf != proto.NoBuffer {
		if comp.Buf == cl.buf {
			n := uint32(0)
			if comp.Result > 0 {
				n = uint32(min(comp.Result, int64(len(cl.req.Out))))
			}
			if cl.sink != nil {
				n = uint32(min(max(comp.Result, 0), int64(cl.sub.Len)))
			}
			data, err := c.end.Pool.Reclaim(cl.buf, n)
			if err != nil && cl.err == nil {
				cl.err = err
			}
			if cl.sink != nil {
				cl.resp.N = len(data)
				c.sinkCall(cl, data)
				data = nil
			} else {
				cl.resp.N = copy(cl.req.Out, data)
			}
		} else {
			// The server refused the entry without taking the buffer; it
			// is still ours.
			c.end.Pool.Unlend(cl.buf)
		}
		c.end.Pool.Free(cl.buf)
		cl.buf = proto.NoBuffer
		c.bufs <- struct{}{}
	}
	if !c.settle(cl) {
		return // its caller was told already
	}
	if cl.sink != nil {
		if comp.Buf != cl.sub.Buf || cl.sub.Buf == proto.NoBuffer {
			c.sinkCall(cl, nil) // no buffer came back: nothing to show
		}
		return
	}
	c.woken = append(c.woken, cl) // woken once mu is let go: wakeCallers
}

// settle is where every call ends, answered or failed: a negative result
// becomes 0 (the failure is in err), and the call's slot is given back. It
// reports whether the caller is still to be told: not if it gave up
// (ResumeWait told it already). mu held.
func (c *Channel) settle(cl *call) bool {
	if cl.resp.Result < 0 {
		cl.resp.Result = 0
	}
	if cl.slot {
		c.slots <- struct{}{}
	}
	return !cl.gaveUp
}

// serverRestarted handles a new server incarnation: calls the dead one took
// and never answered are replayed if idempotent, and failed with
// ECONNRESET otherwise; calls it never took are served by the new one.
// mu held.
func (c *Channel) serverRestarted(epoch, resume uint32) {
	if c.epoch != 0 { // 0: no server had attached yet; this is its first start
		c.restarts++
	}
	c.epoch = epoch
	caps := c.region.ServerCaps()
	resumes := caps&ring.CapResume != 0
	// Replayed in the order they were first submitted: a send, then the
	// shutdown behind it, reach the next incarnation in that order.
	var taken []*call
	for _, cl := range c.inflight {
		if int32(cl.pos-resume) < 0 {
			taken = append(taken, cl)
		}
		// Otherwise not consumed yet: the new incarnation will serve it.
	}
	slices.SortFunc(taken, func(a, b *call) int { return cmp.Compare(int32(a.pos-resume), int32(b.pos-resume)) })
	c.providedTaken(resume)
	waiting := false
	for _, cl := range taken {
		id := cl.sub.UserData
		if cl.buf != proto.NoBuffer {
			c.end.Pool.Unlend(cl.buf) // the dead server held it; it is ours again
		}
		if (cl.req.Replay || cl.req.Resume && resumes) && cl.owner && !cl.gaveUp {
			if cl.buf != proto.NoBuffer && len(cl.req.In) > 0 && cl.req.Replay {
				copy(c.end.Pool.Bytes(cl.buf), cl.req.In) // the server may have written over it
			}
			// A Resume request's buffer is replayed as it is: its caller
			// may have reused In (a write-behind send returns once
			// submitted), and netproc only reads a send's buffer.
			if err := c.push(cl); err == nil {
				if !cl.req.Replay {
					cl.resumed = true
					waiting = true
				}
				continue
			}
		}
		delete(c.inflight, id)
		c.finish(cl, proto.Completion{UserData: id, Result: proto.ErrResult(syscall.ECONNRESET), Buf: proto.NoBuffer})
	}
	switch {
	case caps&ring.CapDown == 0:
		// The next incarnation is up: what was replayed to it is its own.
		for _, cl := range c.inflight {
			cl.resumed = false
		}
	case waiting:
		time.AfterFunc(ResumeWait, func() { c.resumeExpired(epoch) })
	}
}

// resetErr is how a call fails when its server's death cost it.
var resetErr = (&proto.Completion{Result: proto.ErrResult(syscall.ECONNRESET)}).Err()

// resumeExpired fails the calls replayed under Request.Resume if the
// server's next incarnation has not started since the death that ended
// incarnation epoch: they end with ECONNRESET, as without resume. They
// stay in flight, their buffers lent, until a late incarnation answers
// them or the channel ends.
func (c *Channel) resumeExpired(epoch uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil || c.closing {
		return // the region may be unmapped already
	}
	if e, _ := c.region.ServerEpoch(); e != epoch || c.region.ServerCaps()&ring.CapDown == 0 {
		return
	}
	for id, cl := range c.inflight {
		if !cl.resumed || cl.gaveUp {
			continue
		}
		cl.gaveUp = true
		cl.resp, cl.err = Response{ID: id}, resetErr
		if cl.sink != nil {
			cl.sink(Response{ID: id}, nil, cl.err)
			continue
		}
		close(cl.done)
	}
}

// kill declares the channel dead and fails every call in flight. mu held.
func (c *Channel) kill(err error) {
	if c.dead != nil {
		return
	}
	c.dead = err
	for id, cl := range c.inflight {
		delete(c.inflight, id)
		cl.err = err
		if cl.buf != proto.NoBuffer {
			c.bufs <- struct{}{} // the memory goes away with the channel
		}
		if !c.settle(cl) {
			continue // its caller was told already
		}
		if cl.sink != nil {
			cl.sink(Response{ID: id}, nil, err)
			continue
		}
		close(cl.done)
	}
}

// close stops the dispatcher, fails calls in flight and unmaps the region.
func (c *Channel) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed, c.closing = true, true
	c.mu.Unlock()
	c.end.Complete.Interrupt()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if c.bell != nil {
		err = c.bell.Close()
	}
	if c.reserved > 0 {
		// A caller is still filling a reserved buffer in place: the last
		// reservation to end unmaps the region (see endReservation).
		c.unmapLater = true
		return err
	}
	return errors.Join(c.region.Close(), err)
}
