package link

import (
	"encoding/binary"
	"errors"

	"saturn/netproc/header"
)

// The virtio-net header that a TUN device with IFF_VNET_HDR puts in front of
// every packet (struct virtio_net_hdr, virtio spec 1.x, section 5.1.6; the
// legacy layout without num_buffers). Its 16-bit fields are in the host's
// byte order: TUN uses little-endian on little-endian hosts and native order
// elsewhere unless told otherwise (TUNSETVNETLE), so native order is right.
const (
	virtioNetHdrLen = 10

	vnetFlags      = 0
	vnetGSOType    = 1
	vnetHdrLen     = 2
	vnetGSOSize    = 4
	vnetCsumStart  = 6
	vnetCsumOffset = 8

	virtioNetHdrFNeedsCsum = 1 // the checksum at csum_start+csum_offset is partial
	virtioNetHdrFDataValid = 2 // the kernel validated the checksum

	virtioNetHdrGSONone  = 0
	virtioNetHdrGSOTCPv4 = 1
	virtioNetHdrGSOECN   = 0x80 // the segment has CWR set (RFC 3168)
)

// virtioNetHdr is the decoded header.
type virtioNetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func (h *virtioNetHdr) decode(b []byte) {
	_ = b[virtioNetHdrLen-1]
	h.flags = b[vnetFlags]
	h.gsoType = b[vnetGSOType]
	h.hdrLen = binary.NativeEndian.Uint16(b[vnetHdrLen:])
	h.gsoSize = binary.NativeEndian.Uint16(b[vnetGSOSize:])
	h.csumStart = binary.NativeEndian.Uint16(b[vnetCsumStart:])
	h.csumOffset = binary.NativeEndian.Uint16(b[vnetCsumOffset:])
}

func (h *virtioNetHdr) encode(b []byte) {
	_ = b[virtioNetHdrLen-1]
	b[vnetFlags] = h.flags
	b[vnetGSOType] = h.gsoType
	binary.NativeEndian.PutUint16(b[vnetHdrLen:], h.hdrLen)
	binary.NativeEndian.PutUint16(b[vnetGSOSize:], h.gsoSize)
	binary.NativeEndian.PutUint16(b[vnetCsumStart:], h.csumStart)
	binary.NativeEndian.PutUint16(b[vnetCsumOffset:], h.csumOffset)
}

var (
	errBadVirtioHeader = errors.New("link: virtio-net header inconsistent with its packet")
	errUnsupportedGSO  = errors.New("link: GSO type other than TCPv4 received")
)

// fromKernel applies a received virtio-net header to its packet. A partial
// checksum is left as the kernel wrote it (the pseudo-header sum in the
// checksum field), as Linux's own stack trusts CHECKSUM_PARTIAL on a veth
// or loopback: the packet was made by the kernel's stack on this host and
// crossed no wire, and summing a 64 KiB GSO segment again would cost a pass
// over every byte received. A GSO packet (gso_type TCPv4) is handed up
// whole: it is one TCP segment larger than the MTU. The kernel is the only
// writer of these headers, but they are checked as if hostile.
func fromKernel(h *virtioNetHdr, pkt []byte) (gsoSize uint16, flags PacketFlags, err error) {
	switch {
	case h.flags&virtioNetHdrFNeedsCsum != 0:
		start, off := int(h.csumStart), int(h.csumOffset)
		if start > len(pkt) || start+off+2 > len(pkt) {
			return 0, 0, errBadVirtioHeader
		}
		flags |= FlagChecksumValid | FlagChecksumPartial
	case h.flags&virtioNetHdrFDataValid != 0:
		flags |= FlagChecksumValid
	}
	switch h.gsoType &^ virtioNetHdrGSOECN {
	case virtioNetHdrGSONone:
		return 0, flags, nil
	case virtioNetHdrGSOTCPv4:
		if _, _, err := tcpv4Headers(pkt); err != nil || h.gsoSize == 0 {
			return 0, 0, errBadVirtioHeader
		}
		return h.gsoSize, flags, nil
	}
	return 0, 0, errUnsupportedGSO
}

// tcpv4Headers checks that pkt is an IPv4 packet carrying a whole TCP
// segment (total length equal to len(pkt)) and returns the IP and TCP
// header lengths.
func tcpv4Headers(pkt []byte) (ihl, thl int, err error) {
	if len(pkt) < header.IPv4MinimumSize {
		return 0, 0, ErrBadPacket
	}
	ip := header.IPv4(pkt)
	ihl = ip.HeaderLength()
	if ip.Version() != header.IPv4Version || ihl < header.IPv4MinimumSize || int(ip.TotalLength()) != len(pkt) ||
		ihl+header.TCPMinimumSize > len(pkt) {
		return 0, 0, ErrBadPacket
	}
	if ip.Protocol() != header.TCPProtocolNumber || ip.IsFragment() {
		return 0, 0, ErrNotTCP
	}
	thl = header.TCP(pkt[ihl:]).DataOffset()
	if thl < header.TCPMinimumSize || ihl+thl > len(pkt) {
		return 0, 0, ErrBadPacket
	}
	return ihl, thl, nil
}

// setPartialChecksum stores in the TCP checksum field the pseudo-header sum
// that a partial checksum starts from (the Linux CHECKSUM_PARTIAL
// convention): whoever completes it sums from the TCP header to the end.
func setPartialChecksum(pkt []byte, ihl int) {
	ip := header.IPv4(pkt)
	sum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(pkt)-ihl))
	header.TCP(pkt[ihl:]).SetChecksum(sum)
}

// setFullChecksum computes the TCP checksum in software.
func setFullChecksum(pkt []byte, ihl int) {
	ip := header.IPv4(pkt)
	tcp := header.TCP(pkt[ihl:])
	tcp.SetChecksum(0)
	tcp.SetChecksum(header.TCPChecksum(ip.SourceAddress(), ip.DestinationAddress(), tcp))
}
