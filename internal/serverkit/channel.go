package serverkit

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"saturn/proto"
	"saturn/ring"
)

// Channel is a server's end of one app's channel.
type Channel struct {
	Desc   proto.ChannelDesc
	Region *ring.Region
	End    *ring.ServerEnd

	// bell is the server's doorbell, which the app rings. The loop watches
	// it edge-triggered and never reads it: the app shares its counter and
	// its blocking mode (see ring.EventDoorbell). The app's doorbell is the
	// region's futex word, which End.Complete rings.
	bell    *ring.EventDoorbell
	pending []proto.Completion // calls' completions of this round, published together
	backlog []proto.Completion // calls' completions that found the ring full
	waits   []proto.Completion // waits' completions, published after the calls' as room allows (see proto.Op.Waits)
	dead    error              // the ring is corrupt; the channel is no longer served

	// Data is the handler's own per-channel state.
	Data any
}

// maxBacklog bounds the completions a channel may have waiting for room in
// its completion ring. An app that submits more than its ring holds and
// never reaps only hurts itself: past this, its completions are dropped
// and the channel is declared dead.
const maxBacklog = 4096

// Open maps a channel received from the supervisor: the region, then the
// server's doorbell. It takes ownership of files and starts a new server
// incarnation on the region.
//
// proto may count a further descriptor (the app's eventfd doorbell of old);
// it is closed unused, since the app's doorbell is the region's futex word.
func Open(desc proto.ChannelDesc, files []*os.File) (*Channel, error) {
	if !desc.Bells || len(files) != 2 || desc.FDCount() != 2 {
		closeFiles(files)
		return nil, fmt.Errorf("serverkit: channel %d came with %d descriptors, want 2: the region and the server's doorbell", desc.ID, len(files))
	}
	region, err := ring.Open(files[0])
	if err != nil {
		files[1].Close()
		return nil, err
	}
	g := region.Geometry()
	if g.SQEntrySize != proto.SubmissionSize || g.CQEntrySize != proto.CompletionSize {
		region.Close()
		files[1].Close()
		return nil, fmt.Errorf("serverkit: channel %d has entries of %d and %d bytes, want %d and %d",
			desc.ID, g.SQEntrySize, g.CQEntrySize, proto.SubmissionSize, proto.CompletionSize)
	}
	bell, err := ring.EventDoorbellFromFile(files[1])
	if err != nil {
		region.Close()
		files[1].Close()
		return nil, err
	}
	end, err := region.Server(ring.Bells{Server: bell})
	if err != nil {
		region.Close()
		bell.Close()
		return nil, err
	}
	return &Channel{Desc: desc, Region: region, End: end, bell: bell}, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// Close unmaps the channel and closes its doorbell (which rings nothing).
func (ch *Channel) Close() error {
	return errors.Join(ch.Region.Close(), ch.bell.Close())
}

// Complete queues c; the loop publishes a round's completions together. If
// c names a buffer, it is handed back here: the handler must not touch it
// after this call. Loop only.
func (ch *Channel) Complete(c proto.Completion) {
	ch.pending = append(ch.pending, ch.handBack(c))
}

// handBack returns the buffer c names, if any, to the app's side of the
// loans, before c is queued.
func (ch *Channel) handBack(c proto.Completion) proto.Completion {
	if c.Buf != proto.NoBuffer {
		if err := ch.End.Loans.Return(c.Buf); err != nil {
			// A handler bug: never hand the app a buffer we do not hold.
			c.Buf = proto.NoBuffer
			if c.Result >= 0 {
				c.Result = -int64(syscall.EFAULT)
			}
		}
	}
	return c
}

// CompleteWait queues c, the completion of a wait (proto.Op.Waits). It is
// published after every call's completion, as the completion ring has
// room: the app does not count its waits against the ring's slots, so a
// wait's completion may find the ring full, and must then wait for room
// without being in a call's way. The handler bounds how many waits an app
// may have (waiting, or completed and queued here: QueuedWaits). If c
// names a buffer it is handed back here, as with Complete. Loop only.
func (ch *Channel) CompleteWait(c proto.Completion) {
	ch.waits = append(ch.waits, ch.handBack(c))
}

// QueuedWaits counts the waits' completions not yet published. Loop only.
func (ch *Channel) QueuedWaits() int { return len(ch.waits) }

// QueuedCalls counts the calls' completions not yet published: this
// round's, and those that found the ring full. Loop only.
func (ch *Channel) QueuedCalls() int { return len(ch.pending) + len(ch.backlog) }

// CompleteErr completes sub with an error, handing back its buffer if the
// server holds it.
func (ch *Channel) CompleteErr(sub *proto.Submission, errno syscall.Errno, heldBuf bool) {
	c := proto.Completion{UserData: sub.UserData, Result: proto.ErrResult(errno), Buf: proto.NoBuffer}
	if heldBuf {
		c.Buf = sub.Buf
	}
	ch.Complete(c)
}

// flush publishes what fits of the calls' completions (the backlog, then
// this round's), oldest first, then what fits of the waits'. It reports
// whether completions are still waiting for room.
func (ch *Channel) flush() bool {
	if len(ch.pending) > 0 {
		ch.backlog = append(ch.backlog, ch.pending...)
		ch.pending = ch.pending[:0]
	}
	ch.backlog = ch.publish(ch.backlog)
	if len(ch.backlog) == 0 {
		ch.waits = ch.publish(ch.waits)
	}
	if len(ch.backlog) > maxBacklog && ch.dead == nil {
		ch.dead = fmt.Errorf("serverkit: app %s left %d completions unreaped", ch.Desc.App, len(ch.backlog))
	}
	return len(ch.backlog) > 0 || len(ch.waits) > 0
}

// publish publishes what fits of q, in order, and returns the rest (nil
// when all went, so that a burst's backing array is let go).
func (ch *Channel) publish(q []proto.Completion) []proto.Completion {
	for len(q) > 0 && ch.dead == nil {
		n, err := ch.End.Complete.Reserve(len(q))
		if err != nil {
			ch.dead = err
			break
		}
		if n == 0 {
			break
		}
		for i := range n {
			q[i].Encode(ch.End.Complete.Slot(i))
		}
		ch.End.Complete.Publish(n)
		q = q[n:]
	}
	if len(q) == 0 {
		return nil
	}
	return q
}
