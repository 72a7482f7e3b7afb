package tcp

import (
	"time"

	"saturn/netproc/tcp/seqnum"
)

// SYN cookies, in Linux's format (net/ipv4/syncookies.c), so that their
// strength and limits are well understood:
//
//	cookie = H1(tuple) + peer ISN + (count << 24) + ((H2(tuple, count, peer ISN) + mssIndex) & (2^24-1))
//
// where count is a minute counter (64-second periods here) and H1, H2 are
// SipHash-2-4 keyed by the listener's Secret. Unlike Linux, H2 covers the
// peer's ISN too: in Linux's form a segment whose SEQ and ACK are both
// shifted by the same amount from the handshake's (the last ACK of a
// connection closed with FINs, for one) passes the check, so a late
// duplicate could raise a ghost connection. A cookie is accepted for
// cookieMaxAge periods. The MSS is one of four values (2 bits). When the
// SYN carried timestamps, the low 6 bits of our TSval encode the peer's
// window scale (4 bits, 15 for none) and SACK-permitted (1 bit), as Linux
// does; without timestamps the connection runs without window scaling and
// SACK, because nothing remembers whether the peer offered them.
const (
	cookieBits   = 24
	cookieMask   = 1<<cookieBits - 1
	cookiePeriod = 64 * time.Second
	cookieMaxAge = 2
	tsOptBits    = 6
	tsOptMask    = 1<<tsOptBits - 1
	tsOptWSNone  = 0xf
	tsOptSACK    = 1 << 4
)

// cookieMSS are the MSS values a cookie can carry (Linux's msstab).
var cookieMSS = [4]uint16{536, 1300, 1440, 1460}

// cookieCount returns the cookie clock.
func cookieCount(now Time) uint32 { return uint32(int64(now) / int64(cookiePeriod)) }

// cookieMSSIndex picks the largest table MSS not above mss.
func cookieMSSIndex(mss uint16) uint32 {
	i := len(cookieMSS) - 1
	for i > 0 && cookieMSS[i] > mss {
		i--
	}
	return uint32(i)
}

// makeCookie returns our ISS for a SYN answered statelessly.
func makeCookie(secret Secret, t Tuple, irs seqnum.Value, now Time, mssIndex uint32) seqnum.Value {
	count := cookieCount(now)
	h1 := uint32(tupleHash(secret, t, domainCookie1, 0, 0))
	h2 := uint32(tupleHash(secret, t, domainCookie2, count, uint32(irs)))
	return seqnum.Value(h1 + uint32(irs) + count<<cookieBits + (h2+mssIndex)&cookieMask)
}

// checkCookie validates the cookie acknowledged by a bare ACK (iss = ACK-1,
// irs = SEQ-1) and returns the MSS index it carries.
func checkCookie(secret Secret, t Tuple, irs, iss seqnum.Value, now Time) (uint32, bool) {
	count := cookieCount(now)
	h1 := uint32(tupleHash(secret, t, domainCookie1, 0, 0))
	v := uint32(iss) - h1 - uint32(irs)
	age := (count - v>>cookieBits) & (1<<(32-cookieBits) - 1)
	if age >= cookieMaxAge {
		return 0, false
	}
	h2 := uint32(tupleHash(secret, t, domainCookie2, count-age, uint32(irs)))
	idx := (v - h2) & cookieMask
	if idx >= uint32(len(cookieMSS)) {
		return 0, false
	}
	return idx, true
}

// cookieTSVal folds the peer's window scale and SACK permission into the
// low bits of a TSval no later than tsNow (Linux cookie_init_timestamp).
func cookieTSVal(tsNow uint32, peerWS int8, sack bool) uint32 {
	opts := uint32(tsOptWSNone)
	if peerWS >= 0 {
		opts = uint32(min(peerWS, maxWindowShift))
	}
	if sack {
		opts |= tsOptSACK
	}
	ts := tsNow&^tsOptMask | opts
	if int32(ts-tsNow) > 0 {
		ts -= 1 << tsOptBits
	}
	return ts
}

// cookieTSDecode recovers what cookieTSVal stored from the echoed TSecr.
func cookieTSDecode(tsecr uint32) (peerWS int8, sack, ok bool) {
	ws := tsecr & 0xf
	switch {
	case ws == tsOptWSNone:
		peerWS = -1
	case ws > maxWindowShift:
		return 0, false, false
	default:
		peerWS = int8(ws)
	}
	return peerWS, tsecr&tsOptSACK != 0, true
}
