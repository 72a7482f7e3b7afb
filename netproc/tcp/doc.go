// Package tcp is saturn's TCP core: a purely functional implementation of
// RFC 9293 and the extensions real peers expect (RFC 7323 window scaling,
// timestamps and PAWS; RFC 2018 SACK and RFC 2883 D-SACK; RFC 6675 loss
// recovery, or RFC 8985 RACK-TLP with RFC 6937 PRR; RFC 6298 RTO; RFC 5681
// and RFC 6582 congestion control and NewReno; RFC 9438 CUBIC; BBR v1 with
// pacing (draft-cardwell-iccrg-bbr-congestion-control); RFC 5961
// challenge ACKs; RFC 6528 ISNs; SYN cookies).
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
// parses wire bytes), an ICMP "fragmentation needed" about one of the
// connection's segments, a timer expiry, or an application call: connect,
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
//     closed port. An ICMP "fragmentation needed" (RFC 1191) goes to the
//     connection its quoted IP and TCP headers name, as InPacketTooBig,
//     once the shell has checked that they name one (pmtu.go). A timer
//     expiry, or an application request, names its connection.
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
//     fires. Firing late is fine; firing early is harmless. With BBR the
//     deadline is also when pacing lets the next segment go, often less
//     than a millisecond away: a late timer only slows the sender.
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
// # The order of the checks on an arriving segment
//
// No state of a connection (TS.Recent, the keep-alive timer, RTT samples,
// the window, the SACK scoreboard and RACK's log, the owed ACK) changes
// because of a segment that a later check drops. In a synchronized state
// (process.go, synchronizedArrived), in this order:
//
//  1. SYN: answered with a challenge ACK whatever its sequence number
//     (RFC 5961, 4.2), and dropped; in SYN-RECEIVED a retransmitted SYN
//     gets the SYN-ACK again.
//  2. Timestamps negotiated but absent (not a RST): dropped (RFC 7323, 3.2).
//  3. PAWS (RFC 7323, 5.3, R1): a TSval older than TS.Recent drops the
//     segment with an ACK, unless TS.Recent is older than 24 days (5.5);
//     a stale TS.Recent is only noted here.
//  4. The sequence test (RFC 9293, 3.10.7.4, first check, widened as
//     described below): an unacceptable segment is dropped with an ACK
//     (rate-limited when it carries no data), which reports an old
//     duplicate in a D-SACK block (RFC 2883, 4.1). Data is then trimmed
//     to the window, locally.
//  5. RST (RFC 5961, 3.2): exactly at RCV.NXT it resets, elsewhere in the
//     window it gets a challenge ACK.
//  6. No ACK bit: dropped.
//  7. The ACK (RFC 9293 fifth check; RFC 5961, 5.2): beyond SND.NXT,
//     dropped with an ACK; older than SND.UNA by more than the largest
//     window the peer offered, dropped with a challenge ACK; in
//     SYN-RECEIVED one that does not acknowledge our SYN gets a RST.
//  8. Only now is the segment acceptable, and it changes the connection:
//     TS.Recent takes its TSval if it lies at or before Last.ACK.sent
//     (RFC 7323, 4.3, R3; also replacing a stale one, as Linux's
//     tcp_replace_ts_recent does after tcp_ack's checks); an ACK owed for
//     trimmed or zero-window data is noted; the keep-alive timer restarts.
//  9. The ACK's effects: SACK and D-SACK blocks (RACK's log and the
//     scoreboard), SND.UNA, the RTT sample (RFC 7323, 4; Karn), congestion
//     control, the window update guarded by WL1/WL2, RACK's loss detection
//     and PRR, FIN-WAIT/CLOSING/LAST-ACK transitions.
//  10. Data and FIN (RFC 9293, seventh and eighth checks), with a D-SACK
//     for any part already received; then output.
//
// RFC 7323's Appendix D updates TS.Recent right after the sequence test;
// Linux, and saturn, wait for the ACK check too, so that a forged or stale
// segment cannot set the timestamp we echo (testdata/arrival_order.txt).
//
// # Path MTU
//
// The send MSS the handshake agreed is lowered when the path carries less
// (pmtu.go), and raised again by probing. In this order: an ICMP
// "fragmentation needed" whose quoted sequence number is in flight
// (RFC 5927) and whose MTU is sane lowers it at once (RFC 1191) and what
// is in flight is resent in segments of the new size, without a congestion
// response; where no ICMP comes, two timeouts in a row of a segment that a
// smaller MSS would split make a black hole (RFC 4821), and the MSS falls
// to 1024, then by halves as far as it takes to split it, never below 536
// (and again on each further timeout in a row); after either, once the loss is
// repaired, probes of new data search upward by halving, and a lost probe
// is resent without a congestion response (RFC 8899, 4.4); the search
// rests ten minutes once it has converged, then starts again from the
// handshake's MSS. Probing is on unless Config.DisableMTUProbing: on a
// clean path it does nothing (testdata/pmtu_icmp.txt,
// testdata/pmtu_blackhole.txt).
//
// # Loss recovery
//
// With Config.FastLossRecovery (and SACK), loss detection is RACK-TLP
// (RFC 8985, rack.go): a transmission log of the outstanding sequence
// space with send times, a reordering window of min_RTT/4 that D-SACKs
// widen (and that falls to zero in recovery until reordering is seen),
// the reordering timer, and tail loss probes. Recovery sends what RACK
// marked lost at the pace of Proportional Rate Reduction (RFC 6937, with
// PRR-SSRB), and, like Linux, lets a segment go while pipe is below cwnd
// (the window counted in segments). Two deliberate departures, measured
// against a Linux receiver over a lossy link (docs/benchmarks.md): loss
// probes also run during a fast recovery, up to three with doubling waits
// before the retransmission timer, and the probe is always the last
// segment again (which draws an immediate ACK) rather than new data (which
// may wait for a delayed ACK). After a timeout RACK keeps the SACK marks
// unless the timeout repeats. A reduction found spurious is undone
// (undo.go): a fast recovery whose retransmissions all come back as
// D-SACKs (RFC 3708), a timeout whose first new ACK echoes a timestamp
// older than the retransmission (Eifel, RFC 3522, with RFC 4015's
// response), and, when timestamps cannot tell, a timeout that F-RTO finds
// spurious (RFC 5682, frto.go: the SACK-enhanced version of 3.1 with
// SACK, the basic one of 2.1 without, so also beside NewReno). Without
// FastLossRecovery, loss recovery is RFC 6675 (SACK) or RFC 6582
// (NewReno), with no probes and no undo.
//
// # Application-limited senders
//
// With Config.CwndValidation (cwv.go), cwnd follows RFC 7661: it grows
// only while the sender uses at least half of it (pipeACK, the bytes
// acknowledged per round trip), is kept across idle periods rather than
// restarted from the initial window, is halved after every five minutes
// unused, and a loss meanwhile reduces the window in use. Without it,
// cwnd grows on every ACK and restarts after an idle RTO (RFC 5681,
// 4.1).
//
// # BBR
//
// With Config.Congestion = CCBBR (bbr.go) the congestion control is BBR v1
// as draft-cardwell-iccrg-bbr-congestion-control-00 describes it, the
// version Linux's tcp_bbr.c ships: a model of the path (the bottleneck
// bandwidth, a windowed max over ten round trips of delivery-rate samples,
// and the min RTT over ten seconds), the states Startup, Drain, ProbeBW
// (the eight-phase gain cycle) and ProbeRTT, a pacing rate of a gain times
// the bandwidth (less 1%), and cwnd of a gain times the BDP plus three
// segments, at least four. A loss does not move the model; a recovery
// keeps packet conservation for its first round trip and restores the
// window it started with when it ends. The delivery rate is sampled as
// draft-cheng-iccrg-delivery-rate-estimation describes, but the
// per-packet state is kept for at most six segments in flight at a time
// (spaced by min_rtt/6, new data only), not for every segment, so that
// the connection keeps its fixed size; it needs no RACK, and works with
// or without SACK. BBR paces everything it sends: a segment may run at
// most paceQuantum (1 ms) ahead of the schedule, and when pacing holds
// data back the connection's deadline (a timer among the others) is when
// it may go. CUBIC and Reno do not pace. Like everything in the core, the
// model is integers (bytes per second, microseconds, gains in 256ths), so
// that runs are the same everywhere (testdata/bbr.txt).
//
// Not implemented of BBR: v2 and v3 (the bounds on inflight from the loss
// rate and ECN, the shorter ProbeBW cycles, probing up in steps); v1's
// long-term bandwidth sampling of policers (lt_bw in Linux, not in the
// draft); the random start of the gain cycle (drawn from the round count
// and the ISS instead: the core draws no random numbers); the reduction
// of cwnd by the packets lost on each ACK during a recovery (Linux's
// tcp_bbr.c subtracts them; saturn's recovery only conserves); any
// reaction to ECN (an echo saves the window as a loss would, and the next
// ACK sets it from the model again); the ACK aggregation allowance of
// later versions. Startup's overshoot into a shallow queue is v1's: with
// a queue shorter than the BDP it loses much of a round trip's data
// before the pipe is found full.
//
// # Choices and what is not implemented
//
// Zero-window probes are Linux's: a segment at SND.UNA-1 without data,
// which every receiver answers with its window. RFC 6675's NextSeg() uses
// rules 1 and 2 only (no rescue retransmission); after a timeout the SACK
// scoreboard is cleared (RFC 2018, 8) unless RACK is on. SYN cookies follow
// Linux's layout, with the peer's ISN mixed into the second hash (see
// cookie.go). Like every SYN-cookie scheme, a listener using cookies can be
// fooled by a late duplicate of the peer's first segment after the
// handshake (same SEQ and ACK as the cookie ACK) arriving after the
// connection ended: it raises a connection the peer no longer knows, which
// then times out or is reset. While cookies are in use, an ACK that fails
// the check is dropped rather than reset, so a peer whose first data
// segment was lost recovers by retransmitting it. A segment that covers the
// whole receive window is acceptable (RFC 9293's table would refuse it;
// Linux takes it). A RST never ends TIME-WAIT (RFC 1337). Urgent data is
// delivered inline as ordinary data (RFC 6093). Data carried in a SYN is
// discarded and must be resent (no TCP Fast Open). CUBIC is computed in
// integers (cubic.go), so that runs are the same on every architecture.
//
// Not implemented: PRR, and the undo of fast recoveries, without RACK
// (RFC 6675 and NewReno recovery set cwnd to ssthresh at once, and only a
// timeout can be undone there, by F-RTO with FastLossRecovery); F-RTO on
// a timeout with no new data left to send (RFC 5682 leaves those to
// conventional recovery, and so does saturn: with timestamps the Eifel
// test still judges them) or during a fast recovery; RFC 7661's pacing of
// a burst from a kept window (4.4.2: the whole window may go at once after
// an idle period); TCP-AO; a path MTU kept between connections (each
// learns it anew: the shell keeps no route cache), and the reaction to an
// ICMP "fragmentation needed" in SYN-SENT or SYN-RECEIVED (handshake
// segments are small). ECN (RFC 3168, ecn.go) is in the core, off by
// default (Config.ECN); the shell must carry the CE and ECT bits between
// the IP header and Segment.
package tcp
