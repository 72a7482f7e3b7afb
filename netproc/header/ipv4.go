package header

import "encoding/binary"

// IPv4 header layout (RFC 791, section 3.1).
const (
	ipv4VersionIHL   = 0
	ipv4TOS          = 1
	ipv4TotalLength  = 2
	ipv4ID           = 4
	ipv4FlagsFragOff = 6
	ipv4TTL          = 8
	ipv4Protocol     = 9
	ipv4Checksum     = 10
	ipv4SrcAddr      = 12
	ipv4DstAddr      = 16
	ipv4Options      = 20
)

const (
	// IPv4MinimumSize is the size of a header without options.
	IPv4MinimumSize = 20
	// IPv4MaximumHeaderSize is the largest header, IHL 15.
	IPv4MaximumHeaderSize = 60
	// IPv4MaximumSize is the largest datagram the total length can say.
	IPv4MaximumSize = 65535
	// IPv4Version is the version field of every IPv4 header.
	IPv4Version = 4
	// IPv4ChecksumOffset is where the header checksum lives.
	IPv4ChecksumOffset = ipv4Checksum
)

// Flags of the 3-bit flags field (RFC 791, section 3.1), as returned by
// IPv4.Flags.
const (
	IPv4FlagMoreFragments uint8 = 1 << 0
	IPv4FlagDontFragment  uint8 = 1 << 1
	IPv4FlagReserved      uint8 = 1 << 2
)

// Protocol numbers saturn knows (IANA "Assigned Internet Protocol Numbers").
const (
	ICMPv4ProtocolNumber uint8 = 1
	TCPProtocolNumber    uint8 = 6
	UDPProtocolNumber    uint8 = 17
)

// IPv4 option kinds (RFC 791, section 3.1) needed to walk the option list.
const (
	ipv4OptionEOL = 0
	ipv4OptionNOP = 1
)

// IPv4 is a view of an IPv4 header followed by its payload.
type IPv4 []byte

// IPv4Fields is what IPv4.Encode writes.
type IPv4Fields struct {
	TOS            uint8
	TotalLength    uint16 // header plus payload
	ID             uint16
	Flags          uint8  // IPv4Flag* bits
	FragmentOffset uint16 // in bytes; a multiple of 8
	TTL            uint8
	Protocol       uint8
	SrcAddr        IPv4Addr
	DstAddr        IPv4Addr
	// Options are copied after the fixed header and padded with zero
	// (end-of-list) bytes to a multiple of 4; at most 40 bytes.
	Options []byte
}

// Version returns the version field.
func (b IPv4) Version() uint8 { return b[ipv4VersionIHL] >> 4 }

// HeaderLength returns the header length in bytes (IHL * 4).
func (b IPv4) HeaderLength() int { return int(b[ipv4VersionIHL]&0x0f) * 4 }

// TOS returns the type-of-service (DSCP and ECN) byte.
func (b IPv4) TOS() uint8 { return b[ipv4TOS] }

// TotalLength returns the total length of the datagram in bytes.
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[ipv4TotalLength:]) }

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipv4ID:]) }

// Flags returns the 3 flag bits (IPv4Flag*).
func (b IPv4) Flags() uint8 { return b[ipv4FlagsFragOff] >> 5 }

// FragmentOffset returns the fragment offset in bytes.
func (b IPv4) FragmentOffset() uint16 {
	return binary.BigEndian.Uint16(b[ipv4FlagsFragOff:]) << 3
}

// MoreFragments reports the MF flag.
func (b IPv4) MoreFragments() bool { return b.Flags()&IPv4FlagMoreFragments != 0 }

// DontFragment reports the DF flag.
func (b IPv4) DontFragment() bool { return b.Flags()&IPv4FlagDontFragment != 0 }

// IsFragment reports whether the datagram is a fragment: MF set or a nonzero
// offset (RFC 791, section 3.2).
func (b IPv4) IsFragment() bool {
	return b.MoreFragments() || b.FragmentOffset() != 0
}

// TTL returns the time to live.
func (b IPv4) TTL() uint8 { return b[ipv4TTL] }

// Protocol returns the protocol number of the payload.
func (b IPv4) Protocol() uint8 { return b[ipv4Protocol] }

// Checksum returns the stored header checksum.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipv4Checksum:]) }

// SourceAddress returns the source address.
func (b IPv4) SourceAddress() IPv4Addr { return IPv4Addr(b[ipv4SrcAddr : ipv4SrcAddr+4]) }

// DestinationAddress returns the destination address.
func (b IPv4) DestinationAddress() IPv4Addr { return IPv4Addr(b[ipv4DstAddr : ipv4DstAddr+4]) }

// Options returns the option bytes, clamped to the view (nil when the view
// is shorter than a header).
func (b IPv4) Options() []byte {
	if len(b) < IPv4MinimumSize {
		return nil
	}
	hl := min(b.HeaderLength(), len(b))
	if hl <= ipv4Options {
		return nil
	}
	return b[ipv4Options:hl]
}

// Payload returns the bytes after the header up to the total length, clamped
// to the view; trailing bytes beyond the total length (link padding) are not
// part of it. It is nil when the view is shorter than a header.
func (b IPv4) Payload() []byte {
	if len(b) < IPv4MinimumSize {
		return nil
	}
	hl := min(b.HeaderLength(), len(b))
	end := min(int(b.TotalLength()), len(b))
	if end < hl {
		return nil
	}
	return b[hl:end]
}

// SetHeaderLength writes the version (4) and IHL for a header of hl bytes.
func (b IPv4) SetHeaderLength(hl int) { b[ipv4VersionIHL] = IPv4Version<<4 | uint8(hl/4)&0x0f }

// SetTOS sets the type-of-service byte.
func (b IPv4) SetTOS(v uint8) { b[ipv4TOS] = v }

// SetTotalLength sets the total length.
func (b IPv4) SetTotalLength(v uint16) { binary.BigEndian.PutUint16(b[ipv4TotalLength:], v) }

// SetID sets the identification field.
func (b IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(b[ipv4ID:], v) }

// SetFlagsFragmentOffset sets the flags and the fragment offset, given in
// bytes (a multiple of 8; the low 3 bits are dropped).
func (b IPv4) SetFlagsFragmentOffset(flags uint8, offset uint16) {
	binary.BigEndian.PutUint16(b[ipv4FlagsFragOff:], uint16(flags&7)<<13|offset>>3)
}

// SetTTL sets the time to live.
func (b IPv4) SetTTL(v uint8) { b[ipv4TTL] = v }

// SetProtocol sets the protocol number.
func (b IPv4) SetProtocol(v uint8) { b[ipv4Protocol] = v }

// SetChecksum stores a header checksum.
func (b IPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[ipv4Checksum:], v) }

// SetSourceAddress sets the source address.
func (b IPv4) SetSourceAddress(a IPv4Addr) { copy(b[ipv4SrcAddr:], a[:]) }

// SetDestinationAddress sets the destination address.
func (b IPv4) SetDestinationAddress(a IPv4Addr) { copy(b[ipv4DstAddr:], a[:]) }

// CalculateChecksum returns the header checksum to store: the complement of
// the sum of the header with the checksum field taken as zero (RFC 791,
// section 3.1). The header length must be within the view.
func (b IPv4) CalculateChecksum() uint16 {
	hl := b.HeaderLength()
	sum := Checksum(b[:ipv4Checksum], 0)
	sum = Checksum(b[ipv4Checksum+2:hl], sum)
	return ^sum
}

// IsChecksumValid reports whether the stored header checksum is right.
func (b IPv4) IsChecksumValid() bool {
	return Checksum(b[:b.HeaderLength()], 0) == 0xffff
}

// EncodedLength returns the header length Encode writes for f: 20 plus the
// options rounded up to a multiple of 4.
func (f *IPv4Fields) EncodedLength() int {
	return IPv4MinimumSize + (len(f.Options)+3)&^3
}

// Encode writes the header described by f, options included, and its
// checksum. b must hold f.EncodedLength() bytes and f.Options at most 40
// bytes; Encode panics otherwise, as these are the caller's invariants.
func (b IPv4) Encode(f *IPv4Fields) {
	hl := f.EncodedLength()
	if hl > IPv4MaximumHeaderSize {
		panic("header: IPv4 options longer than 40 bytes")
	}
	_ = b[hl-1]
	b.SetHeaderLength(hl)
	b.SetTOS(f.TOS)
	b.SetTotalLength(f.TotalLength)
	b.SetID(f.ID)
	b.SetFlagsFragmentOffset(f.Flags, f.FragmentOffset)
	b.SetTTL(f.TTL)
	b.SetProtocol(f.Protocol)
	b.SetSourceAddress(f.SrcAddr)
	b.SetDestinationAddress(f.DstAddr)
	n := copy(b[ipv4Options:hl], f.Options)
	clear(b[ipv4Options+n : hl])
	b.SetChecksum(0)
	b.SetChecksum(b.CalculateChecksum())
}

// Fields returns the header's fields; Options aliases the view.
func (b IPv4) Fields() IPv4Fields {
	return IPv4Fields{
		TOS:            b.TOS(),
		TotalLength:    b.TotalLength(),
		ID:             b.ID(),
		Flags:          b.Flags(),
		FragmentOffset: b.FragmentOffset(),
		TTL:            b.TTL(),
		Protocol:       b.Protocol(),
		SrcAddr:        b.SourceAddress(),
		DstAddr:        b.DestinationAddress(),
		Options:        b.Options(),
	}
}

// ValidateIPv4 checks that b starts with a well-formed IPv4 datagram (RFC
// 791, section 3.1; RFC 1122, section 3.2.1): version 4, IHL at least 5 and
// within b, total length covering the header and within b (bytes after it
// are link padding and allowed), a correct header checksum, a well-formed
// option list, and a fragment that ends within 65535 bytes. The error is a
// *ParseError naming the field.
func ValidateIPv4(b []byte) error {
	if len(b) < IPv4MinimumSize {
		return parseErr("ipv4", "length", ErrTruncated, len(b), "<", IPv4MinimumSize)
	}
	h := IPv4(b)
	if v := h.Version(); v != IPv4Version {
		return parseErr("ipv4", "version", ErrBadVersion, int(v), "!=", IPv4Version)
	}
	hl := h.HeaderLength()
	if hl < IPv4MinimumSize {
		return parseErr("ipv4", "IHL", ErrBadIHL, hl/4, "<", IPv4MinimumSize/4)
	}
	if hl > len(b) {
		return parseErr("ipv4", "header length", ErrTruncated, len(b), "<", hl)
	}
	tl := int(h.TotalLength())
	if tl < hl {
		return parseErr("ipv4", "total length", ErrBadTotalLength, tl, "<", hl)
	}
	if tl > len(b) {
		return parseErr("ipv4", "total length", ErrTruncated, len(b), "<", tl)
	}
	if Checksum(b[:hl], 0) != 0xffff {
		return parseErr("ipv4", "header checksum", ErrBadChecksum, int(h.Checksum()), "!=", int(h.CalculateChecksum()))
	}
	if err := validateIPv4Options(h.Options()); err != nil {
		return err
	}
	if end := int(h.FragmentOffset()) + tl - hl; end > IPv4MaximumSize-hl {
		return parseErr("ipv4", "fragment end", ErrBadFragment, end, ">", IPv4MaximumSize-hl)
	}
	return nil
}

// validateIPv4Options walks the option list (RFC 791, section 3.1): single
// byte end-of-list and no-operation options, and type-length-value options
// whose length counts type and length bytes and stays within the header.
// Option contents are not interpreted: RFC 1122, section 3.2.1.8 lets a host
// ignore options it does not implement.
func validateIPv4Options(opts []byte) error {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case ipv4OptionEOL:
			return nil
		case ipv4OptionNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return parseErr("ipv4", "option length byte", ErrTruncatedOption, len(opts)-i, "<", 2)
		}
		l := int(opts[i+1])
		if l < 2 {
			return parseErr("ipv4", "option length", ErrBadOptionLength, l, "<", 2)
		}
		if i+l > len(opts) {
			return parseErr("ipv4", "option length", ErrTruncatedOption, l, ">", len(opts)-i)
		}
		i += l
	}
	return nil
}
