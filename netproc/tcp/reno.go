package tcp

// reno is RFC 5681's slow start and congestion avoidance. NewReno's
// recovery (RFC 6582) is done by the connection.
type reno struct{}

func (reno) Init(s *CCState, ev CCEvent) {
	s.Cwnd = initialWindow(ev.MSS)
	s.Ssthresh = infiniteSsthresh
	s.acked = 0
}

func (reno) OnAck(s *CCState, ev CCEvent) {
	if s.Cwnd < s.Ssthresh {
		slowStart(s, ev)
		return
	}
	// Congestion avoidance with byte counting (RFC 5681, 3.1, the
	// alternative to equation (3)): one SMSS per cwnd of bytes acknowledged.
	s.acked += ev.Acked
	if s.acked >= s.Cwnd {
		s.acked -= s.Cwnd
		s.Cwnd += ev.MSS
	}
}

func (reno) OnCongestion(s *CCState, ev CCEvent) {
	s.Ssthresh = lossSsthresh(ev.Flight, ev.MSS)
	s.Cwnd = s.Ssthresh
	s.acked = 0
}

func (reno) OnTimeout(s *CCState, ev CCEvent) {
	if !ev.Repeated {
		s.Ssthresh = lossSsthresh(ev.Flight, ev.MSS)
	}
	s.Cwnd = ev.MSS // the loss window (RFC 5681, 3.1)
	s.acked = 0
}
