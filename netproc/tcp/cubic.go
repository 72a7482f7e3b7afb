package tcp

import (
	"math"
	"time"
)

// CUBIC constants (RFC 9438, 4.1).
const (
	cubicC    = 0.4
	cubicBeta = 0.7
	// cubicAlpha makes the Reno-friendly estimate grow like Reno with the
	// same average window (RFC 9438, 4.3).
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta)
)

// cubicState is CUBIC's part of CCState. Windows are in segments.
type cubicState struct {
	wMax     float64 // window before the last reduction (W_max)
	k        float64 // seconds from the epoch to reach W_max (K)
	wEst     float64 // Reno-friendly estimate (W_est)
	epoch    Time    // start of the congestion-avoidance stage; zero: not started
	afterRTO bool    // the stage follows a timeout: K = 0, W_max = cwnd (RFC 9438, 4.8)
}

// cubic is RFC 9438's CUBIC.
type cubic struct{}

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
	mss := float64(ev.MSS)
	cwnd := float64(s.Cwnd) / mss
	if cs.epoch == 0 {
		// A congestion-avoidance stage begins (RFC 9438, 4.2).
		cs.epoch = ev.Now
		if cs.afterRTO || cs.wMax == 0 || cs.wMax < cwnd {
			cs.wMax = cwnd
			cs.k = 0
		} else {
			cs.k = math.Cbrt((cs.wMax - cwnd) / cubicC) // equation (2)
		}
		cs.afterRTO = false
		cs.wEst = cwnd
	}
	rtt := ev.SRTT
	if rtt <= 0 {
		rtt = 100 * time.Millisecond
	}
	t := ev.Now.Sub(cs.epoch).Seconds() + rtt.Seconds()
	target := cubicC*math.Pow(t-cs.k, 3) + cs.wMax // equation (1) at t+RTT
	target = max(cwnd, min(target, 1.5*cwnd))      // RFC 9438, 4.4
	acked := float64(ev.Acked) / mss
	cs.wEst += cubicAlpha * acked / cwnd // equation (4)
	if cubicC*math.Pow(t-rtt.Seconds()-cs.k, 3)+cs.wMax < cs.wEst {
		cwnd = max(cwnd, cs.wEst) // Reno-friendly region (RFC 9438, 4.3)
	} else {
		cwnd += (target - cwnd) / cwnd * acked // concave or convex region
	}
	if math.IsNaN(cwnd) || math.IsInf(cwnd, 0) {
		return
	}
	s.Cwnd = uint32(min(cwnd*mss, float64(infiniteSsthresh)))
}

// reduce applies the multiplicative decrease and fast convergence
// (RFC 9438, 4.6 and 4.7).
func (cubic) reduce(s *CCState, ev CCEvent) {
	cs := &s.cubic
	cwnd := float64(s.Cwnd) / float64(ev.MSS)
	if cwnd < cs.wMax {
		cs.wMax = cwnd * (1 + cubicBeta) / 2
	} else {
		cs.wMax = cwnd
	}
	s.Ssthresh = max(uint32(float64(s.Cwnd)*cubicBeta), 2*ev.MSS)
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
