package ipv4

// DropReason says why Input dropped a packet.
type DropReason uint8

// Reasons for dropping a packet, each with its own counter.
const (
	DropNone                DropReason = iota
	DropTruncated                      // shorter than its header or total length says
	DropBadVersion                     // version is not 4 (IPv6 from the kernel lands here)
	DropBadIHL                         // IHL below 5
	DropBadTotalLength                 // total length below the header length
	DropBadChecksum                    // header checksum wrong
	DropBadOptions                     // malformed option list
	DropBadFragment                    // fragment past 65535, unaligned or empty
	DropZeroTTL                        // TTL 0, which no host may send (RFC 1122, 3.2.1.7)
	DropMartianSource                  // source not a unicast address, or our own
	DropNotForUs                       // destination is not our address
	DropUnknownProtocol                // no transport for the protocol (a protocol-unreachable may be sent)
	DropFragmentsDisabled              // Config.DropFragments is set
	DropReassemblyOverlap              // fragment overlaps data of its datagram (datagram discarded)
	DropReassemblyDuplicate            // exact duplicate of a fragment already held
	DropReassemblyLimit                // memory, fragment count or datagram size limit
	DropReassemblyDiscarded            // fragment of a datagram already discarded
	DropICMPInvalid                    // ICMP message truncated or with a bad checksum
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	DropNone:                "none",
	DropTruncated:           "truncated",
	DropBadVersion:          "bad_version",
	DropBadIHL:              "bad_ihl",
	DropBadTotalLength:      "bad_total_length",
	DropBadChecksum:         "bad_checksum",
	DropBadOptions:          "bad_options",
	DropBadFragment:         "bad_fragment",
	DropZeroTTL:             "zero_ttl",
	DropMartianSource:       "martian_source",
	DropNotForUs:            "not_for_us",
	DropUnknownProtocol:     "unknown_protocol",
	DropFragmentsDisabled:   "fragments_disabled",
	DropReassemblyOverlap:   "reassembly_overlap",
	DropReassemblyDuplicate: "reassembly_duplicate",
	DropReassemblyLimit:     "reassembly_limit",
	DropReassemblyDiscarded: "reassembly_discarded",
	DropICMPInvalid:         "icmp_invalid",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropReasonNames[r]
	}
	return "unknown"
}

// Stats are the endpoint's counters, in the manner of the IP and ICMP groups
// of `netstat -s` (RFC 4293 names in comments).
type Stats struct {
	InReceives uint64                 // packets given to Input (ipSystemStatsInReceives)
	InDelivers uint64                 // datagrams delivered to a transport (ipSystemStatsInDelivers)
	Drops      [numDropReasons]uint64 // packets dropped, by reason
	OutHeaders uint64                 // headers written by WriteHeader (ipSystemStatsOutRequests)

	ReasmReqds    uint64 // fragments received for reassembly
	ReasmOKs      uint64 // datagrams reassembled
	ReasmFails    uint64 // datagrams discarded (overlap, limit, timeout)
	ReasmTimeouts uint64 // datagrams discarded by timeout

	FragOKs     uint64 // datagrams split by Fragment
	FragCreates uint64 // fragments created by Fragment
	FragFails   uint64 // datagrams Fragment refused (DF set, too few buffers)

	ICMPInMsgs          uint64 // ICMP messages received, valid ones
	ICMPInEchos         uint64 // echo requests received
	ICMPOutEchoReps     uint64 // echo replies sent
	ICMPOutDestUnreachs uint64 // protocol-unreachable messages sent
	ICMPOutTimeExcds    uint64 // reassembly time-exceeded messages sent
	ICMPOutRateLimited  uint64 // ICMP errors not sent because of the rate limit
}

// Dropped returns the total of all drop counters.
func (s *Stats) Dropped() uint64 {
	var n uint64
	for _, c := range s.Drops[1:] {
		n += c
	}
	return n
}

// Each calls fn for every counter with a stable snake_case name, drops as
// "drop_<reason>", for status output and metrics.
func (s *Stats) Each(fn func(name string, value uint64)) {
	fn("in_receives", s.InReceives)
	fn("in_delivers", s.InDelivers)
	fn("out_headers", s.OutHeaders)
	for r := DropReason(1); r < numDropReasons; r++ {
		fn("drop_"+r.String(), s.Drops[r])
	}
	fn("reasm_reqds", s.ReasmReqds)
	fn("reasm_oks", s.ReasmOKs)
	fn("reasm_fails", s.ReasmFails)
	fn("reasm_timeouts", s.ReasmTimeouts)
	fn("frag_oks", s.FragOKs)
	fn("frag_creates", s.FragCreates)
	fn("frag_fails", s.FragFails)
	fn("icmp_in_msgs", s.ICMPInMsgs)
	fn("icmp_in_echos", s.ICMPInEchos)
	fn("icmp_out_echo_reps", s.ICMPOutEchoReps)
	fn("icmp_out_dest_unreachs", s.ICMPOutDestUnreachs)
	fn("icmp_out_time_excds", s.ICMPOutTimeExcds)
	fn("icmp_out_rate_limited", s.ICMPOutRateLimited)
}
