package appproc

import (
	"fmt"
	"time"

	"saturn/proto"
)

// Provided buffers. A wait submitted with proto.FlagSelect (a receive, an
// accept, a connect) holds no buffer while it waits: when its output is
// ready the server writes it into one of the buffers the channel provided
// it (proto.OpProvide) and names that buffer in the completion. The
// dispatcher reads the output out of it at once (into the caller's slice,
// or a connection's stash), and provides the buffer again, so a few
// buffers serve any number of idle connections: they are held only from
// the moment data is ready to the moment the app has copied it.
//
// A channel provides a share of its pool (provideShare), taken the first
// time a selecting wait is submitted, and keeps it provided for its life.
// An OpProvide is not a call: it holds no slot and has no completion
// unless the server refuses it (then the completion hands the buffer
// back). Like everything the server holds, provided buffers die with its
// incarnation: after a restart, those the dead one had taken are provided
// again to the next (see providedTaken).

// provideShare is the fraction of the pool provided: a quarter, which
// lets that many receives be on their way to the app at once, each as
// large as a buffer, and leaves the rest for sends and files.
const provideShare = 4

// provideID is the user_data of every OpProvide entry: no call has it
// (calls count up from 1).
const provideID = ^uint64(0)

// reprovideRetry is how soon the dispatcher tries again to provide
// buffers that found the submission ring full.
const reprovideRetry = 200 * time.Microsecond

// provide tops the provided buffers up to the channel's share, taking
// free buffers without waiting for any, and submits what it can of those
// not yet provided. It reports false if some are left for lack of room in
// the submission ring. mu held.
func (c *Channel) provide() bool {
	if c.dead != nil || c.closing {
		return true
	}
	want := max(c.end.Pool.Len()/provideShare, 1)
	for c.selecting && len(c.provided)+len(c.reprovide) < want {
		select {
		case <-c.bufs:
		default:
			want = 0 // none free now; the next selecting wait tries again
			continue
		}
		b, err := c.end.Pool.Alloc()
		if err != nil {
			c.bufs <- struct{}{} // cannot happen: we hold a token
			break
		}
		c.reprovide = append(c.reprovide, b)
	}
	for len(c.reprovide) > 0 {
		n, err := c.end.Submit.Reserve(len(c.reprovide))
		if err != nil {
			c.kill(err)
			return true
		}
		if n == 0 {
			return false
		}
		pos := c.end.Submit.Position()
		for i, b := range c.reprovide[:n] {
			if err := c.end.Pool.Lend(b); err != nil {
				c.kill(fmt.Errorf("appproc: providing buffer %d: %w", b, err))
				return true
			}
			sub := proto.Submission{Op: proto.OpProvide, Buf: b, UserData: provideID}
			sub.Encode(c.end.Submit.Slot(i))
			c.provided[b] = pos + uint32(i)
		}
		c.reprovide = c.reprovide[n:]
		if err := c.end.Submit.Publish(n); err != nil {
			c.kill(err)
			return true
		}
	}
	c.reprovide = c.reprovide[:0:0]
	return true
}

// providedTaken takes back the provided buffers that the server's dead
// incarnations took (those provided before resume, the position its next
// incarnation starts from), to provide them again to the next: what an
// incarnation held died with it. Those provided from resume on are the
// next incarnation's to take. mu held.
func (c *Channel) providedTaken(resume uint32) {
	for b, pos := range c.provided {
		if int32(pos-resume) >= 0 {
			continue
		}
		delete(c.provided, b)
		c.end.Pool.Unlend(b)
		c.reprovide = append(c.reprovide, b)
	}
}

// finishSelected completes cl, whose completion names a buffer cl did not
// lend: a provided one, with cl's output (FlagSelect). Anything else is a
// server breaking the protocol: the channel dies of it. mu held.
func (c *Channel) finishSelected(cl *call, comp proto.Completion) {
	b := comp.Buf
	_, ok := c.provided[b]
	if !ok || cl.req.Flags&proto.FlagSelect == 0 {
		cl.err = fmt.Errorf("%w: a completion of %s names buffer %d, which the app did not lend it", ErrCorruptCompletion, cl.req.Op, b)
		c.completeCall(cl, nil)
		c.kill(cl.err)
		return
	}
	delete(c.provided, b)
	n := uint32(min(max(comp.Result, 0), int64(cl.sub.Len)))
	data, err := c.end.Pool.Reclaim(b, n)
	if err != nil && cl.err == nil {
		cl.err = err
	}
	c.completeCall(cl, data)
	c.reprovide = append(c.reprovide, b) // the dispatcher provides it again
}

// completeCall hands cl its completion, with data (its output, valid only
// during the call) for a callback or copied to Out. mu held.
func (c *Channel) completeCall(cl *call, data []byte) {
	if !c.settle(cl) {
		return // its caller was told already
	}
	if cl.sink != nil {
		cl.resp.N = len(data)
		c.sinkCall(cl, data)
		return
	}
	cl.resp.N = copy(cl.req.Out, data)
	close(cl.done)
}

// refusedProvide takes back a buffer whose OpProvide the server refused
// (its completion is the only one an OpProvide has), and frees it. mu
// held.
func (c *Channel) refusedProvide(comp proto.Completion) {
	if _, ok := c.provided[comp.Buf]; !ok {
		return // not a buffer we provided: ignore it, as any stray answer
	}
	delete(c.provided, comp.Buf)
	c.end.Pool.Unlend(comp.Buf)
	c.end.Pool.Free(comp.Buf)
	c.bufs <- struct{}{}
}
