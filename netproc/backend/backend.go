// Package backend is the boundary between netproc's event loop and a socket
// implementation: the host's own TCP through kernel sockets (package
// netproc/kernel), or saturn's user-level stack over TUN. netproc's handler
// owns everything app-facing (handles, per-app limits, the queues of
// operations waiting on each socket, cancellation, timeouts, listeners
// kept across app restarts); a backend only moves bytes and reports
// readiness, in the manner of non-blocking sockets under epoll.
//
// # The loop
//
// Everything runs on netproc's one loop goroutine: every method of every
// type here is called on it, and a backend calls Notify and the callbacks
// it registers through Env on it too. Nothing here needs a lock.
//
// # Readiness
//
// Operations never block: one that cannot make progress returns
// syscall.EAGAIN. A backend reports, through the Notify given when a
// socket was made, that an operation which returned EAGAIN may now
// succeed (data or end of stream arrived, send room freed, a connection
// queued, a connect finished, an error is pending). Notify is an edge: the
// handler then retries what waits on that socket until it sees EAGAIN
// again, and otherwise does not try, so a backend must notify after every
// such change, and may notify spuriously. It may call Notify from inside
// its own methods; the handler copes with the re-entry.
//
// A short Read or Write counts as EAGAIN for what follows it: it tells the
// handler that the socket had no more data (or room) at that moment, and
// the handler waits for the next notification before trying again. So a
// backend must not return short while it has more to give, except at the
// end of the stream: once the peer has shut down its side, it reports
// Hangup, after which the handler keeps trying reads, which drain the data
// and then return 0.
//
// Errors are syscall.Errno values, which travel to the app unchanged as the
// completion's result: ECONNRESET, EPIPE, ECONNREFUSED, ETIMEDOUT, ...
//
// # Buffer ownership
//
// The byte slices passed to Read and Write are lent for the duration of
// the call only. They lie in a channel's shared memory, which the app can
// rewrite at any moment: Write must copy what it sends out of b before
// returning and never read it twice expecting the same bytes; Read may only
// write into b. Neither may keep b, or any slice of it, after returning.
//
// # Restarts
//
// With the kernel backend, sockets die with the netproc process: the next
// incarnation starts with none, and answers the handles of the old one with
// ECONNRESET. A backend whose connections outlive the process (state in
// the server's persistent memory: usertcp with resume on) also offers
// Resumer, and its connections StreamConn. The handler then:
//
//   - names each socket's owner once the app holds it (SetOwner, after an
//     accept, at a listen, and at a connect as soon as it begins), before
//     the completion that gives the handle is posted, so that the record
//     carries it, and, for a socket that is an Origin, the app's call
//     that made it (SetOrigin);
//   - when a channel comes (Added, which every channel sees again after a
//     restart), asks Resume for the connections and listeners the
//     channel's earlier incarnation owned and enters them in the app's
//     table under their old handles; a replayed accept, connect or listen
//     whose socket the dead incarnation made gets that socket; the backend
//     resets what nobody claims within its grace;
//   - serves sends, receives and closes that carry proto.FlagStream with
//     the stream calls of StreamConn, so that an entry the dead
//     incarnation took and the app replays is carried out exactly once.
package backend

import (
	"log/slog"
	"net/netip"
	"time"

	"saturn/proto"
)

// Events is a set of readiness conditions.
type Events uint8

const (
	// Readable: Read or Accept may succeed, or report end of stream.
	Readable Events = 1 << iota
	// Writable: Write may succeed, or a connect finished.
	Writable
	// Failed: an error is pending; every operation will report it.
	Failed
	// Hangup: the peer has shut down its side (or the connection is
	// gone); reads end with the end of the stream. It is sticky.
	Hangup
)

// Notify tells the handler that a socket's readiness may have changed.
type Notify func(Events)

// Env is what the loop offers a backend.
type Env interface {
	// AddFD watches fd (epoll events, EPOLLET allowed) and calls cb with
	// what happened; ModFD and DelFD change and end that.
	AddFD(fd int, events uint32, cb func(events uint32)) error
	ModFD(fd int, events uint32) error
	DelFD(fd int) error
	// AfterFunc runs f on the loop once d has passed, unless stopped.
	AfterFunc(d time.Duration, f func()) Timer
	// Post runs f on the loop soon, after the work at hand; safe from any
	// goroutine.
	Post(f func())
	Logger() *slog.Logger
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop cancels the timer; false if it already ran or was stopped.
	Stop() bool
}

// Backend is a socket implementation.
type Backend interface {
	// Name is what status shows: "kernel" or "usertcp".
	Name() string
	// Start is called once, before any other method.
	Start(env Env) error
	// Info adds to what status shows of netproc (a usertcp backend: its
	// netns and address); nil for nothing. It is called after Start, from
	// any goroutine: it must not touch the loop's state.
	Info() map[string]string
	// Listen opens a listening socket on addr. An unspecified IPv6 address
	// without V6Only listens on IPv4 too.
	Listen(addr netip.AddrPort, opts ListenOptions, notify Notify) (Listener, error)
	// Connect starts a connection to addr and returns at once; notify
	// reports Writable (or Failed) when ConnectResult has the outcome.
	Connect(addr netip.AddrPort, notify Notify) (Conn, error)
	// Close releases everything the backend holds (sockets are closed by
	// the handler first).
	Close() error
}

// ListenOptions qualify Listen.
type ListenOptions struct {
	Backlog   int  // 0: the backend's default
	V6Only    bool // see proto.ListenV6Only
	ReusePort bool // see proto.ListenReusePort
}

// Socket is what listeners and connections share.
type Socket interface {
	// LocalAddr is the bound address (with the port chosen, for port 0).
	LocalAddr() (netip.AddrPort, error)
	// SetOption sets one of proto's socket options; values are checked by
	// the handler against its limits, not by the backend.
	SetOption(opt proto.SockOpt, value int64) error
	// Close releases the socket at once; nothing is notified afterwards.
	Close() error
}

// Listener is a listening socket.
type Listener interface {
	Socket
	// Accept takes a queued connection, which reports to notify, and its
	// peer's address; EAGAIN when none is queued.
	Accept(notify Notify) (Conn, netip.AddrPort, error)
}

// Conn is a connected (or connecting) stream socket.
type Conn interface {
	Socket
	// ConnectResult is the outcome of the Connect that made the socket:
	// nil once connected, EINPROGRESS while it is not known yet, else the
	// error. Call it after a notification.
	ConnectResult() error
	// Read receives into b (see the package doc on ownership): the count,
	// 0 with nil at end of stream, or EAGAIN.
	Read(b []byte) (int, error)
	// Write sends from b: the count (possibly short), or EAGAIN.
	Write(b []byte) (int, error)
	// Shutdown shuts down reading, writing or both (proto.ShutRead, ...).
	Shutdown(how int) error
	// PeerAddr is the connected peer's address.
	PeerAddr() (netip.AddrPort, error)
}

// Costs is what a backend's sockets cost, as netproc counts them against
// an app's memory limit: a socket's fixed cost in bytes, whatever it
// buffers (its record, the backend's and the handler's bookkeeping, and
// for the kernel's sockets the kernel's own structures). It is a
// measured figure (docs/benchmarks.md, "connections"), not a reading.
type Costs struct {
	Socket int
}

// Coster is a Backend that states its sockets' cost.
type Coster interface {
	Costs() Costs
}

// Capacity is a Backend that can say how many sockets it can hold in
// all, every app's together (the kernel backend: its descriptors; usertcp:
// its connection table). netproc shares them out among the apps so that
// none can take the others' (see netproc's Limits).
type Capacity interface {
	Capacity() int
}

// Buffered is a Conn that can say how many bytes it holds for its app in
// memory that the backend owns: received and not yet read, queued and not
// yet acknowledged. The kernel's sockets buffer in the kernel, and do not
// count here.
type Buffered interface {
	Buffered() int
}

// Resumer is a Backend whose connections survive netproc's death.
type Resumer interface {
	// Resuming reports whether connections survive (a config may turn it
	// off): the handler offers the stream calls and publishes
	// ring.CapResume only then.
	Resuming() bool
	// Resume hands over the connections that an earlier incarnation of
	// netproc left owned by channel owner (its proto.ChannelDesc.ID, which
	// the supervisor hands over again), each under the handle the app
	// knew. notify makes the Notify of each, as Accept's would be. It
	// gives each connection once; those not claimed within the backend's
	// grace are reset.
	Resume(owner uint64, notify func(handle uint64) Notify) []Resumed
}

// Resumed is a socket handed back by Resume: a connection (Conn) or a
// listener (Listener, with the options it was made with), exactly one of
// the two. CloseAt is what the app's close of a connection promised
// (StreamConn.Closing), 0 if it had not closed it: the handler closes it
// once its stream reaches CloseAt, as it would have. Call is the user_data
// of the app's call that made the socket (Origin.SetOrigin), 0 if none was
// recorded: an accept, connect or listen the dead incarnation took and
// that the app replays under the same user_data is answered with this
// socket rather than a new one (the answer may have died with netproc). A
// connection whose connect had not finished still connects: its
// ConnectResult says EINPROGRESS until it does.
type Resumed struct {
	Handle   uint64
	Conn     Conn
	Listener Listener
	Options  ListenOptions
	CloseAt  uint64
	Call     uint64
}

// Origin is a socket of a Resumer that records, in memory that outlives
// the process, who holds it and the app's call that made it, as soon as
// the handler gives it a handle: a listener at its listen, a connection
// at its connect (before it finishes) or its accept (before the
// completion is posted). See Resumed.
type Origin interface {
	SetOwner(owner, handle uint64)
	SetOrigin(call uint64)
}

// StreamConn is a Conn of a Resumer, addressed by stream offsets. Offsets
// count bytes from the start of the connection (the app's, in 64 bits; a
// backend may keep them modulo 2^32 and extend them against the app's).
type StreamConn interface {
	Conn
	// SetOwner records the app channel and handle that hold the
	// connection, in memory that outlives the process.
	SetOwner(owner, handle uint64)
	// Sent is how many bytes Write has taken so far, extended against
	// near (the offset the app is about to send from).
	Sent(near uint64) uint64
	// ReadAt is Read for an app that has received off bytes: it first
	// releases what lies before off (the app has it; the bytes may leave
	// the socket later, in a batch, but never count as unread again),
	// then copies the bytes from off on into b without consuming them, so
	// that a replayed receive finds them again. Its results are Read's; EINVAL for an off
	// outside the bytes received and not yet released.
	ReadAt(b []byte, off uint64) (int, error)
	// Release releases the bytes before off, as ReadAt does, without
	// reading: before a Close, so that bytes the app has are not taken
	// for unread data.
	Release(off uint64)
	// Closing records, in memory that outlives the process, that the app
	// closed the connection once its stream reaches end (see Resumed).
	Closing(end uint64)
}

// Flusher is a Backend with work it batches over a loop round (the kernel
// backend's puts to the supervisor's descriptor store): the handler calls
// Flush at the end of every round, after the round's operations and
// before its completions are published.
type Flusher interface {
	Flush()
}

// Leaver is a Socket that netproc can let go of without closing it: when
// netproc stops (an upgrade, a restart), a socket that outlives the
// process is left to the next incarnation rather than closed.
type Leaver interface {
	Leave()
}
