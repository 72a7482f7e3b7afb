package usertcp

import (
	"errors"

	"saturn/netproc/header"
	"saturn/netproc/ipv4"
	"saturn/netproc/link"
	"saturn/netproc/tcp"
	"saturn/netproc/tcp/seqnum"
)

// readRounds caps the batches read per readiness report, so that the apps'
// rings get their turn; the device's descriptor is watched level-triggered,
// so what is left is reported again at once.
const readRounds = 4

// onReadable reads what the link has queued and runs it through the stack.
// Each batch settles before the next is read: the ACKs and wake-ups it
// caused go out together.
func (s *Stack) onReadable(uint32) {
	for round := 0; round < readRounds; round++ {
		s.enter(false)
		n, err := s.dev.tryRead(s.rx)
		if err != nil && !errors.Is(err, link.ErrClosed) {
			s.log.Error("usertcp: reading the link", "err", err)
		}
		if n > 0 {
			s.tap.Record(s.rx[:n])
			for i := range s.rx[:n] {
				s.packetIn(&s.rx[i])
			}
		}
		s.exit()
		if n < len(s.rx) {
			return
		}
	}
}

// packetIn runs one packet from the link through the IP layer.
func (s *Stack) packetIn(p *link.Packet) {
	res := s.ip.Input(p.Bytes(), s.wallNow())
	switch res.Verdict {
	case ipv4.VerdictReply:
		s.sendIP(res.Reply) // an echo reply, or protocol-unreachable
	case ipv4.VerdictDeliver:
		d := res.Datagram
		if d.Protocol() != header.TCPProtocolNumber {
			s.shell.ICMPDelivered++ // ICMP errors: only "fragmentation needed" is acted on
			s.icmpIn(d)
			return
		}
		s.tcpIn(d, p.Flags&link.FlagChecksumValid != 0 && !res.Reassembled)
	}
}

// tcpIn parses a TCP segment (hostile bytes: every field is checked by
// package header before the core sees it) and hands it on.
func (s *Stack) tcpIn(d header.IPv4, csumValid bool) {
	src, dst := d.SourceAddress(), d.DestinationAddress()
	th, opts, err := header.ParseTCP(d.Payload(), src, dst, !csumValid)
	if err != nil {
		s.stats.InSegs++
		if errors.Is(err, header.ErrBadChecksum) {
			s.shell.InCsumErrors++
		} else {
			s.shell.InErrs++
		}
		return
	}
	f := th.Flags()
	if th.SourcePort() == 0 || th.DestinationPort() == 0 ||
		f&tcp.FlagSYN != 0 && f&(tcp.FlagFIN|tcp.FlagRST) != 0 {
		// Port 0, SYN with FIN or RST: no stack answers these (Linux
		// drops them too).
		s.stats.InSegs++
		s.shell.InErrs++
		return
	}
	seg := tcp.Segment{
		Seq: seqnum.Value(th.SequenceNumber()), Ack: seqnum.Value(th.AckNumber()), Flags: f,
		Window: th.WindowSize(), Options: opts, Payload: th.Payload(),
		CE: d.TOS()&ecnMask == ecnCE,
	}
	s.segmentIn(tupleKey{laddr: dst, raddr: src, lport: th.DestinationPort(), rport: th.SourcePort()}, &seg)
}

// segmentIn delivers a segment to its connection, or to the listener of
// its port, or answers it for a closed port (duties 1 and 7 of package
// tcp).
func (s *Stack) segmentIn(k tupleKey, seg *tcp.Segment) {
	if c := s.demux[k]; c != nil {
		s.step(c, tcp.Input{Kind: tcp.InSegment, Seg: *seg})
		if !s.out.Reuse {
			return
		}
		// A new SYN ended a TIME-WAIT (the connection is closed and
		// unlinked): the listener takes the same segment.
	}
	if l := s.listenerFor(k); l != nil {
		s.listenIn(l, k, seg)
		return
	}
	s.stats.InSegs++
	if seg.Flags&tcp.FlagRST != 0 {
		s.stats.InRsts++
		return
	}
	s.shell.NoPort++
	if r, ok := tcp.ResetFor(seg); ok {
		s.stats.OutRsts++
		s.stats.OutSegs++
		s.emit(k, []tcp.Segment{r})
	}
}
