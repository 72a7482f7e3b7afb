package ipv4

import (
	"cmp"
	"errors"
	"time"

	"saturn/netproc/header"
)

// Defaults for the zero values of Config.
const (
	DefaultTTL                 = 64
	DefaultReassemblyTimeout   = 30 * time.Second // Linux's ipfrag_time; RFC 791 suggests 15 s
	DefaultReassemblyMaxBytes  = 4 << 20
	DefaultReassemblyDatagrams = 64
	DefaultReassemblyFragments = 256
	DefaultICMPErrorsPerSecond = 100
	DefaultICMPErrorBurst      = 50
	icmpErrorMaxSize           = 576 // RFC 1812, 4.3.2.3: at most 576 bytes
)

// Config describes an Endpoint. Zero fields take the defaults above.
type Config struct {
	// Addr is our address. Datagrams to any other destination, broadcast
	// and multicast included, are dropped as not for us.
	Addr header.IPv4Addr
	// TTL is put on every datagram we send.
	TTL uint8
	// Protocols are the transport protocol numbers delivered upward (for
	// saturn: header.TCPProtocolNumber). ICMP is handled here; a datagram
	// of any other protocol is answered with protocol-unreachable.
	Protocols []uint8
	// InitialID is the first IP identification used by WriteHeader; pass a
	// random value so that IDs are not predictable from the start.
	InitialID uint16

	// DropFragments drops every fragment with a counter instead of
	// reassembling.
	DropFragments bool
	// ReassemblyTimeout bounds how long a datagram's fragments are held,
	// counted from its first fragment (RFC 791, section 3.2).
	ReassemblyTimeout time.Duration
	// ReassemblyMaxBytes bounds the memory held by all reassemblies.
	ReassemblyMaxBytes int
	// ReassemblyMaxDatagrams bounds how many datagrams are reassembled at
	// once; the oldest is discarded to make room.
	ReassemblyMaxDatagrams int
	// ReassemblyMaxFragments bounds the fragments held per datagram.
	ReassemblyMaxFragments int

	// ICMPErrorsPerSecond and ICMPErrorBurst rate-limit the ICMP errors we
	// send (RFC 1812, section 4.3.2.8), as a token bucket.
	ICMPErrorsPerSecond int
	ICMPErrorBurst      int
}

// withDefaults returns c with each zero field set to its default, and each
// negative one too where the field must be positive (cmp.Or(max(v, 0), d)).
func (c Config) withDefaults() Config {
	c.TTL = cmp.Or(c.TTL, DefaultTTL)
	c.ReassemblyTimeout = cmp.Or(max(c.ReassemblyTimeout, 0), DefaultReassemblyTimeout)
	c.ReassemblyMaxBytes = cmp.Or(max(c.ReassemblyMaxBytes, 0), DefaultReassemblyMaxBytes)
	c.ReassemblyMaxDatagrams = cmp.Or(max(c.ReassemblyMaxDatagrams, 0), DefaultReassemblyDatagrams)
	c.ReassemblyMaxFragments = cmp.Or(max(c.ReassemblyMaxFragments, 0), DefaultReassemblyFragments)
	c.ICMPErrorsPerSecond = cmp.Or(max(c.ICMPErrorsPerSecond, 0), DefaultICMPErrorsPerSecond)
	c.ICMPErrorBurst = cmp.Or(max(c.ICMPErrorBurst, 0), DefaultICMPErrorBurst)
	return c
}

// Verdict says what the caller does with a packet after Input.
type Verdict uint8

const (
	// VerdictDrop: nothing to do; Result.Reason says why.
	VerdictDrop Verdict = iota
	// VerdictDeliver: hand Result.Datagram's payload to the transport
	// named by its protocol (also ICMP messages other than echo requests,
	// for the transport to act on errors).
	VerdictDeliver
	// VerdictReply: transmit Result.Reply.
	VerdictReply
	// VerdictHeld: a fragment was kept for reassembly.
	VerdictHeld
)

func (v Verdict) String() string {
	switch v {
	case VerdictDrop:
		return "drop"
	case VerdictDeliver:
		return "deliver"
	case VerdictReply:
		return "reply"
	case VerdictHeld:
		return "held"
	}
	return "unknown"
}

// Result is what Input decided.
type Result struct {
	Verdict Verdict
	// Reason is why the packet was dropped (VerdictDrop), or
	// DropUnknownProtocol with VerdictReply for a protocol-unreachable.
	Reason DropReason
	// Err details a validation failure (a *header.ParseError), or nil.
	Err error
	// Datagram is the validated datagram to deliver, trimmed to its total
	// length. Its Payload is the transport's segment.
	Datagram header.IPv4
	// Reassembled says Datagram is a new buffer from reassembly, owned by
	// the caller from now on; otherwise it aliases the input packet.
	Reassembled bool
	// Reply is the IPv4 packet to transmit (VerdictReply); see the package
	// doc for how long it stays valid. It may exceed the link MTU (an echo
	// reply to a large, reassembled echo request): split it with Fragment.
	Reply []byte
}

// Endpoint is the IPv4 layer of one interface. It is not safe for
// concurrent use: one goroutine owns it.
type Endpoint struct {
	cfg       Config
	protocols [256]bool
	nextID    uint16
	reasm     reassembler
	icmp      icmpLimiter
	scratch   [icmpErrorMaxSize]byte
	stats     Stats
}

// New returns an Endpoint for cfg.
func New(cfg Config) *Endpoint {
	cfg = cfg.withDefaults()
	e := &Endpoint{cfg: cfg, nextID: cfg.InitialID}
	for _, p := range cfg.Protocols {
		e.protocols[p] = true
	}
	e.reasm.init(cfg)
	e.icmp.init(cfg.ICMPErrorsPerSecond, cfg.ICMPErrorBurst)
	return e
}

// Addr returns the endpoint's address.
func (e *Endpoint) Addr() header.IPv4Addr { return e.cfg.Addr }

// Stats returns a copy of the counters.
func (e *Endpoint) Stats() Stats { return e.stats }

func (e *Endpoint) drop(r DropReason, err error) Result {
	e.stats.Drops[r]++
	return Result{Verdict: VerdictDrop, Reason: r, Err: err}
}

// Input processes one packet read from the link, at time now. pkt must hold
// exactly what the link delivered; it is never retained.
func (e *Endpoint) Input(pkt []byte, now time.Time) Result {
	e.stats.InReceives++
	if err := header.ValidateIPv4(pkt); err != nil {
		return e.drop(validationReason(err), err)
	}
	h := header.IPv4(pkt)
	h = h[:h.TotalLength()]
	// RFC 1122, 3.2.1.7: a host must not send TTL 0, and must not drop a
	// datagram for TTL below 2; so only 0 marks a malformed datagram.
	if h.TTL() == 0 {
		return e.drop(DropZeroTTL, nil)
	}
	src, dst := h.SourceAddress(), h.DestinationAddress()
	// RFC 1122, 3.2.1.3: silently discard a datagram whose source is not a
	// unicast address; one with our own source came back or was forged.
	if src.IsUnspecified() || src.IsMulticast() || src.IsReserved() || src.IsLoopback() || src == e.cfg.Addr {
		return e.drop(DropMartianSource, nil)
	}
	if dst != e.cfg.Addr {
		return e.drop(DropNotForUs, nil)
	}
	reassembled := false
	if h.IsFragment() {
		if e.cfg.DropFragments {
			return e.drop(DropFragmentsDisabled, nil)
		}
		e.stats.ReasmReqds++
		whole, reason := e.reasm.add(h, now, &e.stats)
		if reason != DropNone {
			return e.drop(reason, nil)
		}
		if whole == nil {
			return Result{Verdict: VerdictHeld}
		}
		e.stats.ReasmOKs++
		h, reassembled = whole, true
	}
	return e.dispatch(h, reassembled, now)
}

// dispatch hands a whole, valid datagram for us to ICMP or a transport.
func (e *Endpoint) dispatch(h header.IPv4, reassembled bool, now time.Time) Result {
	proto := h.Protocol()
	switch {
	case proto == header.ICMPv4ProtocolNumber:
		return e.icmpInput(h, reassembled)
	case e.protocols[proto]:
		e.stats.InDelivers++
		return Result{Verdict: VerdictDeliver, Datagram: h, Reassembled: reassembled}
	}
	e.stats.Drops[DropUnknownProtocol]++
	// RFC 1122, 3.2.2.1: a host SHOULD send protocol-unreachable.
	if reply := e.destUnreachable(h, header.ICMPv4ProtoUnreachable, now); reply != nil {
		return Result{Verdict: VerdictReply, Reason: DropUnknownProtocol, Reply: reply}
	}
	return Result{Verdict: VerdictDrop, Reason: DropUnknownProtocol}
}

func validationReason(err error) DropReason {
	switch {
	case errors.Is(err, header.ErrBadVersion):
		return DropBadVersion
	case errors.Is(err, header.ErrBadIHL):
		return DropBadIHL
	case errors.Is(err, header.ErrBadTotalLength):
		return DropBadTotalLength
	case errors.Is(err, header.ErrBadChecksum):
		return DropBadChecksum
	case errors.Is(err, header.ErrBadOptionLength), errors.Is(err, header.ErrTruncatedOption), errors.Is(err, header.ErrBadOption):
		return DropBadOptions
	case errors.Is(err, header.ErrBadFragment):
		return DropBadFragment
	}
	return DropTruncated
}

// Expire discards the reassemblies whose timeout has passed at now. For each
// one whose first fragment had arrived it builds an ICMP time-exceeded
// message (RFC 1122, 3.3.2; rate-limited) and passes it to send, which must
// transmit or copy it before returning. send may be nil.
func (e *Endpoint) Expire(now time.Time, send func(reply []byte)) {
	for {
		d := e.reasm.oldest()
		if d == nil || now.Before(d.deadline) {
			return
		}
		if !d.discarded { // a discarded datagram was counted as failed already
			e.stats.ReasmFails++
			e.stats.ReasmTimeouts++
		}
		if d.first != nil && send != nil {
			if reply := e.timeExceeded(d, now); reply != nil {
				send(reply)
			}
		}
		e.reasm.remove(d)
	}
}

// NextDeadline returns when Expire next has work, if any reassembly is
// pending.
func (e *Endpoint) NextDeadline() (time.Time, bool) {
	if d := e.reasm.oldest(); d != nil {
		return d.deadline, true
	}
	return time.Time{}, false
}

// ReassemblyBytes returns the memory held by pending reassemblies.
func (e *Endpoint) ReassemblyBytes() int { return e.reasm.bytes }
