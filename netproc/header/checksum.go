package header

import (
	"encoding/binary"
	"math/bits"
)

// Checksum returns the 16-bit one's complement sum (RFC 1071) of buf added
// to initial, not complemented. A buffer whose stored checksum is correct sums
// to 0xffff; the value to store in a checksum field is ^Checksum(...) of the
// covered bytes with that field zero.
//
// An odd final byte is summed as if followed by a zero byte (RFC 1071,
// section 4.1), so Checksum over a concatenation equals ChecksumCombine of
// the parts only when every part but the last has even length.
func Checksum(buf []byte, initial uint16) uint16 {
	// Sum 64-bit big-endian words with end-around carry: one's complement
	// addition is associative and commutative, so the folding at the end
	// gives the same 16-bit sum as adding 16-bit words (RFC 1071, 2(B)).
	sum := uint64(initial)
	var carry uint64
	for len(buf) >= 32 {
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(buf[0:8]), 0)
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(buf[8:16]), carry)
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(buf[16:24]), carry)
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(buf[24:32]), carry)
		sum, carry = bits.Add64(sum, 0, carry)
		sum += carry
		buf = buf[32:]
	}
	for len(buf) >= 8 {
		sum, carry = bits.Add64(sum, binary.BigEndian.Uint64(buf), 0)
		sum += carry
		buf = buf[8:]
	}
	if len(buf) >= 4 {
		sum, carry = bits.Add64(sum, uint64(binary.BigEndian.Uint32(buf)), 0)
		sum += carry
		buf = buf[4:]
	}
	if len(buf) >= 2 {
		sum, carry = bits.Add64(sum, uint64(binary.BigEndian.Uint16(buf)), 0)
		sum += carry
		buf = buf[2:]
	}
	if len(buf) == 1 {
		sum, carry = bits.Add64(sum, uint64(buf[0])<<8, 0)
		sum += carry
	}
	return fold64(sum)
}

// fold64 folds a 64-bit one's complement sum to 16 bits.
func fold64(sum uint64) uint16 {
	sum = (sum >> 32) + (sum & 0xffffffff)
	sum = (sum >> 32) + (sum & 0xffffffff)
	sum = (sum >> 16) + (sum & 0xffff)
	sum = (sum >> 16) + (sum & 0xffff)
	return uint16(sum)
}

// ChecksumCombine adds two one's complement sums.
func ChecksumCombine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// PseudoHeaderChecksum returns the one's complement sum of the IPv4
// pseudo-header that the TCP checksum covers (RFC 9293, section 3.1): source
// and destination address, zero, protocol, and the TCP length (header plus
// data, not counting the IP header).
func PseudoHeaderChecksum(protocol uint8, src, dst IPv4Addr, length uint16) uint16 {
	sum := uint32(src[0])<<8 | uint32(src[1])
	sum += uint32(src[2])<<8 | uint32(src[3])
	sum += uint32(dst[0])<<8 | uint32(dst[1])
	sum += uint32(dst[2])<<8 | uint32(dst[3])
	sum += uint32(protocol)
	sum += uint32(length)
	sum = (sum >> 16) + (sum & 0xffff)
	sum = (sum >> 16) + (sum & 0xffff)
	return uint16(sum)
}

// ChecksumUpdate returns the checksum field value after a 16-bit word covered
// by it changed from old to new, without summing the data again. hc is the
// stored (complemented) checksum. It is RFC 1624's equation 3,
// HC' = ~(~HC + ~m + m'), which unlike RFC 1141's equation never produces
// the -0 (0x0000 for a nonzero sum) that a full recomputation would not.
func ChecksumUpdate(hc, old, new uint16) uint16 {
	s := uint32(^hc) + uint32(^old) + uint32(new)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return ^uint16(s)
}

// ChecksumUpdate32 is ChecksumUpdate for a 32-bit field (an address, a
// sequence number) aligned on a 16-bit boundary of the covered data.
func ChecksumUpdate32(hc uint16, old, new uint32) uint16 {
	hc = ChecksumUpdate(hc, uint16(old>>16), uint16(new>>16))
	return ChecksumUpdate(hc, uint16(old), uint16(new))
}
