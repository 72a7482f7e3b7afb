package netproc

import (
	"syscall"

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
	epoch   uint64 // the channel's epoch, masked: in every handle we give out
	socks   map[uint64]*sock
	closing map[*sock]bool // closed by the app, still sending (see closeAfterSends)
	pending map[uint64]*op // waiting operations, for OpCancel and the limits
	bufs    int            // buffers held by waiting operations
	gone    bool           // Dropped: complete nothing more
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
}

func (h *Handler) newOp(app *appState, sub *proto.Submission) *op {
	var o *op
	if n := len(h.free); n > 0 {
		o = h.free[n-1]
		h.free = h.free[:n-1]
	} else {
		o = new(op)
	}
	*o = op{app: app, sub: *sub}
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
	case len(app.pending) >= h.limits.Pending:
		h.endWaiting(o, syscall.ENOBUFS)
		return false
	case o.held && h.limits.Buffers > 0 && app.bufs >= h.limits.Buffers:
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
		if o.held {
			c.Buf = o.sub.Buf
		}
		app.ch.Complete(c)
	}
	h.freeOp(o)
}

// fail answers o with an error.
func (h *Handler) fail(o *op, err error) {
	h.complete(o, proto.ResultOf(err), 0)
}
