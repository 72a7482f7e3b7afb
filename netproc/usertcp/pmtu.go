package usertcp

import (
	"saturn/netproc/header"
	"saturn/netproc/tcp"
	"saturn/netproc/tcp/seqnum"
)

// icmpIn handles an ICMP error the IP layer delivered for the transport
// (checksum already checked): a "fragmentation needed and DF set" (type 3,
// code 4; RFC 1191, 4) about a segment one of our connections sent goes
// to that connection as tcp.InPacketTooBig, where the core checks the
// quoted sequence number and the MTU (RFC 5927). Here the quoted headers
// must name one of our connections, a TCP datagram from our address with
// DF set (we set it on every segment: a message about a datagram without
// it is not about ours) and at least the 8 bytes of TCP header that carry
// the ports and the sequence number (RFC 792). Every other ICMP error is
// only counted.
func (s *Stack) icmpIn(d header.IPv4) {
	msg := header.ICMPv4(d.Payload())
	if len(msg) < header.ICMPv4MinimumSize || msg.Type() != header.ICMPv4DstUnreachable ||
		msg.Code() != header.ICMPv4FragmentationNeeded {
		return
	}
	q := header.IPv4(msg.Payload())
	if len(q) < header.IPv4MinimumSize || q[0]>>4 != 4 {
		s.shell.FragIgnored++
		return
	}
	hl := q.HeaderLength()
	if hl < header.IPv4MinimumSize || len(q) < hl+8 || q.Protocol() != header.TCPProtocolNumber ||
		!q.DontFragment() || q.FragmentOffset() != 0 {
		s.shell.FragIgnored++
		return
	}
	th := header.TCP(q[hl:])
	k := tupleKey{laddr: q.SourceAddress(), raddr: q.DestinationAddress(), lport: th.SourcePort(), rport: th.DestinationPort()}
	c := s.demux[k]
	if c == nil || !s.isLocal(k.laddr) {
		s.shell.FragIgnored++
		return
	}
	s.shell.FragNeeded++
	s.step(c, tcp.Input{Kind: tcp.InPacketTooBig, PTB: tcp.PacketTooBig{
		MTU: msg.MTU(), Size: q.TotalLength(), Seq: seqnum.Value(th.SequenceNumber()),
	}})
}
