package header

import "encoding/binary"

// ICMPv4 message layout (RFC 792).
const (
	icmpv4Type     = 0
	icmpv4Code     = 1
	icmpv4Checksum = 2
	icmpv4Ident    = 4 // echo, timestamp, information
	icmpv4Sequence = 6 // echo, timestamp, information
	icmpv4MTU      = 6 // destination unreachable, code 4 (RFC 1191, section 4)
	icmpv4Payload  = 8

	// ICMPv4MinimumSize is the size of the fixed part of every message.
	ICMPv4MinimumSize = 8
	// ICMPv4ChecksumOffset is where the checksum lives.
	ICMPv4ChecksumOffset = icmpv4Checksum
)

// ICMPv4Type is the type field.
type ICMPv4Type uint8

// ICMPv4 types (RFC 792).
const (
	ICMPv4EchoReply      ICMPv4Type = 0
	ICMPv4DstUnreachable ICMPv4Type = 3
	ICMPv4SrcQuench      ICMPv4Type = 4
	ICMPv4Redirect       ICMPv4Type = 5
	ICMPv4Echo           ICMPv4Type = 8
	ICMPv4TimeExceeded   ICMPv4Type = 11
	ICMPv4ParamProblem   ICMPv4Type = 12
	ICMPv4Timestamp      ICMPv4Type = 13
	ICMPv4TimestampReply ICMPv4Type = 14
)

// IsError reports whether the type is an ICMP error message, to which no ICMP
// error may be sent in reply (RFC 1122, section 3.2.2).
func (t ICMPv4Type) IsError() bool {
	switch t {
	case ICMPv4DstUnreachable, ICMPv4SrcQuench, ICMPv4Redirect, ICMPv4TimeExceeded, ICMPv4ParamProblem:
		return true
	}
	return false
}

// ICMPv4Code is the code field.
type ICMPv4Code uint8

// Codes of Destination Unreachable (RFC 792; RFC 1191) and Time Exceeded.
const (
	ICMPv4NetUnreachable      ICMPv4Code = 0
	ICMPv4HostUnreachable     ICMPv4Code = 1
	ICMPv4ProtoUnreachable    ICMPv4Code = 2
	ICMPv4PortUnreachable     ICMPv4Code = 3
	ICMPv4FragmentationNeeded ICMPv4Code = 4

	ICMPv4TTLExceeded       ICMPv4Code = 0
	ICMPv4ReassemblyTimeout ICMPv4Code = 1
)

// ICMPv4 is a view of an ICMPv4 message.
type ICMPv4 []byte

// Type returns the type field.
func (b ICMPv4) Type() ICMPv4Type { return ICMPv4Type(b[icmpv4Type]) }

// Code returns the code field.
func (b ICMPv4) Code() ICMPv4Code { return ICMPv4Code(b[icmpv4Code]) }

// Checksum returns the stored checksum.
func (b ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpv4Checksum:]) }

// Ident returns the identifier of an echo or echo reply.
func (b ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(b[icmpv4Ident:]) }

// Sequence returns the sequence number of an echo or echo reply.
func (b ICMPv4) Sequence() uint16 { return binary.BigEndian.Uint16(b[icmpv4Sequence:]) }

// MTU returns the next-hop MTU of a fragmentation-needed message.
func (b ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(b[icmpv4MTU:]) }

// RestOfHeader returns bytes 4 to 8, whose meaning depends on the type.
func (b ICMPv4) RestOfHeader() []byte { return b[icmpv4Ident:icmpv4Payload] }

// Payload returns the bytes after the 8-byte header: echo data, or for an
// error the invoking datagram's header and first bytes.
func (b ICMPv4) Payload() []byte { return b[icmpv4Payload:] }

// SetType sets the type field.
func (b ICMPv4) SetType(t ICMPv4Type) { b[icmpv4Type] = uint8(t) }

// SetCode sets the code field.
func (b ICMPv4) SetCode(c ICMPv4Code) { b[icmpv4Code] = uint8(c) }

// SetChecksum stores a checksum.
func (b ICMPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[icmpv4Checksum:], v) }

// SetIdent sets the echo identifier.
func (b ICMPv4) SetIdent(v uint16) { binary.BigEndian.PutUint16(b[icmpv4Ident:], v) }

// SetSequence sets the echo sequence number.
func (b ICMPv4) SetSequence(v uint16) { binary.BigEndian.PutUint16(b[icmpv4Sequence:], v) }

// SetMTU sets the next-hop MTU of a fragmentation-needed message.
func (b ICMPv4) SetMTU(v uint16) { binary.BigEndian.PutUint16(b[icmpv4MTU:], v) }

// CalculateChecksum returns the checksum to store: the complement of the sum
// of the whole message with the checksum field taken as zero (RFC 792).
func (b ICMPv4) CalculateChecksum() uint16 {
	sum := Checksum(b[:icmpv4Checksum], 0)
	return ^Checksum(b[icmpv4Checksum+2:], sum)
}

// ValidateICMPv4 checks that b, the whole ICMP message (the IPv4 payload), is
// at least 8 bytes and that its checksum is right (RFC 792).
func ValidateICMPv4(b []byte) error {
	if len(b) < ICMPv4MinimumSize {
		return parseErr("icmpv4", "length", ErrTruncated, len(b), "<", ICMPv4MinimumSize)
	}
	if Checksum(b, 0) != 0xffff {
		m := ICMPv4(b)
		return parseErr("icmpv4", "checksum", ErrBadChecksum, int(m.Checksum()), "!=", int(m.CalculateChecksum()))
	}
	return nil
}
