package netproc

import (
	"syscall"
	"time"

	"saturn/internal/serverkit"
	"saturn/proto"
)

// Handle layout: bit 63 clear (a completion's result is a signed count),
// then the low 15 bits of the channel's epoch, then 48 random bits.
const (
	randBits  = 48
	randMask  = 1<<randBits - 1
	epochMask = 1<<15 - 1
)

// appState is one app's share of netproc: its channel, its sockets by
// handle and its waiting operations by user_data.
type appState struct {
	ch      *serverkit.Channel
	name    string
	uid     uint32 // the user the app runs as: with name, what owns its kept listeners
	epoch   uint64 // the channel's epoch, masked: in every handle we give out
	socks   map[uint64]*sock
	closing map[*sock]bool // closed by the app, still sending (see closeAfterSends)
	pending map[uint64]*op // waiting operations, for OpCancel and the limits
	// replays holds the sockets resumed from netproc's dead incarnation by
	// the user_data of the app's call that made them (backend.Resumed's
	// Call): an accept, connect or listen the app replays is answered with
	// its socket (see Handler.replayed).
	replays map[uint64]*sock
	bufs    int                  // buffers held by waiting operations
	gone    bool                 // Dropped: complete nothing more
	limits  Limits               // this app's (Options.Limits, or what its channel says)
	grants  *proto.ChannelGrants // what it may listen on (nil: anything)

	buffered int64 // bytes the app's connections hold in the backend's buffers (see sock.account)

	provided []providedBuf // buffers for FlagSelect waits (see provide.go)
	starved  []*sock       // sockets ready for a FlagSelect wait, waiting for a buffer
	// warned is when each limit was last logged, so that an app that
	// hammers one gets a line every limitLogEvery, not one per refusal.
	warned map[string]time.Time
}

// sockets counts what the app holds against its socket limit, sockets it
// closed that are still sending included.
func (a *appState) sockets() int { return len(a.socks) + len(a.closing) }

// lookup finds the socket a submission names. A handle that is not in the
// table but carries an earlier epoch is a socket that died with an earlier
// incarnation of netproc: the app sees ECONNRESET, as for a connection
// reset under it. Anything else is EBADF.
func (a *appState) lookup(handle uint64) (*sock, syscall.Errno) {
	if s := a.socks[handle]; s != nil {
		return s, 0
	}
	if e := handle >> randBits; e != 0 && e < a.epoch {
		return nil, syscall.ECONNRESET
	}
	return nil, syscall.EBADF
}

// op is one operation from an app, from its submission to its completion.
type op struct {
	app  *appState
	sub  proto.Submission // decoded once, private
	buf  []byte           // the lent buffer, sub.Len long; nil if none
	held bool             // we took sub.Buf and owe it back
	sock *sock            // the socket it waits on, once waiting
	sent int              // OpSend: bytes sent so far
	wait bool             // registered in app.pending
	tmr  *timer           // OpConnect: its timeout
	sel  uint32           // a FlagSelect wait: the provided buffer it chose (buf), or NoBuffer
}

func (h *Handler) newOp(app *appState, sub *proto.Submission) *op {
	var o *op
	if n := len(h.free); n > 0 {
		o = h.free[n-1]
		h.free = h.free[:n-1]
	} else {
		o = new(op)
	}
	*o = op{app: app, sub: *sub, sel: proto.NoBuffer}
	return o
}

// freeOp recycles o; it must be referenced nowhere any more.
func (h *Handler) freeOp(o *op) {
	if len(h.free) < 1024 {
		*o = op{}
		h.free = append(h.free, o)
	}
}

// admit registers o as waiting, within the app's limits. If a limit is
// reached it fails o with ENOBUFS (or, for a send that got bytes out
// already, completes it with their count) and reports false.
func (h *Handler) admit(o *op) bool {
	app := o.app
	switch {
	case len(app.pending) >= app.limits.Pending:
		h.overLimit(app, "pending", int64(app.limits.Pending))
		h.endWaiting(o, syscall.ENOBUFS)
		return false
	case o.held && app.limits.Buffers > 0 && app.bufs >= app.limits.Buffers:
		h.overLimit(app, "buffers", int64(app.limits.Buffers))
		h.endWaiting(o, syscall.ENOBUFS)
		return false
	case app.pending[o.sub.UserData] != nil:
		// Two waiting operations under one user_data could not be told
		// apart by OpCancel; an honest app never does this.
		h.endWaiting(o, syscall.EBUSY)
		return false
	}
	app.pending[o.sub.UserData] = o
	o.wait = true
	if o.held {
		app.bufs++
	}
	return true
}

// complete answers o with result (a count or handle) and aux, handing its
// buffer back, and recycles it.
func (h *Handler) complete(o *op, result int64, aux uint64) {
	app := o.app
	if o.wait {
		delete(app.pending, o.sub.UserData)
		if o.held {
			app.bufs--
		}
	}
	if o.tmr != nil {
		o.tmr.Stop()
	}
	if !app.gone {
		c := proto.Completion{UserData: o.sub.UserData, Result: result, Buf: proto.NoBuffer, Aux: aux}
		switch {
		case o.held:
			c.Buf = o.sub.Buf
		case o.sel != proto.NoBuffer && result >= 0:
			c.Buf = o.sel // a provided buffer, with the output
		case o.sel != proto.NoBuffer:
			o.unselect() // nothing to show: keep it provided
		}
		if o.sub.Op.Waits() {
			app.ch.CompleteWait(c)
		} else {
			app.ch.Complete(c)
		}
	}
	h.freeOp(o)
}

// refuse answers o, which never waited, with an error as a call's
// completion whatever its kind (see Handler.Submit).
func (h *Handler) refuse(o *op, errno syscall.Errno) {
	c := proto.Completion{UserData: o.sub.UserData, Result: proto.ErrResult(errno), Buf: proto.NoBuffer}
	if o.held {
		c.Buf = o.sub.Buf
	}
	o.app.ch.Complete(c)
	h.freeOp(o)
}

// fail answers o with an error.
func (h *Handler) fail(o *op, err error) {
	h.complete(o, proto.ResultOf(err), 0)
}
