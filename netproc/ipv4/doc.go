// Package ipv4 is the IPv4 and ICMPv4 layer of saturn's user-level stack:
// plain data and pure functions, with no I/O, no clock and no goroutines.
//
// An [Endpoint] is the IPv4 side of one interface with one address. The
// netproc shell owns it from a single goroutine and drives it so:
//
//  1. For every packet read from the link, call Input(pkt, now). The Result
//     says what to do: drop it (the reason is counted in Stats), deliver the
//     datagram's payload to the transport named by its protocol, transmit a
//     reply (an ICMP echo reply or error), or nothing (a fragment was kept
//     for reassembly).
//  2. Whenever NextDeadline reports a time that has come, call Expire(now,
//     send): timed-out reassemblies are discarded and, for those whose first
//     fragment arrived, an ICMP time-exceeded message is passed to send
//     (RFC 1122, section 3.3.2).
//  3. To send, write a header with WriteHeader in front of the transport
//     segment; when a datagram is larger than the link MTU and may be
//     fragmented, split it with Fragment.
//
// Buffer ownership: Input never keeps pkt. A delivered datagram aliases pkt
// unless Result.Reassembled is set, in which case it is a new buffer that the
// caller now owns. A reply aliases pkt (an echo reply is built in place), a
// reassembled buffer, or the endpoint's scratch buffer; it is valid until the
// next call to Input or Expire, so transmit or copy it first.
//
// Fragments are reassembled (RFC 791, section 3.2, with RFC 815's hole
// list), within a memory bound and a timeout; a fragment that overlaps data
// already received discards the whole datagram, in the spirit of RFC 5722,
// while an exact duplicate is ignored. Setting Config.DropFragments drops
// every fragment with a counter instead.
package ipv4
