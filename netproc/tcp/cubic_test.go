package tcp

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestCubicRoot checks the integer cube root against its definition.
func TestCubicRoot(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		x := r.Uint64() >> r.IntN(64)
		c := cbrt64(x)
		if c*c*c > x || (c+1)*(c+1)*(c+1) <= x && c < 2642245 {
			t.Fatalf("cbrt64(%d) = %d", x, c)
		}
	}
	for _, x := range []uint64{0, 1, 7, 8, 26, 27, 1 << 63, math.MaxUint64} {
		c := cbrt64(x)
		if c*c*c > x {
			t.Errorf("cbrt64(%d) = %d", x, c)
		}
	}
}

// cubicModel is RFC 9438 in floating point, as the equations read: the
// naive model the integer implementation is checked against.
type cubicModel struct {
	cwnd, wMax, k, wEst float64 // segments, seconds
	epoch               float64
	started             bool
}

func (m *cubicModel) onAck(now, rtt, acked float64) {
	const c, beta = 0.4, 0.7
	alpha := 3 * (1 - beta) / (1 + beta)
	if !m.started {
		m.started, m.epoch = true, now
		if m.wMax < m.cwnd {
			m.wMax, m.k = m.cwnd, 0
		} else {
			m.k = math.Cbrt((m.wMax - m.cwnd) / c)
		}
		m.wEst = m.cwnd
	}
	t := now - m.epoch
	target := max(m.cwnd, min(c*math.Pow(t+rtt-m.k, 3)+m.wMax, 1.5*m.cwnd))
	m.wEst += alpha * acked / m.cwnd
	if c*math.Pow(t-m.k, 3)+m.wMax < m.wEst {
		m.cwnd = max(m.cwnd, m.wEst)
	} else {
		m.cwnd += (target - m.cwnd) / m.cwnd * acked
	}
}

// TestCubicAgainstModel runs the integer CUBIC and the floating-point
// equations side by side through random congestion-avoidance stages (RTTs
// from 1 ms to 300 ms, windows from 4 to 500 segments) and requires the
// windows to agree within 1% (the integer version counts time in whole
// milliseconds).
func TestCubicAgainstModel(t *testing.T) {
	const mss = 1448
	r := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 60; trial++ {
		w := 4 + r.IntN(500)
		rtt := time.Duration(1+r.IntN(300)) * time.Millisecond
		s := CCState{Algo: CCCubic}
		cubic{}.Init(&s, CCEvent{MSS: mss})
		s.Cwnd = uint32(w * mss)
		cubic{}.OnCongestion(&s, CCEvent{MSS: mss})
		s.Ssthresh = s.Cwnd
		m := cubicModel{cwnd: float64(s.Cwnd) / mss, wMax: float64(w)}
		now := Time(time.Hour)
		for round := 0; round < 100; round++ {
			acks := int(s.Cwnd / mss)
			for i := 0; i < acks; i++ {
				cubic{}.OnAck(&s, CCEvent{Now: now, MSS: mss, Acked: mss, SRTT: rtt})
				m.onAck(float64(now)/1e9, rtt.Seconds(), 1)
			}
			got, want := float64(s.Cwnd)/mss, m.cwnd
			if math.Abs(got-want) > 0.01*want+1 {
				t.Fatalf("trial %d (W %d, RTT %v), round %d: cwnd %.2f segments, the equations give %.2f", trial, w, rtt, round, got, want)
			}
			now = now.Add(rtt)
		}
	}
}
