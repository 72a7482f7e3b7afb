package netproc

import (
	"net/netip"
	"syscall"

	"saturn/proto"
)

// Listeners outlive their app: when an app goes away, each of its
// listeners is kept open, under the app's name and the address it asked
// for (with the port it got, if it asked for port 0), with the backend
// still queueing connections on it.
// When an app of that name listens on that address again, within
// Options.Linger, it gets that very socket (adopt), and accepts what queued
// meanwhile; otherwise the listener is closed when the linger ends.
//
// The name and the user are the key because they are what survives a
// restart: the supervisor gives a restarted app new channels but the same
// name (unique within an instance) and the same uid (see supervisor's
// users.go). The uid is the identity: a process that attaches under a
// gone app's name but runs as another user does not get its listeners,
// nor the connections queued on them.

// orphanKey names a kept listener: the app's name and user, and what it
// asked for.
type orphanKey struct {
	app   string
	uid   uint32
	addr  netip.AddrPort
	flags proto.ListenFlag
}

// orphan keeps s, a listener of an app that is gone, for the next
// incarnation to adopt.
func (h *Handler) orphan(s *sock) {
	// What the gone app had waiting on the listener goes with it: the next
	// incarnation's accepts must be the only ones served.
	for _, o := range s.accepts {
		h.endWaiting(o, syscall.ECANCELED)
	}
	s.accepts = nil
	s.app, s.handle = nil, 0
	h.orphans[s.key] = append(h.orphans[s.key], s)
	s.lingering = h.timers.AfterFunc(h.opts.Linger, func() {
		if s.app != nil || s.closed {
			return // adopted (or closed) meanwhile
		}
		h.unorphan(s)
		s.closeBackend()
		h.log.Info("listener closed: its app did not come back", "app", s.key.app, "addr", s.key.addr, "after", h.opts.Linger)
	})
}

// maxKeptPerApp bounds the listeners one app (name and user) may leave
// for its next incarnation with proto.CloseKeep while it runs: a kept
// listener no longer counts against the app's sockets, so without a bound
// an app could listen and leave, port after port, and hold any number.
// Past it, a close with CloseKeep closes.
const maxKeptPerApp = 64

// keptBy counts the kept listeners of the app that key names.
func (h *Handler) keptBy(key orphanKey) int {
	n := 0
	for k, socks := range h.orphans {
		if k.app == key.app && k.uid == key.uid {
			n += len(socks)
		}
	}
	return n
}

// adopt hands app a listener its previous incarnation left under key, or
// nil if there is none.
func (h *Handler) adopt(app *appState, key orphanKey) *sock {
	if key.addr.Port() == 0 {
		return nil // "any port" is a new listener every time
	}
	socks := h.orphans[key]
	if len(socks) == 0 {
		return nil
	}
	s := socks[0]
	h.unorphan(s)
	s.app = app
	h.register(s)
	h.log.Info("listener adopted", "app", app.name, "addr", key.addr)
	return s
}

// unorphan takes s out of the kept listeners.
func (h *Handler) unorphan(s *sock) {
	if s.lingering != nil {
		s.lingering.Stop()
		s.lingering = nil
	}
	socks := h.orphans[s.key]
	for i, x := range socks {
		if x == s {
			socks = append(socks[:i], socks[i+1:]...)
			break
		}
	}
	if len(socks) == 0 {
		delete(h.orphans, s.key)
	} else {
		h.orphans[s.key] = socks
	}
}
