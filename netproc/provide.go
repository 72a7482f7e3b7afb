package netproc

import (
	"syscall"

	"saturn/proto"
)

// Buffer selection (proto.FlagSelect): a wait that names no buffer gets one
// of the buffers its app provided (proto.OpProvide) when its output is
// ready, not before, so that an idle connection, a listener with nobody
// knocking or a connect in progress holds no buffer at all. The app keeps a
// few buffers provided (appproc: a quarter of its pool) and provides each
// again as soon as it has read it; the completion that names a provided
// buffer is what hands it back.
//
// When a socket is ready for a selecting wait but the app has no buffer
// provided, the socket waits on the app's starved list, in order, and is
// pumped again when a buffer arrives. Nothing is lost meanwhile: the bytes
// (or the queued connection) stay in the socket.

// providedBuf is a buffer an app provided: its index and its memory.
type providedBuf struct {
	index uint32
	mem   []byte
}

// provide takes o, an OpProvide whose buffer Submit took, into the app's
// provided buffers, and lets the starved sockets have them. It completes
// nothing: the buffer comes back with the wait that uses it.
func (h *Handler) provide(o *op) {
	if !o.held {
		h.fail(o, syscall.EINVAL) // names no buffer
		return
	}
	app := o.app
	app.provided = append(app.provided, providedBuf{index: o.sub.Buf, mem: o.buf[:cap(o.buf)]})
	h.freeOp(o)
	for len(app.provided) > 0 && len(app.starved) > 0 {
		s := app.starved[0]
		app.starved = popFront(app.starved)
		s.starved = false
		if !s.closed && s.app == app {
			s.pump()
		}
	}
}

// selectBuf gives o, a FlagSelect wait about to write its output, one of
// its app's provided buffers (sub.Len bytes of it). It reports false, and
// puts s on the starved list, if the app has none.
func (s *sock) selectBuf(o *op) bool {
	if o.app.takeProvided(o) {
		return true
	}
	if !s.starved {
		s.starved = true
		o.app.starved = append(o.app.starved, s)
	}
	return false
}

// takeProvided gives o one of its app's provided buffers, if there is one.
func (a *appState) takeProvided(o *op) bool {
	n := len(a.provided)
	if n == 0 {
		return false
	}
	b := a.provided[n-1]
	a.provided = a.provided[:n-1]
	o.sel, o.buf = b.index, b.mem[:min(int(o.sub.Len), len(b.mem))]
	return true
}

// unselect gives back the buffer selectBuf chose, when the attempt found
// nothing after all (EAGAIN) or failed.
func (o *op) unselect() {
	if o.sel == proto.NoBuffer {
		return
	}
	o.app.provided = append(o.app.provided, providedBuf{index: o.sel, mem: o.buf[:cap(o.buf)]})
	o.sel, o.buf = proto.NoBuffer, nil
}

// selecting reports whether o chooses its buffer when its output is ready.
func (o *op) selecting() bool { return o.sub.Flags&proto.FlagSelect != 0 }
