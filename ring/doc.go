// Package ring is saturn's transport between processes: shared-memory
// regions holding a pair of lock-free single-producer single-consumer rings
// and a pool of data buffers, in the manner of io_uring's SQ and CQ.
//
// # How an entry travels
//
// One region is one channel between one app and one server. The supervisor
// creates it (Create: a memfd sealed against resizing, with a validated
// header) and hands its descriptor to both processes, which map it (Open).
// The app opens its end (Region.App), the server its end (Region.Server).
//
//	app                                         server
//	buf := Pool.Alloc(); fill Pool.Bytes(buf)
//	Pool.Lend(buf)
//	Submit.Reserve(1); encode entry into Slot(0)
//	Submit.Publish(1)  ── submission ring ──▶    Submit.Peek / Slot: decode once
//	                                             Submit.Release
//	                                             Loans.Take(buf, len): checked
//	                                             ... do the work ...
//	                                             Loans.Return(buf)
//	Complete.Wait / Peek: decode  ◀── completion ring ──  Complete.Reserve/Slot/Publish
//	Pool.Reclaim(buf, n): checked
//	Pool.Free(buf)
//
// Entries are fixed-size records whose layout package proto defines; this
// package moves bytes. Everything is batched: Reserve and Peek take counts,
// and one Publish or Release moves a whole batch with one shared store.
//
// # Who owns what
//
// Each ring has one producer and one consumer, each of which keeps its own
// position privately and trusts only that copy. A slot belongs to the
// producer until Publish and to the consumer from Peek until Release. A data
// buffer belongs to exactly one side at a time (see Pool and Loans): it goes
// to the server with the entry that names it and comes back with that
// entry's completion.
//
// # Bad entries and lying peers
//
// The peer is another process and may be buggy or hostile; the shared
// memory it can write is never trusted. A header that lies fails Open with
// an error naming the field. Counters that contradict each other kill the
// ring with ErrCorrupt (the channel must then be torn down). A buffer index
// out of range, a length past a buffer, a double loan or a double return is
// refused with an error and changes nothing. Servers decode each entry once
// into private memory, so a peer rewriting a slot cannot change an entry
// after it was checked, and answer a bad entry with an error completion
// (package proto says how).
//
// # Waking
//
// A consumer with nothing to read spins for a bounded while (WaitPolicy),
// then sets the ring's wake flag and sleeps on a Doorbell. A producer rings
// only when the flag is set, so an idle channel costs no CPU and a busy one
// makes no wake-up syscalls.
//
// Ringing must never block a server or the supervisor, whatever the app
// does (see Bells). The app's doorbell, which they ring, is a futex on a
// word of the region: a wake never waits. The server's doorbell, which the
// app rings, is a futex word too, or, for a server that sleeps in epoll with
// its sockets, an eventfd (EventDoorbell) that nobody ever reads: the server
// watches it edge-triggered, so an app that makes it blocking, saturates it
// or empties it loses only its own wake-ups.
//
// # Server restarts
//
// The supervisor keeps every region while the instance lives, so a restarted
// server maps the same rings. Region.Server starts a new incarnation: it
// bumps the epoch in the header and records the submission position it
// resumes from. An app that sees the epoch change drains the completion
// ring, then resubmits every request it is still waiting for whose entry lies
// before the resume position: the dead incarnation consumed it and never
// answered. Entries from the resume position on are served by the new
// incarnation. Because servers release slots before acting (see
// Region.Server), no entry is carried out by two incarnations unless it is
// resubmitted, which is why only idempotent requests may be replayed.
package ring
