package ipv4

import (
	"time"

	"saturn/netproc/header"
)

// icmpLimiter is a token bucket for the ICMP errors we send (RFC 1812,
// 4.3.2.8). Time comes from the caller.
type icmpLimiter struct {
	perSecond, burst float64
	tokens           float64
	last             time.Time
	started          bool
}

func (l *icmpLimiter) init(perSecond, burst int) {
	l.perSecond, l.burst, l.tokens = float64(perSecond), float64(burst), float64(burst)
}

func (l *icmpLimiter) allow(now time.Time) bool {
	if !l.started {
		l.started, l.last = true, now
	}
	if d := now.Sub(l.last); d > 0 {
		l.tokens = min(l.burst, l.tokens+d.Seconds()*l.perSecond)
		l.last = now
	}
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// icmpInput handles an ICMP message addressed to us.
func (e *Endpoint) icmpInput(h header.IPv4, reassembled bool) Result {
	msg := h.Payload()
	if err := header.ValidateICMPv4(msg); err != nil {
		return e.drop(DropICMPInvalid, err)
	}
	e.stats.ICMPInMsgs++
	if header.ICMPv4(msg).Type() == header.ICMPv4Echo {
		e.stats.ICMPInEchos++
		e.stats.ICMPOutEchoReps++
		return Result{Verdict: VerdictReply, Reply: e.echoReply(h)}
	}
	// Errors (destination unreachable, fragmentation needed, ...) and
	// anything else go up: the transport may act on them (RFC 1122,
	// 3.2.2: "MUST be passed to the transport layer").
	e.stats.InDelivers++
	return Result{Verdict: VerdictDeliver, Datagram: h, Reassembled: reassembled}
}

// echoReply turns the echo request h into its reply in place (RFC 792;
// RFC 1122, 3.2.2.6: same data, our address as source). A new 20-byte
// header goes right in front of the ICMP message, dropping any IP options,
// so the reply is a suffix of h.
func (e *Endpoint) echoReply(h header.IPv4) []byte {
	hl := h.HeaderLength()
	peer, tos := h.SourceAddress(), h.TOS()
	m := header.ICMPv4(h[hl:])
	oldWord := uint16(m.Type())<<8 | uint16(m.Code())
	m.SetType(header.ICMPv4EchoReply)
	newWord := uint16(m.Type())<<8 | uint16(m.Code())
	// Only the type changed: update the checksum as RFC 1624 does instead
	// of summing the whole message again.
	m.SetChecksum(header.ChecksumUpdate(m.Checksum(), oldWord, newWord))
	reply := h[hl-header.IPv4MinimumSize:]
	e.WriteHeader(reply, Outgoing{
		Protocol:    header.ICMPv4ProtocolNumber,
		Dst:         peer,
		TotalLength: len(reply),
		TOS:         tos,
	})
	return reply
}

// icmpError builds an ICMP error about the datagram starting with orig (at
// least its header) in the scratch buffer: as much of orig as fits in 576
// bytes (RFC 1812, 4.3.2.3; RFC 792 asks for the header and 8 data bytes).
// It returns nil when the rate limit says no.
func (e *Endpoint) icmpError(orig header.IPv4, typ header.ICMPv4Type, code header.ICMPv4Code, now time.Time) []byte {
	if !e.icmp.allow(now) {
		e.stats.ICMPOutRateLimited++
		return nil
	}
	const hdrs = header.IPv4MinimumSize + header.ICMPv4MinimumSize
	n := min(len(orig), len(e.scratch)-hdrs)
	out := e.scratch[:hdrs+n]
	copy(out[hdrs:], orig[:n])
	m := header.ICMPv4(out[header.IPv4MinimumSize:])
	m.SetType(typ)
	m.SetCode(code)
	clear(m.RestOfHeader())
	m.SetChecksum(0)
	m.SetChecksum(m.CalculateChecksum())
	e.WriteHeader(out, Outgoing{
		Protocol:    header.ICMPv4ProtocolNumber,
		Dst:         orig.SourceAddress(),
		TotalLength: len(out),
	})
	return out
}

// destUnreachable answers the datagram h with destination unreachable.
func (e *Endpoint) destUnreachable(h header.IPv4, code header.ICMPv4Code, now time.Time) []byte {
	reply := e.icmpError(h, header.ICMPv4DstUnreachable, code, now)
	if reply != nil {
		e.stats.ICMPOutDestUnreachs++
	}
	return reply
}

// timeExceeded answers a reassembly that timed out (RFC 792, code 1), with
// fragment zero's header and first 8 data bytes.
func (e *Endpoint) timeExceeded(d *datagram, now time.Time) []byte {
	reply := e.icmpError(header.IPv4(d.first), header.ICMPv4TimeExceeded, header.ICMPv4ReassemblyTimeout, now)
	if reply != nil {
		e.stats.ICMPOutTimeExcds++
	}
	return reply
}
