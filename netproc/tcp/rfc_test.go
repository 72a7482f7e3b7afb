package tcp

import (
	"math"
	"testing"
	"time"

	"saturn/netproc/header"
	"saturn/netproc/tcp/seqnum"
)

// RFC 9293, 3.10.7.4, first check: the segment acceptance table.
func TestAcceptableTable(t *testing.T) {
	tests := []struct {
		name   string
		seq    seqnum.Value
		len    seqnum.Size
		wnd    uint32
		accept bool
	}{
		{"empty, zero window, at RCV.NXT", 100, 0, 0, true},
		{"empty, zero window, elsewhere", 101, 0, 0, false},
		{"empty, in window", 150, 0, 100, true},
		{"empty, at right edge", 200, 0, 100, true}, // widened, see acceptable
		{"empty, beyond right edge", 201, 0, 100, false},
		{"empty, old", 99, 0, 100, false},
		{"data, zero window", 100, 10, 0, false},
		{"data, starts in window", 190, 50, 100, true},
		{"data, ends in window", 90, 20, 100, true},
		{"data, entirely old", 50, 50, 100, false},
		{"data, beyond window", 200, 10, 100, false},
		{"data, covers the whole window", 50, 300, 100, true}, // widened, see acceptable
		{"wraps around zero", 0xfffffff0, 0x20, 100, true},
	}
	for _, tt := range tests {
		nxt := seqnum.Value(100)
		if tt.name == "wraps around zero" {
			nxt = 5
		}
		if got := acceptable(tt.seq, tt.len, nxt, tt.wnd); got != tt.accept {
			t.Errorf("%s: acceptable = %v, want %v", tt.name, got, tt.accept)
		}
	}
}

// RFC 9293, 3.10.7.1: the reset for a segment that finds no connection.
func TestResetForClosed(t *testing.T) {
	withACK := Segment{Seq: 10, Ack: 500, Flags: FlagACK, Payload: make([]byte, 5)}
	r, ok := ResetFor(&withACK)
	if !ok || r.Flags != FlagRST || r.Seq != 500 {
		t.Errorf("ACK segment: got %v %v, want <SEQ=SEG.ACK><CTL=RST>", r, ok)
	}
	syn := Segment{Seq: 10, Flags: FlagSYN | FlagFIN, Payload: make([]byte, 5)}
	r, ok = ResetFor(&syn)
	if !ok || r.Flags != FlagRST|FlagACK || r.Seq != 0 || r.Ack != 17 {
		t.Errorf("no ACK: got %v %v, want <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> with SYN and FIN counted", r, ok)
	}
	rst := Segment{Flags: FlagRST}
	if _, ok := ResetFor(&rst); ok {
		t.Error("a RST must never be answered")
	}
}

// RFC 7323, 2.3: the smallest shift that covers the buffer, at most 14.
func TestWindowShift(t *testing.T) {
	for _, tt := range []struct {
		size  uint32
		shift uint8
	}{{65535, 0}, {65536, 1}, {131071, 1}, {131072, 2}, {1 << 20, 5}, {1 << 31, 14}} {
		if got := windowShiftFor(tt.size); got != tt.shift {
			t.Errorf("windowShiftFor(%d) = %d, want %d", tt.size, got, tt.shift)
		}
	}
}

// RFC 6298, 2.2 and 2.3: the first sample sets SRTT = R and RTTVAR = R/2;
// later ones smooth with alpha = 1/8 and beta = 1/4; RTO = SRTT +
// max(G, 4*RTTVAR), clamped to [MinRTO, MaxRTO]; 5.5: back-off doubles.
func TestRTOEstimator(t *testing.T) {
	c := Conn{cfg: Config{MinRTO: 200 * time.Millisecond, MaxRTO: 60 * time.Second}.withDefaults()}
	c.sample(100 * time.Millisecond)
	if c.rtt.srtt != 100*time.Millisecond || c.rtt.rttvar != 50*time.Millisecond || c.rtt.rto != 300*time.Millisecond {
		t.Errorf("first sample: srtt %v rttvar %v rto %v", c.rtt.srtt, c.rtt.rttvar, c.rtt.rto)
	}
	c.sample(300 * time.Millisecond)
	// rttvar = 3/4*50 + 1/4*|100-300| = 87.5ms; srtt = 7/8*100 + 1/8*300 = 125ms.
	if c.rtt.srtt != 125*time.Millisecond || c.rtt.rttvar != 87500*time.Microsecond {
		t.Errorf("second sample: srtt %v rttvar %v", c.rtt.srtt, c.rtt.rttvar)
	}
	if c.rtt.rto != 475*time.Millisecond {
		t.Errorf("rto %v, want 475ms", c.rtt.rto)
	}
	c.sample(time.Millisecond)
	for i := 0; i < 50; i++ {
		c.sample(time.Millisecond)
	}
	if c.rtt.rto != 200*time.Millisecond {
		t.Errorf("rto %v, want the 200ms floor", c.rtt.rto)
	}
	c.rtt.backoff = 3
	if got := c.currentRTO(); got != 1600*time.Millisecond {
		t.Errorf("backed-off rto %v, want 1.6s", got)
	}
	c.rtt.backoff = 30
	if got := c.currentRTO(); got != 60*time.Second {
		t.Errorf("backed-off rto %v, want the 60s cap", got)
	}
}

// RFC 6928: IW = min(10*MSS, max(2*MSS, 14600)).
func TestInitialWindow(t *testing.T) {
	for _, tt := range []struct{ mss, iw uint32 }{{1460, 14600}, {536, 5360}, {9000, 18000}, {1000, 10000}} {
		if got := initialWindow(tt.mss); got != tt.iw {
			t.Errorf("IW(%d) = %d, want %d", tt.mss, got, tt.iw)
		}
	}
}

// RFC 5681, 3.1: in congestion avoidance cwnd grows by about one SMSS per
// window of data acknowledged; on loss ssthresh = max(FlightSize/2, 2*SMSS).
func TestRenoGrowth(t *testing.T) {
	s := CCState{Algo: CCReno}
	reno{}.Init(&s, CCEvent{MSS: 1000})
	s.Ssthresh = 10000
	s.Cwnd = 10000
	for i := 0; i < 10; i++ {
		reno{}.OnAck(&s, CCEvent{MSS: 1000, Acked: 1000})
	}
	if s.Cwnd != 11000 {
		t.Errorf("cwnd after one window = %d, want 11000", s.Cwnd)
	}
	reno{}.OnCongestion(&s, CCEvent{MSS: 1000, Flight: 3000})
	if s.Ssthresh != 2000 || s.Cwnd != 2000 {
		t.Errorf("after loss: cwnd %d ssthresh %d, want 2000 2000", s.Cwnd, s.Ssthresh)
	}
	reno{}.OnTimeout(&s, CCEvent{MSS: 1000, Flight: 20000})
	if s.Ssthresh != 10000 || s.Cwnd != 1000 {
		t.Errorf("after timeout: cwnd %d ssthresh %d", s.Cwnd, s.Ssthresh)
	}
}

// RFC 9438: multiplicative decrease by beta = 0.7 (4.6), fast convergence
// (4.7), and the cubic curve returning to W_max after K seconds (4.2).
func TestCubic(t *testing.T) {
	const mss = 1000
	s := CCState{Algo: CCCubic}
	cubic{}.Init(&s, CCEvent{MSS: mss})
	s.Cwnd, s.Ssthresh = 100*mss, 50*mss
	cubic{}.OnCongestion(&s, CCEvent{MSS: mss})
	if s.Cwnd != 70*mss || s.cubic.wMax != 100*fxOne {
		t.Fatalf("after loss: cwnd %d wMax %v, want 70000 and 100", s.Cwnd, s.cubic.wMax)
	}
	// K = cbrt(W_max*(1-beta)/C) = cbrt(100*0.3/0.4) = cbrt(75) ~ 4.217s.
	now := Time(time.Hour)
	rtt := 100 * time.Millisecond
	cubic{}.OnAck(&s, CCEvent{Now: now, MSS: mss, Acked: mss, SRTT: rtt})
	if k := float64(s.cubic.k) / 1000; math.Abs(k-math.Cbrt(75)) > 0.002 {
		t.Errorf("K = %vs, want %v", k, math.Cbrt(75))
	}
	// Ack a window per RTT for K seconds: cwnd approaches W_max from below
	// (concave region) and does not overshoot it by much.
	for ts := rtt; ts <= 4200*time.Millisecond; ts += rtt {
		acks := int(s.Cwnd / mss)
		for i := 0; i < acks; i++ {
			cubic{}.OnAck(&s, CCEvent{Now: now.Add(ts), MSS: mss, Acked: mss, SRTT: rtt})
		}
	}
	if w := float64(s.Cwnd) / mss; w < 95 || w > 105 {
		t.Errorf("cwnd after K = %.1f segments, want about W_max = 100", w)
	}
	// A second loss below W_max triggers fast convergence.
	s.Cwnd = 90 * mss
	cubic{}.OnCongestion(&s, CCEvent{MSS: mss})
	if want := 90 * (1 + 0.7) / 2; math.Abs(float64(s.cubic.wMax)/fxOne-want) > 1e-4 {
		t.Errorf("fast convergence W_max = %v, want %v", float64(s.cubic.wMax)/fxOne, want)
	}
	cubic{}.OnTimeout(&s, CCEvent{MSS: mss})
	if s.Cwnd != mss || !s.cubic.afterRTO {
		t.Errorf("after timeout: cwnd %d", s.Cwnd)
	}
}

// RFC 6675, 4 (IsLost) and the pipe estimate.
func TestScoreboard(t *testing.T) {
	var sb scoreboard
	una, nxt := seqnum.Value(1000), seqnum.Value(11000)
	blocks := []header.SACKBlock{{Start: 3000, End: 3100}, {Start: 5000, End: 5100}}
	if !sb.update(blocks, una, nxt) || sb.n != 2 {
		t.Fatalf("update: n=%d", sb.n)
	}
	if sb.update(blocks[:1], una, nxt) {
		t.Error("an old block counts as new information")
	}
	// Two ranges, 200 bytes: neither DupThresh ranges nor more than
	// (DupThresh-1)*SMSS bytes lie above any hole.
	if e := sb.lostEdge(una, 1000); e != una {
		t.Errorf("lost edge %d with two small ranges, want none", e)
	}
	sb.update([]header.SACKBlock{{Start: 7000, End: 7100}}, una, nxt)
	// Three discontiguous ranges: everything below the third-highest is lost.
	if e := sb.lostEdge(una, 1000); e != 3000 {
		t.Errorf("lost edge %d with three ranges, want 3000", e)
	}
	// 2001 bytes (more than 2*SMSS) are SACKed above 7099: lost below it.
	sb.update([]header.SACKBlock{{Start: 8000, End: 10000}}, una, nxt)
	if e := sb.lostEdge(una, 1000); e != 7099 {
		t.Errorf("lost edge %d, want 7099", e)
	}
	sb.update([]header.SACKBlock{{Start: 3100, End: 5000}}, una, nxt) // merges two ranges
	if sb.n != 3 || sb.blocks[0] != (seqRange{3000, 5100}) {
		t.Errorf("merge: %v", sb.blocks[:sb.n])
	}
	if got := sb.sackedIn(una, nxt); got != 4200 {
		t.Errorf("sacked %d, want 4200", got)
	}
	s, e := sb.nextHole(3000, nxt)
	if s != 5100 || e != 7000 {
		t.Errorf("next hole from 3000 = [%d,%d), want [5100,7000)", s, e)
	}
	sb.advance(5000)
	if sb.blocks[0].start != 5000 {
		t.Errorf("advance: %v", sb.blocks[:sb.n])
	}
	// Blocks outside (una, nxt] are ignored (stale or D-SACK).
	if sb.update([]header.SACKBlock{{Start: 500, End: 900}, {Start: 11000, End: 12000}}, 5000, nxt) {
		t.Error("out-of-range block accepted")
	}
	// A full table forgets its highest range rather than fail.
	var full scoreboard
	for i := 0; i < sackSlots+5; i++ {
		s := uint32(2000 + 100*i)
		full.update([]header.SACKBlock{{Start: s, End: s + 50}}, una, 100000)
	}
	if full.n != sackSlots {
		t.Errorf("full table holds %d", full.n)
	}
}

// SipHash-2-4 test vector (Aumasson and Bernstein, appendix A): key
// 00..0f, message 00..0e.
func TestSipHashVector(t *testing.T) {
	var k [16]byte
	var m [15]byte
	for i := range k {
		k[i] = byte(i)
	}
	for i := range m {
		m[i] = byte(i)
	}
	k0 := uint64(0x0706050403020100)
	k1 := uint64(0x0f0e0d0c0b0a0908)
	if got := sipHash24(k0, k1, m[:]); got != 0xa129ca6149be45e5 {
		t.Errorf("siphash = %#x, want 0xa129ca6149be45e5", got)
	}
}

// RFC 6528, 3: ISN = M + F(tuple, secret): it advances with the 4us clock
// for one tuple, and differs between tuples and secrets.
func TestISN(t *testing.T) {
	var s1, s2 Secret
	s2[0] = 1
	t1 := Tuple{LocalPort: 80, RemotePort: 1000}
	t2 := Tuple{LocalPort: 80, RemotePort: 1001}
	now := Time(time.Second)
	a := ISN(s1, t1, now)
	if b := ISN(s1, t1, now.Add(40*time.Microsecond)); b-a != 10 {
		t.Errorf("ISN advanced %d in 40us, want 10", b-a)
	}
	if ISN(s1, t2, now) == a || ISN(s2, t1, now) == a {
		t.Error("ISN does not depend on the tuple and the secret")
	}
	if TSOffset(s1, t1) == TSOffset(s1, t2) {
		t.Error("timestamp offset does not depend on the tuple")
	}
}

// SYN cookies: they carry the MSS index, expire after cookieMaxAge
// periods, fail for another tuple or ISN, and the timestamp encoding keeps
// the peer's window scale and SACK permission below our clock.
func TestCookies(t *testing.T) {
	var secret Secret
	secret[3] = 9
	tu := Tuple{LocalPort: 80, RemotePort: 5555}
	now := Time(10 * time.Minute)
	for idx := uint32(0); idx < 4; idx++ {
		c := makeCookie(secret, tu, 777, now, idx)
		got, ok := checkCookie(secret, tu, 777, c, now.Add(cookiePeriod))
		if !ok || got != idx {
			t.Errorf("index %d: got %d %v", idx, got, ok)
		}
		if _, ok := checkCookie(secret, tu, 777, c, now.Add(cookieMaxAge*cookiePeriod+cookiePeriod)); ok {
			t.Errorf("index %d: an expired cookie is accepted", idx)
		}
		if _, ok := checkCookie(secret, tu, 778, c, now); ok {
			t.Errorf("index %d: a cookie for another peer ISN is accepted", idx)
		}
		// SEQ and ACK shifted alike (a late ACK after FINs) must fail.
		if _, ok := checkCookie(secret, tu, 779, c+2, now); ok {
			t.Errorf("index %d: a shifted cookie is accepted", idx)
		}
		other := tu
		other.RemotePort++
		if _, ok := checkCookie(secret, other, 777, c, now); ok {
			t.Errorf("index %d: a cookie for another tuple is accepted", idx)
		}
	}
	if cookieMSSIndex(1400) != 1 || cookieMSSIndex(100) != 0 || cookieMSSIndex(9000) != 3 {
		t.Error("MSS index")
	}
	for _, tt := range []struct {
		ws   int8
		sack bool
	}{{-1, false}, {0, true}, {7, false}, {14, true}} {
		ts := cookieTSVal(123456789, tt.ws, tt.sack)
		if int32(ts-123456789) > 0 {
			t.Errorf("cookie TSval %d is ahead of the clock", ts)
		}
		ws, sack, ok := cookieTSDecode(ts)
		if !ok || ws != tt.ws || sack != tt.sack {
			t.Errorf("decode(%d,%v) = %d %v %v", tt.ws, tt.sack, ws, sack, ok)
		}
	}
}
