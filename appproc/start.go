package appproc

import (
	"context"
	"fmt"

	"saturn/proto"
)

// The event-style API underneath the blocking one. At the bottom is
// Channel.Start: submit an entry and return at once, with a callback that
// receives the completion. The blocking sockets (TCPConn, TCPListener) are
// built on it, and so is Events, the poll loop for apps that run their own
// event loop, in the seed's event-driven style.

// Callback receives a completion started with Channel.Start. It runs on
// the channel's dispatcher goroutine, with the channel locked: it must be
// quick, must not block, and must not call the Channel. data is the
// buffer the server filled (resp.N bytes), valid only during the call:
// copy what you keep. err is the errno the server answered, or why the
// call could not complete (the channel died, the server restarted).
type Callback func(resp Response, data []byte, err error)

// Start submits req and returns its ID (for Cancel) without waiting for
// the completion, which goes to cb. req.In is copied into the entry's
// buffer before Start returns, unless req.Replay is set; req.Out must be
// empty (the callback reads the buffer instead: ask for one with Room).
// Start waits only for room in the channel (a free slot and buffer), or
// until ctx ends.
func (c *Channel) Start(ctx context.Context, req *Request, cb Callback) (uint64, error) {
	return c.start(req, cb, ctx.Done(), nil)
}

// start is Start with two channels that abort the wait for room (either
// may be nil): a socket's close and its deadline.
func (c *Channel) start(req *Request, cb Callback, abort1, abort2 <-chan struct{}) (uint64, error) {
	bs := c.end.Pool.BufferSize()
	if len(req.In) > bs || req.Room > bs || len(req.Out) > 0 {
		return 0, fmt.Errorf("appproc: %s request of %d bytes in, room for %d: a buffer holds %d (and Out is for Do)", req.Op, len(req.In), req.Room, bs)
	}
	if err := checkSelect(req); err != nil {
		return 0, err
	}
	needSlot, needBuf := roomFor(req)
	if err := c.takeRoom(needSlot, needBuf, abort1, abort2); err != nil {
		return 0, err
	}
	cl := &call{req: *req, owner: true, buf: proto.NoBuffer, sink: cb, slot: needSlot}
	if err := c.submit(cl, needBuf); err != nil {
		c.giveRoom(needSlot, needBuf)
		return 0, err
	}
	return cl.sub.UserData, nil
}

// checkSelect refuses a FlagSelect request that cannot be one: only a
// wait chooses its buffer, and it brings no bytes in.
func checkSelect(req *Request) error {
	if req.Flags&proto.FlagSelect != 0 && (!req.Op.Waits() || len(req.In) > 0) {
		return fmt.Errorf("appproc: %s with FlagSelect: only accept, connect and recv choose their buffer, and they bring no bytes", req.Op)
	}
	return nil
}

// roomFor says what req holds while in flight: a call slot unless it is a
// wait (proto.Op.Waits), and a buffer if it carries bytes in or out,
// unless the server chooses one when its output is ready (FlagSelect).
func roomFor(req *Request) (slot, buf bool) {
	slot = !req.Op.Waits()
	buf = req.Flags&proto.FlagSelect == 0 && (len(req.In) > 0 || len(req.Out) > 0 || req.Room > 0)
	return slot, buf
}

// takeRoom waits for a free slot if needSlot, and a free buffer if needBuf,
// and takes them (in that order, as every caller does); it gives up with
// errAborted when abort1 or abort2 (either may be nil) fires first, or
// with the channel's error when it dies.
func (c *Channel) takeRoom(needSlot, needBuf bool, abort1, abort2 <-chan struct{}) error {
	if needSlot {
		if err := c.take(c.slots, abort1, abort2); err != nil {
			return err
		}
	}
	if needBuf {
		if err := c.take(c.bufs, abort1, abort2); err != nil {
			if needSlot {
				c.slots <- struct{}{}
			}
			return err
		}
	}
	return nil
}

// take takes a token from tokens, waiting as takeRoom says.
func (c *Channel) take(tokens chan struct{}, abort1, abort2 <-chan struct{}) error {
	select {
	case <-tokens:
		return nil
	default:
	}
	select {
	case <-tokens:
		return nil
	case <-abort1:
		return errAborted
	case <-abort2:
		return errAborted
	case <-c.done:
		return c.deadErr()
	}
}

// giveRoom gives back what takeRoom took, for a call that never started.
func (c *Channel) giveRoom(needSlot, needBuf bool) {
	if needBuf {
		c.bufs <- struct{}{}
	}
	if needSlot {
		c.slots <- struct{}{}
	}
}

// errAborted: start gave up waiting for room because its caller's abort
// channel fired; the caller knows which (close or deadline).
var errAborted = fmt.Errorf("appproc: aborted")

// sinkCall hands cl's completion to its callback. mu held.
func (c *Channel) sinkCall(cl *call, data []byte) {
	if cl.gaveUp {
		return // failed by ResumeWait: its caller was told already
	}
	resp := cl.resp
	resp.ID = cl.sub.UserData
	if resp.Result < 0 {
		resp.Result = 0
	}
	cl.sink(resp, data, cl.err)
}

// Cancel asks the server to cancel the call with id, if it is still in
// flight. The call completes either way (with ECANCELED if the cancel got
// there first); Cancel does not wait for it.
func (c *Channel) Cancel(id uint64) {
	c.mu.Lock()
	_, inflight := c.inflight[id]
	c.mu.Unlock()
	if inflight {
		c.start(&Request{Op: proto.OpCancel, Args: [3]uint64{id}}, discard, nil, nil)
	}
}

// FreeBuffers is how many of the channel's data buffers are neither lent
// nor being filled: a hint of pressure for callers that can wait without
// one.
func (c *Channel) FreeBuffers() int { return len(c.bufs) }

func discard(Response, []byte, error) {}

// serverEpoch is the incarnation of the server now attached.
func (c *Channel) serverEpoch() uint32 {
	e, _ := c.region.ServerEpoch()
	return e
}
