package tcp

import (
	"math/bits"
	"time"
)

// CUBIC (RFC 9438) in integer arithmetic, so that a connection's window,
// and with it every simulated run and golden script, is the same on every
// architecture (floating point, fused multiply-add in particular, is not),
// and so is the state persisted in shared memory. Windows are in segments
// with 16 fractional bits (fx: 1<<16 is one segment), times in
// milliseconds.
//
// The constants are exact fractions: C = 0.4 = 2/5, beta = 0.7 = 7/10,
// and alpha = 3(1-beta)/(1+beta) = 9/17 (RFC 9438, 4.1 and 4.3).
const (
	fxOne = 1 << 16
	// cubicMaxMs bounds t-K in equation (1): beyond it the cube would
	// overflow, and the window is clamped by 4.4 long before.
	cubicMaxMs = 1 << 20
)

// cubicState is CUBIC's part of CCState.
type cubicState struct {
	wMax     uint64 // window before the last reduction (W_max), fx segments
	k        int64  // milliseconds from the epoch to reach W_max (K)
	wEst     uint64 // Reno-friendly estimate (W_est), fx segments
	epoch    Time   // start of the congestion-avoidance stage; zero: not started
	afterRTO bool   // the stage follows a timeout: K = 0, W_max = cwnd (RFC 9438, 4.8)
}

// cubic is RFC 9438's CUBIC.
type cubic struct{}

// toFx converts bytes to fx segments.
func toFx(bytes, mss uint32) uint64 { return uint64(bytes) << 16 / uint64(mss) }

// cbrt64 returns the integer cube root of x, rounded down.
func cbrt64(x uint64) uint64 {
	if x == 0 {
		return 0
	}
	// Start from a power of two at or above the root; Newton's iteration
	// then decreases monotonically onto it.
	r := uint64(1) << ((bits.Len64(x) + 2) / 3)
	for {
		n := (2*r + x/(r*r)) / 3
		if n >= r {
			break
		}
		r = n
	}
	const maxRoot = 2642245 // cbrt(2^64-1): beyond it a cube overflows
	r = min(r, maxRoot)
	for r*r*r > x {
		r--
	}
	for r < maxRoot && (r+1)*(r+1)*(r+1) <= x {
		r++
	}
	return r
}

// cubicK returns K in milliseconds for a window dw (fx segments) below
// W_max: cbrt(dw/C) seconds (RFC 9438, equation 2).
func cubicK(dw uint64) int64 {
	// dw/C seconds^3 = dw/2^16 * 5/2 * 1e9 ms^3.
	hi, lo := bits.Mul64(dw, 5e9)
	if hi >= 2<<16 {
		return cubicMaxMs
	}
	q, _ := bits.Div64(hi, lo, 2<<16)
	return min(int64(cbrt64(q)), cubicMaxMs)
}

// cubicW returns W_cubic at d milliseconds from K, in fx segments:
// C*(d/1000)^3 + W_max (RFC 9438, equation 1), at least zero.
func cubicW(wMax uint64, d int64) uint64 {
	d = max(min(d, cubicMaxMs), -cubicMaxMs)
	a := uint64(d)
	if d < 0 {
		a = uint64(-d)
	}
	// C*a^3/1e9 segments = a^3 * 2^17 / 5e9 fx.
	hi, lo := bits.Mul64(a*a*a, 2<<16)
	q, _ := bits.Div64(hi, lo, 5e9)
	if d >= 0 {
		return wMax + q
	}
	if q >= wMax {
		return 0
	}
	return wMax - q
}

func (cubic) Init(s *CCState, ev CCEvent) {
	s.Cwnd = initialWindow(ev.MSS)
	s.Ssthresh = infiniteSsthresh
	s.acked = 0
	s.cubic = cubicState{}
}

func (cubic) OnAck(s *CCState, ev CCEvent) {
	if s.Cwnd < s.Ssthresh {
		slowStart(s, ev)
		return
	}
	cs := &s.cubic
	cwnd := toFx(s.Cwnd, ev.MSS)
	if cwnd == 0 {
		return
	}
	if cs.epoch == 0 {
		// A congestion-avoidance stage begins (RFC 9438, 4.2).
		cs.epoch = ev.Now
		if cs.afterRTO || cs.wMax == 0 || cs.wMax < cwnd {
			cs.wMax = cwnd
			cs.k = 0
		} else {
			cs.k = cubicK(cs.wMax - cwnd)
		}
		cs.afterRTO = false
		cs.wEst = cwnd
	}
	rtt := ev.SRTT
	if rtt <= 0 {
		rtt = 100 * time.Millisecond
	}
	elapsed := int64(ev.Now.Sub(cs.epoch) / time.Millisecond)
	rttMs := int64(rtt / time.Millisecond)
	target := cubicW(cs.wMax, elapsed+rttMs-cs.k)                 // equation (1) at t+RTT
	target = max(cwnd, min(target, cwnd+cwnd/2))                  // RFC 9438, 4.4
	cs.wEst += 9 * uint64(ev.Acked) << 16 / (17 * uint64(s.Cwnd)) // equation (4)
	var next uint64
	if cubicW(cs.wMax, elapsed-cs.k) < cs.wEst {
		next = max(cwnd, cs.wEst) // Reno-friendly region (RFC 9438, 4.3)
	} else {
		// Concave or convex region: (target-cwnd)/cwnd per segment acked.
		next = cwnd + (target-cwnd)*uint64(ev.Acked)/uint64(s.Cwnd)
	}
	// toFx rounded the window down: never let that shrink it.
	bytes := max(next*uint64(ev.MSS)>>16, uint64(s.Cwnd))
	s.Cwnd = uint32(min(bytes, infiniteSsthresh))
}

// reduce applies the multiplicative decrease and fast convergence
// (RFC 9438, 4.6 and 4.7).
func (cubic) reduce(s *CCState, ev CCEvent) {
	cs := &s.cubic
	cwnd := toFx(s.Cwnd, ev.MSS)
	if cwnd < cs.wMax {
		cs.wMax = cwnd * 17 / 20 // cwnd * (1+beta)/2
	} else {
		cs.wMax = cwnd
	}
	s.Ssthresh = max(uint32(uint64(s.Cwnd)*7/10), 2*ev.MSS)
	cs.epoch = 0
}

func (c cubic) OnCongestion(s *CCState, ev CCEvent) {
	c.reduce(s, ev)
	s.Cwnd = s.Ssthresh
}

func (c cubic) OnTimeout(s *CCState, ev CCEvent) {
	if !ev.Repeated {
		c.reduce(s, ev)
	}
	s.cubic.epoch = 0
	s.cubic.afterRTO = true
	s.Cwnd = ev.MSS
}
