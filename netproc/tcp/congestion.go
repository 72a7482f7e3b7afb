package tcp

import "time"

// CongestionControl is a congestion-control algorithm (RFC 5681, 3). An
// implementation keeps no state of its own: everything lives in the CCState
// it is handed, which is plain data inside Conn. The connection picks the
// implementation from CCState.Algo on every call, so a Conn stays plain
// data and another algorithm is added by extending the CCAlgorithm enum,
// CCState and ccFor.
//
// The loss-recovery machinery (fast retransmit, NewReno, SACK recovery,
// RTO) lives in the connection; the algorithm only decides how cwnd and
// ssthresh change at each event.
type CongestionControl interface {
	// Init sets the initial window (RFC 5681, 3.1; RFC 6928).
	Init(s *CCState, ev CCEvent)
	// OnAck is called for an ACK of new data outside fast recovery.
	OnAck(s *CCState, ev CCEvent)
	// OnCongestion is called on entering fast recovery. It must set
	// Ssthresh and set Cwnd to the window recovery starts with.
	OnCongestion(s *CCState, ev CCEvent)
	// OnTimeout is called when the retransmission timer expires. It must
	// set Cwnd to the loss window and, unless ev.Repeated, lower Ssthresh.
	OnTimeout(s *CCState, ev CCEvent)
}

// CCEvent describes the event a CongestionControl method reacts to.
type CCEvent struct {
	Now      Time
	MSS      uint32        // sender MSS in bytes
	Acked    uint32        // bytes newly acknowledged (OnAck)
	Flight   uint32        // bytes in flight before the event (FlightSize)
	SRTT     time.Duration // smoothed RTT, zero before the first sample
	Repeated bool          // OnTimeout: a further timeout of the same data
}

// CCState is the congestion-control state: plain data.
type CCState struct {
	Algo     CCAlgorithm
	Cwnd     uint32 // congestion window, bytes
	Ssthresh uint32 // slow-start threshold, bytes

	acked uint32 // bytes acknowledged towards the next increase in congestion avoidance
	cubic cubicState
	bbr   bbrState
}

// infiniteSsthresh is the initial ssthresh: "arbitrarily high"
// (RFC 5681, 3.1).
const infiniteSsthresh = 1 << 30

// ccFor returns the implementation of algorithm a.
func ccFor(a CCAlgorithm) CongestionControl {
	switch a {
	case CCReno:
		return reno{}
	case CCBBR:
		return bbr{}
	}
	return cubic{}
}

// initialWindow returns IW (RFC 6928: min(10*MSS, max(2*MSS, 14600))).
func initialWindow(mss uint32) uint32 {
	return min(10*mss, max(2*mss, 14600))
}

// lossSsthresh returns RFC 5681's equation (4): max(FlightSize/2, 2*SMSS).
func lossSsthresh(flight, mss uint32) uint32 {
	return max(flight/2, 2*mss)
}

// slowStart grows cwnd by the bytes acknowledged, at most 2*SMSS per ACK
// (RFC 5681, 3.1, with RFC 3465's L = 2), not beyond ssthresh by more than
// the increase.
func slowStart(s *CCState, ev CCEvent) {
	s.Cwnd += min(ev.Acked, 2*ev.MSS)
}
