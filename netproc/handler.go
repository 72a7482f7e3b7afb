package netproc

import (
	crand "crypto/rand"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"saturn/internal/serverkit"
	"saturn/netproc/backend"
	"saturn/proto"
	"saturn/ring"
)

// Options configure a Handler.
type Options struct {
	// Backend provides the sockets. Required.
	Backend backend.Backend
	// Limits per app; zero fields take DefaultLimits'.
	Limits Limits
	// Linger is how long a listener outlives the app that opened it,
	// waiting for the app's next incarnation to adopt it. Zero means
	// DefaultLinger; negative, that listeners close with their app.
	Linger time.Duration
	// Permit, when set, vets every address an app listens on or connects
	// to; an error (a syscall.Errno, such as EACCES) refuses the operation
	// with it. Tests use it to keep apps on loopback.
	Permit func(op proto.Op, addr netip.AddrPort) error
	// MaxApps is how many apps may be attached at once (the supervisor's
	// [supervisor] max_apps): each is guaranteed its share of the
	// backend's sockets (see shares). Zero means DefaultMaxApps.
	MaxApps int
	Log     *slog.Logger
}

// DefaultLinger is how long a listener waits for its app to come back.
// It outlasts the supervisor's default back-off ceiling (10 s).
const DefaultLinger = 30 * time.Second

// Handler is netproc's logic on serverkit's loop. Every method runs on the
// loop goroutine, which owns all of its state; nothing here takes a lock.
type Handler struct {
	opts    Options
	limits  Limits
	be      backend.Backend
	log     *slog.Logger
	loop    *serverkit.Loop
	timers  *timers
	rng     *rand.ChaCha8
	orphans map[orphanKey][]*sock // listeners waiting for their app's next incarnation
	free    []*op                 // recycled operation records
	capt    captures              // packet captures running (see capture.go)
	// resumer is the backend's Resumer when its connections survive
	// netproc's death (see package backend, "Restarts"); nil otherwise.
	resumer backend.Resumer
	costs   backend.Costs // what the backend says a socket costs (see Limits.Memory)
	// capacity is how many sockets the backend holds in all (0: it does
	// not say); shared out among the apps (see admitSocket).
	capacity int
	flusher  backend.Flusher // the backend's, if it batches over a round (see EndRound)
}

var _ serverkit.Handler = (*Handler)(nil)

// NewHandler makes a handler; Start it on its loop before the loop runs.
func NewHandler(opts Options) *Handler {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Linger == 0 {
		opts.Linger = DefaultLinger
	}
	var seed [32]byte
	crand.Read(seed[:]) // never fails on Linux
	return &Handler{
		opts: opts, limits: opts.Limits.withDefaults(), be: opts.Backend, log: opts.Log,
		rng: rand.NewChaCha8(seed), orphans: map[orphanKey][]*sock{},
	}
}

// Start sets up the timers and starts the backend on l. Call it once, before
// l runs (serverkit.ServeWith's setup).
func (h *Handler) Start(l *serverkit.Loop) error {
	if h.be == nil {
		return fmt.Errorf("netproc: no backend")
	}
	h.loop = l
	ts, err := newTimers()
	if err != nil {
		return fmt.Errorf("netproc: timerfd: %w", err)
	}
	if err := l.AddFD(ts.fd, unix.EPOLLIN, ts.fire); err != nil {
		ts.close()
		return err
	}
	h.timers = ts
	if err := h.be.Start(env{h}); err != nil {
		return fmt.Errorf("netproc: starting the %s backend: %w", h.be.Name(), err)
	}
	if r, ok := h.be.(backend.Resumer); ok && r.Resuming() {
		h.resumer = r
	}
	if c, ok := h.be.(backend.Coster); ok {
		h.costs = c.Costs()
	}
	if c, ok := h.be.(backend.Capacity); ok {
		h.capacity = c.Capacity()
	}
	h.flusher, _ = h.be.(backend.Flusher)
	if h.opts.MaxApps <= 0 {
		h.opts.MaxApps = DefaultMaxApps
	}
	h.log.Info("serving sockets", "backend", h.be.Name(), "limits", fmt.Sprintf("%+v", h.limits), "linger", h.opts.Linger,
		"capacity", h.capacity, "max_apps", h.opts.MaxApps, "guaranteed_each", h.guaranteed())
	return nil
}

// Close closes the listeners still waiting for their apps and the backend.
// Call it after the loop has stopped (it has dropped every channel).
func (h *Handler) Close() error {
	for key, socks := range h.orphans {
		for _, s := range socks {
			s.leave()
		}
		delete(h.orphans, key)
	}
	if h.timers != nil {
		h.timers.close()
	}
	return h.be.Close()
}

// Added implements serverkit.Handler: a new app, or every app again after
// a restart of netproc. With a backend that resumes connections, the app
// gets back those its channel held in the dead incarnation, under the
// same handles, and the region says so (ring.CapResume), so that appproc
// replays what the dead one took instead of failing it.
func (h *Handler) Added(ch *serverkit.Channel) error {
	app := &appState{
		ch: ch, name: ch.Desc.App, uid: ch.Desc.UID, epoch: uint64(ch.End.Epoch) & epochMask,
		socks: map[uint64]*sock{}, closing: map[*sock]bool{}, pending: map[uint64]*op{},
		limits: h.limitsFor(ch.Desc), grants: ch.Desc.Grants,
	}
	ch.Data = app
	var caps uint32
	if h.resumer != nil {
		caps = ring.CapResume
		for _, r := range h.resumer.Resume(ch.Desc.ID, func(handle uint64) backend.Notify {
			s := &sock{h: h, app: app, handle: handle, ready: backend.Readable | backend.Writable}
			app.socks[handle] = s
			return s.notify
		}) {
			s := app.socks[r.Handle]
			if r.Call != 0 {
				if app.replays == nil {
					app.replays = map[uint64]*sock{}
				}
				s.call = r.Call
				app.replays[r.Call] = s
			}
			if r.Listener != nil {
				s.ln = r.Listener
				s.key = orphanKey{app: app.name, uid: app.uid, addr: s.localAddr(), flags: listenFlags(r.Options)}
				continue
			}
			s.conn = r.Conn
			s.stream, _ = r.Conn.(backend.StreamConn)
			if r.CloseAt != 0 && s.stream != nil {
				s.closeAfterReplays(r.CloseAt) // closed by the app, its sends replayed
			}
		}
		if n := len(app.socks); n > 0 {
			h.log.Info("app's connections resumed", "app", app.name, "channel", ch.Desc.ID, "connections", n)
		}
	}
	if ch.Region != nil {
		ch.Region.SetServerCaps(caps)
	}
	return nil
}

// owned names the app and handle that now hold s, and call, the
// user_data of the app's call that made it (0: leave what is recorded),
// in a backend that resumes connections; nothing otherwise.
func (h *Handler) owned(s *sock, call uint64) {
	if h.resumer == nil {
		return
	}
	if sc, ok := s.conn.(backend.StreamConn); ok {
		s.stream = sc
	}
	var o backend.Origin
	if s.ln != nil {
		o, _ = s.ln.(backend.Origin)
	} else {
		o, _ = s.conn.(backend.Origin)
	}
	if o == nil {
		if s.stream != nil {
			s.stream.SetOwner(s.app.ch.Desc.ID, s.handle)
		}
		return
	}
	if call != 0 {
		o.SetOrigin(call)
	}
	o.SetOwner(s.app.ch.Desc.ID, s.handle)
}

// replayed returns the socket resumed for o, an accept, connect or listen
// that the app replays after netproc's death (its user_data is the one
// recorded with the socket), and forgets it there; nil if there is none.
func (h *Handler) replayed(o *op) *sock {
	s := o.app.replays[o.sub.UserData]
	if s == nil {
		return nil
	}
	delete(o.app.replays, o.sub.UserData)
	s.call = 0
	if s.closed || o.app.socks[s.handle] != s {
		return nil
	}
	return s
}

// listenFlags is the proto.ListenFlag that asked for opts.
func listenFlags(opts backend.ListenOptions) proto.ListenFlag {
	var f proto.ListenFlag
	if opts.V6Only {
		f |= proto.ListenV6Only
	}
	if opts.ReusePort {
		f |= proto.ListenReusePort
	}
	return f
}

// Dropped implements serverkit.Handler: the app is gone. Its connections
// close now, each as close(2) would: with a FIN, or a RST if it holds
// bytes the app had not read; its listeners wait for its next incarnation
// (orphan).
func (h *Handler) Dropped(ch *serverkit.Channel) {
	app, ok := ch.Data.(*appState)
	if !ok {
		return
	}
	app.gone = true
	if h.loop != nil && h.loop.Stopping() {
		// netproc stops, its app does not: what outlives netproc (see
		// backend.Leaver) is left to the next incarnation, as a death
		// would leave it; the rest closes.
		for _, s := range app.socks {
			s.leave()
		}
		for s := range app.closing {
			s.leave()
		}
		clear(app.socks)
		clear(app.pending)
		app.provided, app.starved = nil, nil
		ch.Data = nil
		return
	}
	kept := 0
	for _, s := range app.socks {
		if s.ln != nil && h.opts.Linger > 0 {
			h.orphan(s)
			kept++
			continue
		}
		s.releaseReceived()
		s.close(syscall.ECANCELED)
	}
	for s := range app.closing {
		s.close(syscall.ECANCELED)
	}
	if len(app.socks) > 0 {
		h.log.Info("app gone: sockets closed", "app", app.name, "closed", len(app.socks)-kept, "listeners kept", kept)
	}
	clear(app.socks)
	clear(app.pending)
	app.provided, app.starved = nil, nil
	ch.Data = nil
}

// releaseReceived is for a connection whose app is gone: its waiting
// receive's stream offset shows the bytes the app had received, and those
// leave the receive buffer before the close. Without it a resuming
// connection (usertcp with resume) would still hold the bytes of the last
// request the app read, which stay until the app's next call shows it has
// them (backend.StreamConn), and a close with bytes unread resets the
// connection. So an idle keep-alive connection of a dead app ends with a
// FIN, as on the other backends, and its client retries; one holding a
// request the app had not read is still reset.
func (s *sock) releaseReceived() {
	if s.stream == nil {
		return
	}
	for _, o := range s.recvs {
		if o.sub.Flags&proto.FlagStream != 0 {
			s.stream.Release(o.sub.Offset)
			return
		}
	}
}

// EndRound implements serverkit.RoundEnder: a backend that batches over a
// round (backend.Flusher: the kernel backend's puts to the descriptor
// store) sends its batch before the round's completions are published, so
// that no app learns a handle whose socket would not outlive netproc.
func (h *Handler) EndRound() {
	if h.flusher != nil {
		h.flusher.Flush()
	}
}

// Submit implements serverkit.Handler: one valid entry of a socket
// operation (or OpCancel, or OpClose), from an app that may be hostile.
func (h *Handler) Submit(ch *serverkit.Channel, sub *proto.Submission) {
	app, ok := ch.Data.(*appState)
	if !ok {
		ch.CompleteErr(sub, syscall.EBADF, false)
		return
	}
	o := h.newOp(app, sub)
	if sub.Buf != proto.NoBuffer {
		b, err := ch.End.Loans.Take(sub.Buf, sub.Len)
		if err != nil {
			// A length past the buffer: take the buffer anyway, if it is
			// a valid one we do not hold, so that the error hands it back
			// (as the loop does for entries it refuses).
			_, err := ch.End.Loans.Take(sub.Buf, 0)
			h.freeOp(o)
			ch.CompleteErr(sub, syscall.EFAULT, err == nil)
			return
		}
		o.buf, o.held = b, true
	}
	if sub.Flags&proto.FlagSelect != 0 && (!sub.Op.Waits() || o.held || int(sub.Len) > ch.End.Loans.BufferSize()) {
		h.fail(o, syscall.EINVAL) // a buffer to choose for what cannot use one
		return
	}
	if sub.Op.Waits() && len(app.pending)+ch.QueuedWaits() >= app.limits.Pending {
		// The app's waits are all taken: waiting, or completed and not
		// yet reaped. The refusal is a call's completion, bounded by the
		// loop's backlog: an app that floods waits and never reaps
		// loses its channel, nothing else.
		h.overLimit(app, "pending", int64(app.limits.Pending))
		h.refuse(o, syscall.ENOBUFS)
		return
	}
	switch sub.Op {
	case proto.OpListen:
		h.listen(o)
	case proto.OpAccept:
		h.accept(o)
	case proto.OpConnect:
		h.connect(o)
	case proto.OpSend:
		h.send(o)
	case proto.OpRecv:
		h.recv(o)
	case proto.OpShutdown:
		h.shutdown(o)
	case proto.OpClose:
		h.closeOp(o)
	case proto.OpSetsockopt:
		h.setsockopt(o)
	case proto.OpGetsockname, proto.OpGetpeername:
		h.sockname(o)
	case proto.OpCancel:
		h.cancel(o)
	case proto.OpProvide:
		h.provide(o)
	default:
		h.fail(o, syscall.EOPNOTSUPP)
	}
}

// newHandle draws an unused handle for app: 48 random bits under the
// channel's epoch, so that a handle of an earlier netproc incarnation is
// recognisable (see lookup).
func (h *Handler) newHandle(app *appState) uint64 {
	for {
		r := h.rng.Uint64() & randMask
		hd := app.epoch<<randBits | r
		if r != 0 && app.socks[hd] == nil {
			return hd
		}
	}
}

// env is what the loop offers the backend.
type env struct{ h *Handler }

func (e env) AddFD(fd int, events uint32, cb func(uint32)) error {
	return e.h.loop.AddFD(fd, events, cb)
}
func (e env) ModFD(fd int, events uint32) error { return e.h.loop.ModFD(fd, events) }
func (e env) DelFD(fd int) error                { return e.h.loop.DelFD(fd) }
func (e env) Post(f func())                     { e.h.loop.Post(f) }
func (e env) Logger() *slog.Logger              { return e.h.log }
func (e env) AfterFunc(d time.Duration, f func()) backend.Timer {
	return e.h.timers.AfterFunc(d, f)
}

// Usage implements serverkit.UsageReporter: every app's sockets and
// memory against its limits, for status. Loop only.
func (h *Handler) Usage() []proto.ChannelUsage {
	var out []proto.ChannelUsage
	for _, ch := range h.loop.Channels() {
		app, ok := ch.Data.(*appState)
		if !ok {
			continue
		}
		out = append(out, proto.ChannelUsage{
			ID: ch.Desc.ID, Sockets: app.sockets(), SocketLimit: app.limits.Sockets,
			Memory: h.memory(app), MemoryLimit: app.limits.Memory, Waiting: len(app.pending),
		})
	}
	return out
}

// Sockets counts the sockets the app called name holds. Loop only (see
// serverkit.Loop.Post).
func (h *Handler) Sockets(name string) int {
	n := 0
	for _, app := range h.apps(name) {
		n += app.sockets()
	}
	return n
}

// Waiting counts the operations the app called name has waiting, and the
// buffers they hold. Loop only.
func (h *Handler) Waiting(name string) (ops, bufs int) {
	for _, app := range h.apps(name) {
		ops += len(app.pending)
		bufs += app.bufs
	}
	return ops, bufs
}

// Kept counts the listeners kept for apps that went away. Loop only.
func (h *Handler) Kept() int {
	n := 0
	for _, socks := range h.orphans {
		n += len(socks)
	}
	return n
}

func (h *Handler) apps(name string) []*appState {
	var out []*appState
	for _, ch := range h.loop.Channels() {
		if app, ok := ch.Data.(*appState); ok && app.name == name {
			out = append(out, app)
		}
	}
	return out
}
