package tcp

// Stats are counters in the manner of `netstat -s` (the MIB-II tcp group of
// RFC 1213 and Linux's TcpExt). It is plain data: the shell keeps one Stats
// per stack (it may sit in shared memory), passes it in Mem, and reads or
// publishes it whenever it likes from the goroutine that runs Step.
type Stats struct {
	ActiveOpens  uint64 // connections that sent a SYN (CLOSED -> SYN-SENT)
	PassiveOpens uint64 // connections created by a listener
	AttemptFails uint64 // SYN-SENT/SYN-RECEIVED -> CLOSED, or back to LISTEN
	EstabResets  uint64 // ESTABLISHED/CLOSE-WAIT -> CLOSED by a reset
	CurrEstab    int64  // connections in ESTABLISHED or CLOSE-WAIT now
	InSegs       uint64 // segments received (including bad ones)
	OutSegs      uint64 // segments sent, including retransmissions
	RetransSegs  uint64 // segments retransmitted
	InRsts       uint64 // RSTs received
	OutRsts      uint64 // RSTs sent

	DelayedACKs        uint64 // ACKs sent because the delayed-ACK timer fired
	FastRetransmits    uint64 // fast retransmits (entries into recovery)
	SACKRecoveries     uint64 // recoveries driven by SACK (RFC 6675)
	RenoRecoveries     uint64 // NewReno recoveries (RFC 6582)
	Timeouts           uint64 // retransmission timeouts
	ZeroWindowProbes   uint64 // window probes sent
	KeepaliveProbes    uint64 // keep-alive probes sent
	AbortOnTimeout     uint64 // connections given up after too many retransmissions
	AbortOnData        uint64 // resets sent for data arriving after close
	AbortOnClose       uint64 // resets sent by close with unread data, or abort
	ChallengeACKs      uint64 // RFC 5961 challenge ACKs sent
	PAWSRejected       uint64 // segments rejected by PAWS (RFC 7323, 5)
	OFOQueued          uint64 // segments placed out of order
	SyncookiesSent     uint64
	SyncookiesRecv     uint64 // valid cookies that created a connection
	SyncookiesFailed   uint64
	ListenOverflows    uint64 // SYNs dropped because the accept queue was full
	TimeWaitRecycled   uint64 // TIME-WAIT connections ended by a new SYN
	LostRetransmits    uint64 // retransmissions detected lost by SACK, and sent again
	LossProbes         uint64 // tail loss probes sent (RFC 8985, 7)
	DSACKsRecv         uint64 // ACKs received whose first SACK block was a D-SACK (RFC 2883)
	DSACKsSent         uint64 // ACKs sent with a D-SACK block (RFC 2883)
	SpuriousRTOs       uint64 // timeouts undone: the Eifel test (RFC 3522) or F-RTO (RFC 5682)
	SpuriousRecoveries uint64 // fast recoveries undone by D-SACKs (RFC 3708)
	ECNCEReceived      uint64 // segments received with Congestion Experienced (RFC 3168)
	ECNReductions      uint64 // window reductions for an ECN-Echo (RFC 3168, 6.1.2)
	PMTUMessages       uint64 // ICMP "fragmentation needed" given to connections (RFC 1191)
	PMTUIgnored        uint64 // of which ignored: not in flight, bogus, or not lowering the MSS (RFC 5927)
	PMTUReductions     uint64 // MSS reductions by ICMP
	PMTUBlackholes     uint64 // MSS reductions for a presumed black hole (RFC 4821)
	PMTUProbes         uint64 // path MTU probes sent (RFC 4821, RFC 8899)
	PMTUProbeFailures  uint64 // probes lost, or inconclusive too often

	// Drops counts discarded segments by reason.
	Drops [NumDropReasons]uint64
}

// DropReason says why a segment was discarded.
type DropReason uint8

// The drop reasons.
const (
	DropOutOfWindow    DropReason = iota // sequence number not acceptable (RFC 9293, 3.10.7.4)
	DropBadAck                           // acknowledges unsent data or is too old (RFC 5961, 5)
	DropPAWS                             // timestamp older than TS.Recent (RFC 7323, 5.3)
	DropNoTimestamp                      // timestamps negotiated but absent (RFC 7323, 3.2)
	DropOFOFull                          // out-of-order range table full
	DropChallengeLimit                   // challenge ACK suppressed by the rate limit
	DropSYN                              // SYN in a synchronized state (answered by a challenge ACK)
	DropRST                              // RST not exactly at RCV.NXT (RFC 5961, 3)
	DropNoACK                            // ACK bit off in a synchronized state
	DropListen                           // segment a listener cannot use
	DropClosed                           // segment to a CLOSED connection
	DropAfterFIN                         // data after the peer's FIN
	DropSynSent                          // unacceptable segment in SYN-SENT
	NumDropReasons
)

var dropNames = [NumDropReasons]string{
	"out-of-window", "bad-ack", "paws", "no-timestamp", "ofo-full",
	"challenge-limit", "syn", "rst", "no-ack", "listen", "closed",
	"after-fin", "syn-sent",
}

func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// Add adds the counters of o to s; a shell that keeps per-worker Stats
// sums them for `saturn status`.
func (s *Stats) Add(o *Stats) {
	s.ActiveOpens += o.ActiveOpens
	s.PassiveOpens += o.PassiveOpens
	s.AttemptFails += o.AttemptFails
	s.EstabResets += o.EstabResets
	s.CurrEstab += o.CurrEstab
	s.InSegs += o.InSegs
	s.OutSegs += o.OutSegs
	s.RetransSegs += o.RetransSegs
	s.InRsts += o.InRsts
	s.OutRsts += o.OutRsts
	s.DelayedACKs += o.DelayedACKs
	s.FastRetransmits += o.FastRetransmits
	s.SACKRecoveries += o.SACKRecoveries
	s.RenoRecoveries += o.RenoRecoveries
	s.Timeouts += o.Timeouts
	s.ZeroWindowProbes += o.ZeroWindowProbes
	s.KeepaliveProbes += o.KeepaliveProbes
	s.AbortOnTimeout += o.AbortOnTimeout
	s.AbortOnData += o.AbortOnData
	s.AbortOnClose += o.AbortOnClose
	s.ChallengeACKs += o.ChallengeACKs
	s.PAWSRejected += o.PAWSRejected
	s.OFOQueued += o.OFOQueued
	s.SyncookiesSent += o.SyncookiesSent
	s.SyncookiesRecv += o.SyncookiesRecv
	s.SyncookiesFailed += o.SyncookiesFailed
	s.ListenOverflows += o.ListenOverflows
	s.TimeWaitRecycled += o.TimeWaitRecycled
	s.LostRetransmits += o.LostRetransmits
	s.LossProbes += o.LossProbes
	s.DSACKsRecv += o.DSACKsRecv
	s.DSACKsSent += o.DSACKsSent
	s.SpuriousRTOs += o.SpuriousRTOs
	s.SpuriousRecoveries += o.SpuriousRecoveries
	s.ECNCEReceived += o.ECNCEReceived
	s.ECNReductions += o.ECNReductions
	s.PMTUMessages += o.PMTUMessages
	s.PMTUIgnored += o.PMTUIgnored
	s.PMTUReductions += o.PMTUReductions
	s.PMTUBlackholes += o.PMTUBlackholes
	s.PMTUProbes += o.PMTUProbes
	s.PMTUProbeFailures += o.PMTUProbeFailures
	for i := range s.Drops {
		s.Drops[i] += o.Drops[i]
	}
}
