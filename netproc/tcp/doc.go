// Package tcp is saturn's TCP core: a purely functional implementation of
// RFC 9293 and the extensions real peers expect (RFC 7323 window scaling,
// timestamps and PAWS; RFC 2018 SACK with RFC 6675 loss recovery; RFC 6298
// RTO; RFC 5681 and RFC 6582 congestion control and NewReno; RFC 9438
// CUBIC; RFC 5961 challenge ACKs; RFC 6528 ISNs; SYN cookies).
//
// In the manner of etcd's raft, the core does no I/O, reads no clock,
// starts no goroutine and draws no random number. A connection (Conn) and a
// listening socket (Listener) are plain data of fixed size, with no
// pointers, slices, maps or interfaces inside, so that they can live in a
// shared-memory region and outlive the process that steps them. Everything
// happens through one step function:
//
//	func (c *Conn) Step(in Input, now Time, mem Mem, out *Output) error
//	func (l *Listener) Step(in *ListenInput, now Time, child *Conn, mem Mem, out *Output) ListenResult
//
// An Input is a received segment (parsed by package header; the core never
// parses wire bytes), a timer expiry, or an application call: connect,
// send, read or consume, shutdown, close, abort, set an option. Step
// appends its effects to an Output: segments to transmit, wake-ups for the
// application, and the connection's single earliest deadline.
//
// # Memory
//
// The connection's byte storage is lent by the caller on every call, in
// Mem: a send buffer and a receive buffer, each used as a circular buffer,
// whose sizes are fixed at open. Out-of-order data is written straight to
// its place in the receive buffer and described by a fixed table of ranges,
// so the out-of-order queue needs no memory beyond the receive buffer. The
// segments in Output alias the send buffer: their payloads are valid until
// the connection's next InSend.
//
// # The caller's duties, in order
//
// The caller (netproc's event loop, the "shell") owns the connections, the
// buffers, the clock, the timers and the network. For every event:
//
//  1. Find the state. A received segment is looked up by its tuple; if no
//     connection holds it, it goes to the listener of its local port
//     (Listener.Step), and if there is none, ResetFor gives the answer for a
//     closed port. A timer expiry, or an application request, names its
//     connection.
//  2. Call Step with the input, the current time (monotonic, above zero),
//     the connection's buffers and the stack's Stats. Step for one
//     connection must not run concurrently with anything else touching that
//     connection or its buffers; different connections are independent.
//  3. Transmit out.Segments in order, adding the addresses and ports of the
//     connection, before the next InSend on that connection (payloads alias
//     the send buffer). The core assumes nothing about delivery: losing a
//     segment here is the same as losing it on the wire. Several Steps may
//     share one Output (call Output.Reset between batches).
//  4. Arm the connection's timer at out.Timer (zero: disarm), replacing
//     the previous deadline, and Step the connection with InTimer when it
//     fires. Firing late is fine; firing early is harmless.
//  5. Deliver out.Wake to the application: WakeConnected, WakeReadable
//     (Readable bytes are ready: read them with InRead, or through
//     ReadableViews followed by InConsume), WakeWritable (SendSpace grew),
//     WakePeerClosed (EOF after the readable bytes), WakeError (out.Err),
//     WakeClosed (the connection takes no more input).
//  6. After a listener returns ListenNewConn, insert the child under its
//     tuple; move it to the accept queue when it wakes with WakeConnected,
//     or at once if it is already past SYN-RECEIVED (a cookie). Count the
//     listener's SYN-RECEIVED children for ListenInput.HalfOpen.
//  7. If out.Reuse is set (a SYN for a tuple in TIME-WAIT), free the old
//     connection and give the same segment to the listener.
//  8. Free a connection once Done reports true: it is CLOSED and the
//     application has closed or aborted it. A connection the application
//     closed lives on through FIN-WAIT and TIME-WAIT with no one watching.
//  9. After a restart, call Check on every connection found in shared
//     memory and drop those that fail; then Step each with InTimer, which
//     runs whatever fell due meanwhile and reports the deadline to arm.
//
// The shell also chooses the secret behind ISNs and cookies (Secret) and
// computes an active open's ISS and timestamp offset with ISN and TSOffset.
//
// # Choices and what is not implemented
//
// Zero-window probes are Linux's: a segment at SND.UNA-1 without data,
// which every receiver answers with its window. RFC 6675's NextSeg() uses
// rules 1 and 2 only (no rescue retransmission); after a timeout the SACK
// scoreboard is cleared (RFC 2018, 8). SYN cookies follow Linux's layout,
// with the peer's ISN mixed into the second hash (see cookie.go). Like every
// SYN-cookie scheme, a listener using cookies can be fooled by a late
// duplicate of the peer's first segment after the handshake (same SEQ and
// ACK as the cookie ACK) arriving after the connection ended: it raises a
// connection the peer no longer knows, which then times out or is reset.
// While cookies are in use, an ACK that fails the check is dropped rather
// than reset, so a peer whose first data segment was lost recovers by
// retransmitting it. A segment that covers the whole receive window is
// acceptable (RFC 9293's table would refuse it; Linux takes it). A RST
// never ends TIME-WAIT (RFC 1337). Urgent data is delivered inline as
// ordinary data (RFC 6093). Data carried in a SYN is discarded and must be
// resent (no TCP Fast Open). Not implemented: ECN, D-SACK (RFC 2883),
// RACK-TLP (RFC 8985), PRR (RFC 6937), F-RTO and Eifel spurious-timeout
// detection, congestion window validation (RFC 7661; only the restart
// after idle of RFC 5681, 4.1), path-MTU discovery, TCP-AO.
package tcp
