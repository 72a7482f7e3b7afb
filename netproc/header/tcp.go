package header

import (
	"encoding/binary"
	"strings"
)

// TCP header layout (RFC 9293, section 3.1).
const (
	tcpSrcPort    = 0
	tcpDstPort    = 2
	tcpSeqNum     = 4
	tcpAckNum     = 8
	tcpDataOffset = 12
	tcpFlags      = 13
	tcpWindow     = 14
	tcpChecksum   = 16
	tcpUrgent     = 18
	tcpOptions    = 20

	// TCPMinimumSize is the size of a header without options.
	TCPMinimumSize = 20
	// TCPMaximumHeaderSize is the largest header, data offset 15.
	TCPMaximumHeaderSize = 60
	// TCPMaximumOptionsSize is the room for options.
	TCPMaximumOptionsSize = TCPMaximumHeaderSize - TCPMinimumSize
	// TCPChecksumOffset is where the checksum lives (virtio csum_offset).
	TCPChecksumOffset = tcpChecksum
)

// TCPFlags are the control bits (RFC 9293, section 3.1; ECE and CWR from
// RFC 3168).
type TCPFlags uint8

// The control bits.
const (
	TCPFlagFin TCPFlags = 1 << iota
	TCPFlagSyn
	TCPFlagRst
	TCPFlagPsh
	TCPFlagAck
	TCPFlagUrg
	TCPFlagEce
	TCPFlagCwr
)

var tcpFlagNames = [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// tcpFlagOrder is the order String names the bits in: SYN|RST|FIN|PSH|ACK
// reads best (and is what the TCP core's golden scripts print).
var tcpFlagOrder = [...]int{1, 2, 0, 3, 4, 5, 6, 7}

// Has reports whether all bits of g are set in f.
func (f TCPFlags) Has(g TCPFlags) bool { return f&g == g }

// String returns the set bits joined by "|", e.g. "SYN|ACK".
func (f TCPFlags) String() string {
	if f == 0 {
		return "none"
	}
	var parts []string
	for _, i := range tcpFlagOrder {
		if f&(1<<i) != 0 {
			parts = append(parts, tcpFlagNames[i])
		}
	}
	return strings.Join(parts, "|")
}

// TCP is a view of a TCP header followed by its payload.
type TCP []byte

// TCPFields is what TCP.Encode writes.
type TCPFields struct {
	SrcPort    uint16
	DstPort    uint16
	SeqNum     uint32
	AckNum     uint32
	DataOffset uint8 // header length in bytes, a multiple of 4 from 20 to 60
	Flags      TCPFlags
	WindowSize uint16
	Checksum   uint16
	Urgent     uint16
}

// SourcePort returns the source port.
func (b TCP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[tcpSrcPort:]) }

// DestinationPort returns the destination port.
func (b TCP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[tcpDstPort:]) }

// SequenceNumber returns the sequence number.
func (b TCP) SequenceNumber() uint32 { return binary.BigEndian.Uint32(b[tcpSeqNum:]) }

// AckNumber returns the acknowledgment number.
func (b TCP) AckNumber() uint32 { return binary.BigEndian.Uint32(b[tcpAckNum:]) }

// DataOffset returns the header length in bytes (data offset * 4).
func (b TCP) DataOffset() int { return int(b[tcpDataOffset]>>4) * 4 }

// Flags returns the control bits.
func (b TCP) Flags() TCPFlags { return TCPFlags(b[tcpFlags]) }

// WindowSize returns the (unscaled) window field.
func (b TCP) WindowSize() uint16 { return binary.BigEndian.Uint16(b[tcpWindow:]) }

// Checksum returns the stored checksum.
func (b TCP) Checksum() uint16 { return binary.BigEndian.Uint16(b[tcpChecksum:]) }

// UrgentPointer returns the urgent pointer.
func (b TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(b[tcpUrgent:]) }

// Options returns the option bytes, clamped to the view (nil when the view
// is shorter than a header).
func (b TCP) Options() []byte {
	if len(b) < TCPMinimumSize {
		return nil
	}
	off := min(b.DataOffset(), len(b))
	if off <= tcpOptions {
		return nil
	}
	return b[tcpOptions:off]
}

// Payload returns the data after the header, clamped to the view (nil when
// the view is shorter than a header).
func (b TCP) Payload() []byte {
	if len(b) < TCPMinimumSize {
		return nil
	}
	return b[max(min(b.DataOffset(), len(b)), TCPMinimumSize):]
}

// Fields returns the fixed header's fields.
func (b TCP) Fields() TCPFields {
	return TCPFields{
		SrcPort:    b.SourcePort(),
		DstPort:    b.DestinationPort(),
		SeqNum:     b.SequenceNumber(),
		AckNum:     b.AckNumber(),
		DataOffset: uint8(b.DataOffset()),
		Flags:      b.Flags(),
		WindowSize: b.WindowSize(),
		Checksum:   b.Checksum(),
		Urgent:     b.UrgentPointer(),
	}
}

// SetSourcePort sets the source port.
func (b TCP) SetSourcePort(v uint16) { binary.BigEndian.PutUint16(b[tcpSrcPort:], v) }

// SetDestinationPort sets the destination port.
func (b TCP) SetDestinationPort(v uint16) { binary.BigEndian.PutUint16(b[tcpDstPort:], v) }

// SetSequenceNumber sets the sequence number.
func (b TCP) SetSequenceNumber(v uint32) { binary.BigEndian.PutUint32(b[tcpSeqNum:], v) }

// SetAckNumber sets the acknowledgment number.
func (b TCP) SetAckNumber(v uint32) { binary.BigEndian.PutUint32(b[tcpAckNum:], v) }

// SetDataOffset sets the header length in bytes (a multiple of 4, 20..60);
// the reserved bits are cleared.
func (b TCP) SetDataOffset(n int) { b[tcpDataOffset] = uint8(n/4) << 4 }

// SetFlags sets the control bits.
func (b TCP) SetFlags(f TCPFlags) { b[tcpFlags] = uint8(f) }

// SetWindowSize sets the window field.
func (b TCP) SetWindowSize(v uint16) { binary.BigEndian.PutUint16(b[tcpWindow:], v) }

// SetChecksum stores a checksum.
func (b TCP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[tcpChecksum:], v) }

// SetUrgentPointer sets the urgent pointer.
func (b TCP) SetUrgentPointer(v uint16) { binary.BigEndian.PutUint16(b[tcpUrgent:], v) }

// Encode writes the fixed 20-byte header from f (checksum included as
// given). Options, if any, go at b[20:f.DataOffset].
func (b TCP) Encode(f *TCPFields) {
	_ = b[TCPMinimumSize-1]
	b.SetSourcePort(f.SrcPort)
	b.SetDestinationPort(f.DstPort)
	b.SetSequenceNumber(f.SeqNum)
	b.SetAckNumber(f.AckNum)
	b.SetDataOffset(int(f.DataOffset))
	b.SetFlags(f.Flags)
	b.SetWindowSize(f.WindowSize)
	b.SetChecksum(f.Checksum)
	b.SetUrgentPointer(f.Urgent)
}

// EncodeWithOptions writes the header from f followed by opts, sets the data
// offset to cover them and returns the header length. The checksum field is
// written as f.Checksum; compute it once the payload is in place. b must
// hold TCPMinimumSize + opts.EncodedLen() bytes.
func (b TCP) EncodeWithOptions(f *TCPFields, opts TCPOptions) int {
	n := opts.Encode(b[tcpOptions:])
	fields := *f
	fields.DataOffset = uint8(TCPMinimumSize + n)
	b.Encode(&fields)
	return TCPMinimumSize + n
}

// TCPChecksum returns the checksum to store in seg, the whole TCP segment
// (header, options and data): the complement of the sum of the pseudo-header
// and the segment with its checksum field taken as zero (RFC 9293, 3.1).
func TCPChecksum(src, dst IPv4Addr, seg []byte) uint16 {
	sum := PseudoHeaderChecksum(TCPProtocolNumber, src, dst, uint16(len(seg)))
	sum = Checksum(seg[:tcpChecksum], sum)
	sum = Checksum(seg[tcpChecksum+2:], sum)
	return ^sum
}

// IsChecksumValid reports whether the stored checksum of the whole segment b
// is right for the given addresses.
func (b TCP) IsChecksumValid(src, dst IPv4Addr) bool {
	sum := PseudoHeaderChecksum(TCPProtocolNumber, src, dst, uint16(len(b)))
	return Checksum(b, sum) == 0xffff
}

// ValidateTCP checks that seg, the whole TCP segment (the IPv4 payload), has
// a complete fixed header, a data offset from 5 words up to the segment's
// length, and, when verifyChecksum is set, a correct checksum for the given
// addresses (RFC 9293, section 3.1). Pass verifyChecksum false only when the
// link already verified the checksum. Options are checked separately by
// ParseTCPOptions.
func ValidateTCP(seg []byte, src, dst IPv4Addr, verifyChecksum bool) error {
	if len(seg) < TCPMinimumSize {
		return parseErr("tcp", "length", ErrTruncated, len(seg), "<", TCPMinimumSize)
	}
	if len(seg) > IPv4MaximumSize {
		return parseErr("tcp", "length", ErrBadTotalLength, len(seg), ">", IPv4MaximumSize)
	}
	h := TCP(seg)
	off := h.DataOffset()
	if off < TCPMinimumSize {
		return parseErr("tcp", "data offset", ErrBadDataOffset, off/4, "<", TCPMinimumSize/4)
	}
	if off > len(seg) {
		return parseErr("tcp", "data offset", ErrBadDataOffset, off, ">", len(seg))
	}
	if verifyChecksum && !h.IsChecksumValid(src, dst) {
		return parseErr("tcp", "checksum", ErrBadChecksum, int(h.Checksum()), "!=", int(TCPChecksum(src, dst, seg)))
	}
	return nil
}

// ParseTCP validates seg as ValidateTCP does and parses its options.
func ParseTCP(seg []byte, src, dst IPv4Addr, verifyChecksum bool) (TCP, TCPOptions, error) {
	if err := ValidateTCP(seg, src, dst, verifyChecksum); err != nil {
		return nil, TCPOptions{}, err
	}
	h := TCP(seg)
	opts, err := ParseTCPOptions(h.Options())
	if err != nil {
		return nil, TCPOptions{}, err
	}
	return h, opts, nil
}
