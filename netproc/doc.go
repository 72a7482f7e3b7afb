// Package netproc is saturn's network server: it owns every socket and
// serves the socket calls of all attached apps over their rings.
//
// netproc is serverkit's event loop with this package's Handler: one
// goroutine serves every app's channel and every socket, from one epoll
// set, taking at most serverkit.PerRound entries from each channel per
// round so that no app starves another. The sockets themselves come from a
// backend (package netproc/backend): the host's kernel sockets (package
// netproc/kernel) or saturn's own TCP/IP stack over TUN.
//
// # What the handler owns
//
//   - Handles. Each app has its own table; a handle is 48 random bits and
//     the channel's epoch, so an app can name only its own sockets and
//     cannot guess one, and a handle that an earlier netproc incarnation
//     gave out is answered with ECONNRESET (its socket died with it).
//   - Waiting operations. An operation that cannot finish at once (a recv
//     with no data, a send into a full socket, an accept with no
//     connection, a connect) waits in its socket's queue, holding the
//     buffer the app lent, until the backend reports readiness, the app
//     cancels it (OpCancel), closes the socket, or goes away. Each socket's
//     queues are served in order, so sends go out in submission order.
//   - Limits per app (Limits): sockets (EMFILE), operations waiting
//     (ENOBUFS), buffers held by waiting operations (ENOBUFS), socket buffer
//     sizes (ENOBUFS).
//   - Listeners across app restarts. When an app's channel is dropped (it
//     exited or was killed), its connections are closed at once, but each
//     listener on a fixed port is kept open, its backlog still filling, for
//     Options.Linger. An app of the same name that listens on the same
//     address within that time adopts it, and accepts what queued.
//
// Every submission is untrusted: a bad handle, buffer, length, address,
// flag or option gets an error completion, and nothing an app sends can
// reach another app's sockets or stop netproc serving the others.
package netproc
