package usertcp

import (
	"maps"
	"strconv"
	"strings"

	"saturn/netproc/link"
	"saturn/netproc/tcp"
)

// shellStats are the counters of the shell itself, beside the core's
// tcp.Stats and the IP layer's ipv4.Stats.
type shellStats struct {
	InCsumErrors  uint64 // TCP segments with a bad checksum
	InErrs        uint64 // TCP segments too short, with a bad data offset or bad options
	NoPort        uint64 // segments for a port nobody listens on (answered with a RST)
	TableFull     uint64 // connections refused because the connection table was full
	OutPackets    uint64 // IP packets handed to the link
	OutGSO        uint64 // of which several segments in one (GSO)
	OutGSOSegs    uint64 // segments carried in GSO packets
	OutDrops      uint64 // packets the link refused
	LoopbackSegs  uint64 // segments delivered within the stack (loopback)
	Recovered     uint64 // connections an earlier incarnation left and this one took over
	RecoveredRST  uint64 // connections an earlier incarnation left that this one reset
	Resumed       uint64 // connections apps held that this one resumed for them (resume on)
	Claimed       uint64 // of which their apps' channels claimed (listeners included)
	ResumedLn     uint64 // listeners apps held that this one rebuilt for them (resume on)
	ResumedKids   uint64 // listeners' children (half-open or not yet accepted) put back in their queues
	ResumedOpens  uint64 // of the connections resumed, active opens still connecting
	Torn          uint64 // records a death left torn mid-Step (reset)
	ReclaimPunch  uint64 // page ranges of emptied buffers given back
	ReclaimPages  uint64 // pages given back
	ICMPDelivered uint64 // ICMP messages for the transport (errors other than echo)
	FragNeeded    uint64 // of which "fragmentation needed" handed to a connection (pmtu.go)
	FragIgnored   uint64 // of which "fragmentation needed" for no connection of ours, or malformed
}

// counters returns every counter under a dotted name, in the manner of
// `netstat -s`: tcp.* from the core and the shell, ip.* and icmp.* from the
// IP layer, link.* from the device and the impairment. Loop only.
func (s *Stack) counters() map[string]uint64 {
	m := make(map[string]uint64, 128)
	t := &s.stats
	add := func(k string, v uint64) { m[k] = v }
	add("tcp.active_opens", t.ActiveOpens)
	add("tcp.passive_opens", t.PassiveOpens)
	add("tcp.attempt_fails", t.AttemptFails)
	add("tcp.estab_resets", t.EstabResets)
	add("tcp.curr_estab", uint64(max(t.CurrEstab, 0)))
	add("tcp.in_segs", t.InSegs)
	add("tcp.out_segs", t.OutSegs)
	add("tcp.retrans_segs", t.RetransSegs)
	add("tcp.in_rsts", t.InRsts)
	add("tcp.out_rsts", t.OutRsts)
	add("tcp.delayed_acks", t.DelayedACKs)
	add("tcp.fast_retransmits", t.FastRetransmits)
	add("tcp.sack_recoveries", t.SACKRecoveries)
	add("tcp.reno_recoveries", t.RenoRecoveries)
	add("tcp.timeouts", t.Timeouts)
	add("tcp.zero_window_probes", t.ZeroWindowProbes)
	add("tcp.keepalive_probes", t.KeepaliveProbes)
	add("tcp.abort_on_timeout", t.AbortOnTimeout)
	add("tcp.abort_on_data", t.AbortOnData)
	add("tcp.abort_on_close", t.AbortOnClose)
	add("tcp.challenge_acks", t.ChallengeACKs)
	add("tcp.paws_rejected", t.PAWSRejected)
	add("tcp.ofo_queued", t.OFOQueued)
	add("tcp.syncookies_sent", t.SyncookiesSent)
	add("tcp.syncookies_recv", t.SyncookiesRecv)
	add("tcp.syncookies_failed", t.SyncookiesFailed)
	add("tcp.listen_overflows", t.ListenOverflows)
	add("tcp.time_wait_recycled", t.TimeWaitRecycled)
	add("tcp.lost_retransmits", t.LostRetransmits)
	add("tcp.loss_probes", t.LossProbes)
	add("tcp.dsacks_recv", t.DSACKsRecv)
	add("tcp.dsacks_sent", t.DSACKsSent)
	add("tcp.spurious_rtos", t.SpuriousRTOs)
	add("tcp.spurious_recoveries", t.SpuriousRecoveries)
	add("tcp.ecn_ce_received", t.ECNCEReceived)
	add("tcp.ecn_reductions", t.ECNReductions)
	add("tcp.pmtu_messages", t.PMTUMessages)
	add("tcp.pmtu_ignored", t.PMTUIgnored)
	add("tcp.pmtu_reductions", t.PMTUReductions)
	add("tcp.pmtu_blackholes", t.PMTUBlackholes)
	add("tcp.pmtu_probes", t.PMTUProbes)
	add("tcp.pmtu_probe_failures", t.PMTUProbeFailures)
	for r := tcp.DropReason(0); r < tcp.NumDropReasons; r++ {
		add("tcp.drop_"+strings.ReplaceAll(r.String(), "-", "_"), t.Drops[r])
	}
	sh := &s.shell
	add("tcp.in_csum_errors", sh.InCsumErrors)
	add("tcp.in_errs", sh.InErrs)
	add("tcp.no_port", sh.NoPort)
	add("tcp.table_full", sh.TableFull)
	add("tcp.loopback_segs", sh.LoopbackSegs)
	add("tcp.recovered", sh.Recovered)
	add("tcp.recovered_reset", sh.RecoveredRST)
	add("tcp.resumed", sh.Resumed)
	add("tcp.resumed_claimed", sh.Claimed)
	add("tcp.resumed_listeners", sh.ResumedLn)
	add("tcp.resumed_children", sh.ResumedKids)
	add("tcp.resumed_connecting", sh.ResumedOpens)
	add("tcp.recovered_torn", sh.Torn)
	add("tcp.conns", uint64(s.live))
	add("tcp.orphans", uint64(s.orphans))
	add("tcp.time_wait", uint64(s.timeWait()))
	add("mem.reclaim_punches", sh.ReclaimPunch)
	add("mem.reclaim_pages", sh.ReclaimPages)
	ip := s.ip.Stats()
	ip.Each(func(name string, v uint64) {
		if strings.HasPrefix(name, "icmp_") {
			add("icmp."+strings.TrimPrefix(name, "icmp_"), v)
		} else {
			add("ip."+name, v)
		}
	})
	add("ip.out_packets", sh.OutPackets)
	add("ip.out_gso", sh.OutGSO)
	add("ip.out_gso_segs", sh.OutGSOSegs)
	add("ip.out_discards", sh.OutDrops)
	add("icmp.in_for_transport", sh.ICMPDelivered)
	add("icmp.in_frag_needed", sh.FragNeeded)
	add("icmp.in_frag_needed_ignored", sh.FragIgnored)
	if st, ok := s.rawDev.(interface{ Stats() link.TUNStats }); ok {
		d := st.Stats()
		add("link.rx_packets", d.RxPackets)
		add("link.rx_gso", d.RxGSO)
		add("link.rx_csum_partial", d.RxChecksumPartial)
		add("link.rx_bad_virtio", d.RxBadVirtio)
		add("link.tx_packets", d.TxPackets)
		add("link.tx_gso", d.TxGSO)
		add("link.tx_segmented", d.TxSegmented)
		add("link.tx_errors", d.TxErrors)
	}
	if s.impaired != nil {
		tx, rx := s.impaired.Stats()
		for dir, st := range map[string]link.ImpairStats{"tx": tx, "rx": rx} {
			add("link.impair_"+dir+"_packets", st.Packets)
			add("link.impair_"+dir+"_dropped", st.Dropped)
			add("link.impair_"+dir+"_duplicated", st.Duplicated)
			add("link.impair_"+dir+"_reordered", st.Reordered)
			add("link.impair_"+dir+"_delayed", st.Delayed)
			add("link.impair_"+dir+"_overflow", st.Overflow)
		}
	}
	return m
}

// publish makes a snapshot of the counters for Info, which other
// goroutines call. Loop only.
func (s *Stack) publish() {
	c := s.counters()
	info := make(map[string]string, len(c)+len(s.static))
	maps.Copy(info, s.static)
	for k, v := range c {
		info[k] = strconv.FormatUint(v, 10)
	}
	s.info.Store(&info)
}

// Info implements backend.Backend: what status shows of the stack (its
// namespace, addresses and link mode) and its counters, as published by
// the loop at most housekeepEvery ago. Safe from any goroutine.
func (s *Stack) Info() map[string]string {
	if p := s.info.Load(); p != nil {
		return maps.Clone(*p)
	}
	return maps.Clone(s.static)
}

// Counters returns the stack's counters now. Loop only (tests post it).
func (s *Stack) Counters() map[string]uint64 { return s.counters() }
