package tcp

import (
	"encoding/binary"
	"math/bits"
	"time"

	"saturn/netproc/tcp/seqnum"
)

// Secret is a 128-bit key for the keyed hashes behind ISNs, timestamp
// offsets and SYN cookies. The shell draws it from a random source at start
// and may keep it in shared memory so that a restarted netproc keeps
// validating the cookies it handed out.
type Secret [16]byte

// Hash domains, so that one secret serves several unrelated uses.
const (
	domainISN byte = iota + 1
	domainTSOffset
	domainCookie1
	domainCookie2
)

// ISN returns the initial sequence number for a connection on tuple t at
// time now, as RFC 6528 (section 3) prescribes: ISN = M + F(4-tuple, key),
// where M ticks every 4 microseconds and F is SipHash-2-4 keyed by secret
// (Linux's choice of F too). A new incarnation of a tuple thus starts above
// the old one, and an off-path attacker cannot guess it.
func ISN(secret Secret, t Tuple, now Time) seqnum.Value {
	m := uint32(int64(now) / int64(4*time.Microsecond))
	return seqnum.Value(m + uint32(tupleHash(secret, t, domainISN, 0, 0)))
}

// TSOffset returns the per-connection offset added to our timestamp clock
// (RFC 7323, 5.4 and 7.1), so TSval reveals neither uptime nor the clock of
// other connections.
func TSOffset(secret Secret, t Tuple) uint32 {
	return uint32(tupleHash(secret, t, domainTSOffset, 0, 0))
}

// tupleHash is SipHash-2-4 of the tuple, a domain tag and two extra words.
func tupleHash(secret Secret, t Tuple, domain byte, a, b uint32) uint64 {
	var m [16 + 16 + 2 + 2 + 1 + 4 + 4]byte
	copy(m[0:], t.LocalAddr[:])
	copy(m[16:], t.RemoteAddr[:])
	binary.BigEndian.PutUint16(m[32:], t.LocalPort)
	binary.BigEndian.PutUint16(m[34:], t.RemotePort)
	m[36] = domain
	binary.BigEndian.PutUint32(m[37:], a)
	binary.BigEndian.PutUint32(m[41:], b)
	return sipHash24(binary.LittleEndian.Uint64(secret[:8]), binary.LittleEndian.Uint64(secret[8:]), m[:])
}

// sipHash24 is SipHash-2-4 (Aumasson and Bernstein, 2012).
func sipHash24(k0, k1 uint64, m []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	last := uint64(len(m)) << 56
	for ; len(m) >= 8; m = m[8:] {
		w := binary.LittleEndian.Uint64(m)
		v3 ^= w
		round()
		round()
		v0 ^= w
	}
	for i, b := range m {
		last |= uint64(b) << (8 * i)
	}
	v3 ^= last
	round()
	round()
	v0 ^= last
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
