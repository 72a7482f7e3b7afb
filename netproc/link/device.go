package link

import (
	"errors"
	"net"
	"strings"
)

// Device moves IPv4 packets between saturn and a link, in batches.
//
// Buffer ownership: every Packet's buffer belongs to the caller before and
// after each call. A device uses it only during the call: it may write into
// the headroom Buf[:Off], and on Write into the packet's transport checksum
// field (see FlagNeedsChecksum and GSOSize); it keeps no reference once the
// call returns. A wrapper that must hold a packet longer (to delay it)
// copies it.
//
// Read and Write may be called concurrently with each other, but each by one
// goroutine at a time. Close unblocks a pending Read, which then returns
// net.ErrClosed, as do all calls after Close.
type Device interface {
	// Read blocks until at least one packet arrives, then fills up to
	// len(pkts) packets and returns how many. The caller sets each
	// pkts[i].Buf and pkts[i].Off, with Off >= Headroom() and
	// len(Buf)-Off >= MaxPacketSize(); Read sets Len, GSOSize and Flags
	// of pkts[:n], and the packet is Buf[Off:Off+Len].
	Read(pkts []Packet) (n int, err error)
	// Write sends pkts in order, each Buf[Off:Off+Len] with Off >=
	// Headroom(). It returns the number sent; when err is not nil,
	// pkts[n] is the packet that failed, and the caller may drop it and
	// call Write again with pkts[n+1:].
	Write(pkts []Packet) (n int, err error)
	// BatchSize is the number of packets one Read or Write handles best.
	BatchSize() int
	// MTU is the largest packet the link carries on the wire.
	MTU() int
	// MaxPacketSize is the largest packet Read returns and Write accepts:
	// the MTU, or 65535 when the device takes and gives TCP segments
	// larger than the MTU (GSO).
	MaxPacketSize() int
	// Headroom is the room a device needs in front of each packet.
	Headroom() int
	// Offloads says what the device does for the stack.
	Offloads() Offloads
	// Close releases the device.
	Close() error
}

// MaxHeadroom is the most headroom any device in this package needs; a
// caller that leaves this much works with all of them.
const MaxHeadroom = 16

// MaxGSOPacketSize is MaxPacketSize for a device doing GSO.
const MaxGSOPacketSize = 65535

// Packet is one slot of a batch.
type Packet struct {
	// Buf holds the packet at Buf[Off:Off+Len]; Buf[:Off] is headroom.
	Buf []byte
	Off int
	Len int
	// GSOSize, on Write, marks a TCP/IPv4 segment whose payload is larger
	// than one wire segment: the device cuts it into segments of GSOSize
	// payload bytes (by the kernel's TSO, or in software). Its TCP
	// checksum field is ignored and overwritten. On Read, a nonzero
	// GSOSize says the device handed up a segment coalesced from wire
	// segments of this size; it is a valid TCP segment as it stands.
	GSOSize uint16
	Flags   PacketFlags
}

// Bytes returns the packet, Buf[Off:Off+Len].
func (p *Packet) Bytes() []byte { return p.Buf[p.Off : p.Off+p.Len] }

// Set points the packet at Buf[off:off+n] with no GSO and no flags.
func (p *Packet) Set(buf []byte, off, n int) {
	*p = Packet{Buf: buf, Off: off, Len: n}
}

// PacketFlags qualify a packet.
type PacketFlags uint8

const (
	// FlagChecksumValid (Read): the stack need not check the transport
	// checksum: the kernel verified it, or made the packet itself and
	// left the checksum partial (FlagChecksumPartial), both said through
	// the virtio-net header.
	FlagChecksumValid PacketFlags = 1 << iota
	// FlagNeedsChecksum (Write): the packet is TCP/IPv4 and its checksum
	// field is not filled in; the device completes it, by offload or in
	// software. Implied by GSOSize > 0.
	FlagNeedsChecksum
	// FlagChecksumPartial (Read): the checksum field holds only the
	// pseudo-header sum the kernel left (CHECKSUM_PARTIAL); the packet is
	// trusted as it is (FlagChecksumValid is set too) and its checksum is
	// computed only in a capture's copy.
	FlagChecksumPartial
)

func (f PacketFlags) String() string {
	var parts []string
	if f&FlagChecksumValid != 0 {
		parts = append(parts, "checksum-valid")
	}
	if f&FlagNeedsChecksum != 0 {
		parts = append(parts, "needs-checksum")
	}
	if f&FlagChecksumPartial != 0 {
		parts = append(parts, "checksum-partial")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Offloads says which offloads a device performs.
type Offloads struct {
	VirtioHeader bool // packets carry a virtio-net header (IFF_VNET_HDR)
	Checksum     bool // the kernel takes and gives partial checksums (TUN_F_CSUM)
	TSO4         bool // the kernel takes and gives TCP/IPv4 segments beyond the MTU (TUN_F_TSO4)
}

// String names the mode: "plain", "vnet", "vnet+csum" or "vnet+csum+tso4".
func (o Offloads) String() string {
	if !o.VirtioHeader {
		return "plain"
	}
	s := "vnet"
	if o.Checksum {
		s += "+csum"
	}
	if o.TSO4 {
		s += "+tso4"
	}
	return s
}

// Errors of this package. Closed devices return net.ErrClosed.
var (
	ErrShortBuffer = errors.New("link: packet buffer shorter than MaxPacketSize or headroom below Headroom")
	ErrBadPacket   = errors.New("link: packet to write is not a well-formed IPv4 packet")
	ErrNotTCP      = errors.New("link: GSO or checksum offload asked for a packet that is not TCP/IPv4")
)

// ErrClosed is returned by every device after Close.
var ErrClosed = net.ErrClosed

// checkRead verifies the caller's read slots.
func checkRead(pkts []Packet, headroom, maxSize int) error {
	for i := range pkts {
		p := &pkts[i]
		if p.Off < headroom || len(p.Buf)-p.Off < maxSize {
			return ErrShortBuffer
		}
	}
	return nil
}

// wrapped is embedded by a device that sits on another one (Capture,
// Impaired): it answers the inner device's properties for it, and the
// wrapper writes its own Read, Write and Close.
type wrapped struct{ dev Device }

// BatchSize implements Device.
func (w wrapped) BatchSize() int { return w.dev.BatchSize() }

// MTU implements Device.
func (w wrapped) MTU() int { return w.dev.MTU() }

// MaxPacketSize implements Device.
func (w wrapped) MaxPacketSize() int { return w.dev.MaxPacketSize() }

// Headroom implements Device.
func (w wrapped) Headroom() int { return w.dev.Headroom() }

// Offloads implements Device.
func (w wrapped) Offloads() Offloads { return w.dev.Offloads() }
