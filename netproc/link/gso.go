package link

import (
	"saturn/netproc/header"
)

// SegmentTCPv4 cuts pkt, a TCP/IPv4 packet (see tcpv4Headers), into segments
// of at most mss payload bytes, as the kernel's TSO does (Linux
// tcp_gso_segment): each segment gets the IP header with its own total
// length, an identification incremented per segment and a new header
// checksum, and the TCP header with its sequence number advanced, FIN and
// PSH only on the last segment, CWR only on the first, and a full checksum.
// Each segment is built in scratch, which must hold the headers plus mss
// bytes, and passed to emit before the next is built. It returns the number
// of segments emitted.
func SegmentTCPv4(pkt []byte, mss int, scratch []byte, emit func(seg []byte) error) (int, error) {
	ihl, thl, err := tcpv4Headers(pkt)
	if err != nil {
		return 0, err
	}
	if mss <= 0 || len(scratch) < ihl+thl+mss {
		return 0, ErrShortBuffer
	}
	hdrs := ihl + thl
	payload := pkt[hdrs:]
	ip := header.IPv4(pkt)
	tcp := header.TCP(pkt[ihl:])
	id, seq, flags := ip.ID(), tcp.SequenceNumber(), tcp.Flags()
	count := 0
	for off := 0; off < len(payload) || count == 0; off += mss {
		n := min(mss, len(payload)-off)
		last := off+n == len(payload)
		seg := scratch[:hdrs+n]
		copy(seg, pkt[:hdrs])
		copy(seg[hdrs:], payload[off:off+n])
		sip := header.IPv4(seg)
		sip.SetTotalLength(uint16(hdrs + n))
		sip.SetID(id + uint16(count))
		sip.SetChecksum(0)
		sip.SetChecksum(sip.CalculateChecksum())
		stcp := header.TCP(seg[ihl:])
		stcp.SetSequenceNumber(seq + uint32(off))
		f := flags
		if !last {
			f &^= header.TCPFlagFin | header.TCPFlagPsh
		}
		if count > 0 {
			f &^= header.TCPFlagCwr
		}
		stcp.SetFlags(f)
		setFullChecksum(seg, ihl)
		if err := emit(seg); err != nil {
			return count, err
		}
		count++
		if last {
			break
		}
	}
	return count, nil
}
