package netproc

import (
	"net/netip"
	"syscall"
	"time"

	"saturn/proto"
)

// Limits bound what one app may hold in netproc. Past them an operation
// fails with the errno named, netproc logs which limit the app reached
// (once per limitLogEvery), and nothing else changes: the app's other
// sockets go on, and so does every other app.
type Limits struct {
	// Sockets: listeners and connections, connecting ones and ones the app
	// closed that are still sending included. EMFILE for the listen,
	// accept or connect past it ([[app]] max_sockets in the config).
	Sockets int
	// Memory: the bytes netproc spends on the app's sockets, as netproc
	// counts them: each socket's fixed cost on the backend
	// (backend.Costs) plus the bytes its connections hold in their
	// buffers, sampled every memorySampleEvery. ENOBUFS for a new
	// connection (accept or connect) past it ([[app]] max_memory). 0: no
	// limit.
	Memory int64
	// Pending: operations waiting on a socket (waits, and sends waiting
	// for room), with the waits' completions not yet reaped. ENOBUFS.
	// 0: twice Sockets, and 4096 more: an app may have a receive and a
	// send waiting on every connection.
	Pending int
	// Buffers: data buffers held by waiting operations (0: the app's
	// pool). ENOBUFS.
	Buffers int
	// SockBuf: the largest OptRecvBuffer or OptSendBuffer. ENOBUFS.
	SockBuf int
}

// DefaultLimits are the limits of an app that sets none.
var DefaultLimits = Limits{Sockets: 100_000, SockBuf: 8 << 20}

// Merge is l with the fields that d sets and l does not.
func (l Limits) Merge(d Limits) Limits {
	if l.Sockets <= 0 {
		l.Sockets = d.Sockets
	}
	if l.Memory <= 0 {
		l.Memory = d.Memory
	}
	if l.Pending <= 0 {
		l.Pending = d.Pending
	}
	if l.Buffers <= 0 {
		l.Buffers = d.Buffers
	}
	if l.SockBuf <= 0 {
		l.SockBuf = d.SockBuf
	}
	return l
}

// withDefaults fills what l leaves unset from DefaultLimits, and Pending
// from Sockets.
func (l Limits) withDefaults() Limits {
	l = l.Merge(DefaultLimits)
	if l.Pending <= 0 {
		l.Pending = 2*l.Sockets + 4096
	}
	return l
}

// limitsFor is the limits of the app at the other end of a channel: what
// the supervisor sent with it (the app's own config), over netproc's.
func (h *Handler) limitsFor(desc proto.ChannelDesc) Limits {
	l := h.limits
	if d := desc.Limits; d != nil {
		own := Limits{Sockets: d.Sockets, Memory: d.Memory}
		if own.Sockets > 0 && h.opts.Limits.Pending <= 0 {
			l.Pending = 0 // follow the app's own socket limit
		}
		l = own.Merge(l)
	}
	return l.withDefaults()
}

// limitLogEvery spaces the log lines of one app reaching one limit.
const limitLogEvery = 10 * time.Second

// overLimit logs that app reached the limit called which (what the config
// calls it), once per limitLogEvery.
func (h *Handler) overLimit(app *appState, which string, limit int64) {
	now := time.Now()
	if last, ok := app.warned[which]; ok && now.Sub(last) < limitLogEvery {
		return
	}
	if app.warned == nil {
		app.warned = map[string]time.Time{}
	}
	app.warned[which] = now
	errno, key := "ENOBUFS", ""
	switch which {
	case "sockets":
		errno, key = "EMFILE", "max_sockets"
	case "memory":
		key = "max_memory"
	}
	args := []any{"app", app.name, "limit", which, "value", limit, "errno", errno,
		"sockets", app.sockets(), "pending", len(app.pending)}
	if key != "" {
		args = append(args, "config", "[[app]] "+key+" (default: [netproc] "+key+")")
	}
	h.log.Warn("app reached a limit; refusing what goes past it", args...)
}

// memory is what netproc counts against app's Limits.Memory: its sockets'
// fixed cost, and what its connections held in their buffers at the last
// sample.
func (h *Handler) memory(app *appState) int64 {
	return int64(app.sockets())*int64(h.costs.Socket) + app.buffered
}

// admitConnection checks a new connection (accept or connect) against
// app's memory limit, failing o with ENOBUFS past it.
func (h *Handler) admitConnection(app *appState, o *op) bool {
	if app.limits.Memory <= 0 || h.memory(app)+int64(h.costs.Socket) <= app.limits.Memory {
		return true
	}
	h.overLimit(app, "memory", app.limits.Memory)
	h.fail(o, syscall.ENOBUFS)
	return false
}

// notGranted logs that app asked to listen where its grants do not let
// it, once per limitLogEvery.
func (h *Handler) notGranted(app *appState, addr netip.AddrPort) {
	now := time.Now()
	if last, ok := app.warned["listen"]; ok && now.Sub(last) < limitLogEvery {
		return
	}
	if app.warned == nil {
		app.warned = map[string]time.Time{}
	}
	app.warned["listen"] = now
	h.log.Warn("app may not listen there; refused with EACCES", "app", app.name, "addr", addr,
		"granted", app.grants.Listen, "config", "[[app]] listen (ports below 1024 need a grant that names them)")
}

// Shares. Every app's limits are its own, but the sockets a backend can
// hold are everyone's (the kernel backend's descriptors, usertcp's
// connection table): one app within its limit could still take them all.
// So each of the MaxApps apps that may attach is guaranteed a few
// (guaranteedSockets), and only what is left over is first come, first
// served: an app past its guarantee takes a socket only while the shared
// part has one. However the others behave, an app can always have its
// guarantee, and together they never pass the capacity.

// DefaultMaxApps is Options.MaxApps' default, and the supervisor's.
const DefaultMaxApps = 64

// guaranteedSockets is each app's guaranteed share of the backend's
// sockets (less when the capacity cannot give every app as many).
const guaranteedSockets = 64

// guaranteed is each app's guaranteed share; 0 when the backend does not
// say its capacity.
func (h *Handler) guaranteed() int {
	if h.capacity <= 0 {
		return 0
	}
	return min(guaranteedSockets, h.capacity/h.opts.MaxApps)
}

// admitSocket reports whether app may have one more socket under the
// shares, logging (and answering o with EMFILE) when it may not.
func (h *Handler) admitSocket(app *appState, o *op) bool {
	floor := h.guaranteed()
	if h.capacity <= 0 || app.sockets() < floor {
		return true
	}
	shared := h.Kept() // kept listeners belong to nobody's guarantee
	for _, ch := range h.loop.Channels() {
		if a, ok := ch.Data.(*appState); ok {
			shared += max(a.sockets()-floor, 0)
		}
	}
	if shared < h.capacity-h.opts.MaxApps*floor {
		return true
	}
	now := time.Now()
	if last, ok := app.warned["shares"]; !ok || now.Sub(last) >= limitLogEvery {
		if app.warned == nil {
			app.warned = map[string]time.Time{}
		}
		app.warned["shares"] = now
		h.log.Warn("netproc's sockets are all taken: refusing the app more than its guaranteed share (EMFILE)",
			"app", app.name, "sockets", app.sockets(), "guaranteed", floor, "capacity", h.capacity, "max_apps", h.opts.MaxApps,
			"hint", "the kernel backend's capacity is netproc's RLIMIT_NOFILE; usertcp's is [netproc] max_connections")
	}
	h.fail(o, syscall.EMFILE)
	return false
}
