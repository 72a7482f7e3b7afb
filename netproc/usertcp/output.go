package usertcp

import (
	"errors"

	"saturn/netproc/header"
	"saturn/netproc/ipv4"
	"saturn/netproc/link"
	"saturn/netproc/tcp"
	"saturn/netproc/tcp/seqnum"
)

// txBatch holds packets built for the link and not yet written: one
// buffer per packet, with headroom for the link's header in front. Buffers
// are reused once the batch is written (the link copies or sends them
// before Write returns).
type txBatch struct {
	pkts []link.Packet
	bufs [][]byte
	size int
}

func (b *txBatch) init(batch, size int) {
	b.pkts = make([]link.Packet, 0, batch)
	b.bufs = make([][]byte, batch)
	b.size = size
}

// next returns the buffer of the next packet, or nil when the batch is
// full.
func (b *txBatch) next() []byte {
	i := len(b.pkts)
	if i == cap(b.pkts) {
		return nil
	}
	if b.bufs[i] == nil {
		b.bufs[i] = make([]byte, b.size)
	}
	return b.bufs[i]
}

// The ECN field of the IP header (RFC 3168, 5): its two low bits.
const (
	ecnMask = 0b11
	ecnECT0 = 0b10
	ecnCE   = 0b11
)

// emit transmits the segments a Step produced for the connection k (duty 3
// of package tcp). Payloads are copied into packets at once, so nothing
// aliases the send buffer afterwards. Consecutive full-sized data
// segments become one GSO packet when the link takes them.
func (s *Stack) emit(k tupleKey, segs []tcp.Segment) {
	if s.isLocal(k.raddr) {
		s.queueLoop(k, segs)
		return
	}
	for i := 0; i < len(segs); {
		j := i + 1
		if s.gso {
			j = s.gsoRun(segs, i)
		}
		s.buildTCP(k, segs[i:j])
		i = j
	}
}

// gsoRun returns the end of the run of segments starting at i that one GSO
// packet can carry: contiguous data segments with the same header but for
// the sequence number, each of the first one's size but the last, whose
// flags (PSH, FIN) the link puts on the last wire segment only.
func (s *Stack) gsoRun(segs []tcp.Segment, i int) int {
	first := &segs[i]
	size := first.PayloadLen()
	if size == 0 || first.Flags != tcp.FlagACK {
		return i + 1
	}
	hdr := header.IPv4MinimumSize + header.TCPMinimumSize + first.Options.EncodedLen()
	total := hdr + size
	j := i + 1
	for ; j < len(segs); j++ {
		prev, next := &segs[j-1], &segs[j]
		n := next.PayloadLen()
		if n == 0 || n > size || total+n > header.IPv4MaximumSize ||
			next.Seq != prev.Seq.Add(seqnum.Size(prev.PayloadLen())) ||
			next.Ack != first.Ack || next.Window != first.Window || next.Options != first.Options || next.ECT != first.ECT ||
			next.Flags&^(tcp.FlagPSH|tcp.FlagFIN) != tcp.FlagACK {
			break
		}
		total += n
		if next.Flags != tcp.FlagACK || n < size {
			return j + 1 // flags or a short payload end the run
		}
	}
	return j
}

// buildTCP builds one IPv4 packet from segs (one segment, or a GSO run)
// and adds it to the batch.
func (s *Stack) buildTCP(k tupleKey, segs []tcp.Segment) {
	first, last := &segs[0], &segs[len(segs)-1]
	payload := 0
	for i := range segs {
		payload += segs[i].PayloadLen()
	}
	thl := header.TCPMinimumSize + first.Options.EncodedLen()
	total := header.IPv4MinimumSize + thl + payload
	buf := s.tx.next()
	if buf == nil {
		s.flushTX()
		buf = s.tx.next()
	}
	hr := s.headroom
	pkt := buf[hr : hr+total]
	var tos uint8
	if first.ECT {
		tos = ecnECT0 // RFC 3168, 5: the core asked for an ECN-capable packet
	}
	s.ip.WriteHeader(pkt, ipv4.Outgoing{Protocol: header.TCPProtocolNumber, Dst: k.raddr, TotalLength: total, TOS: tos, DontFragment: true})
	th := header.TCP(pkt[header.IPv4MinimumSize:])
	th.EncodeWithOptions(&header.TCPFields{
		SrcPort: k.lport, DstPort: k.rport, SeqNum: uint32(first.Seq), AckNum: uint32(first.Ack),
		Flags: first.Flags | last.Flags&(tcp.FlagPSH|tcp.FlagFIN), WindowSize: first.Window,
	}, first.Options)
	off := thl
	for i := range segs {
		off += copy(th[off:], segs[i].Payload)
		off += copy(th[off:], segs[i].Payload2)
	}
	p := link.Packet{Buf: buf, Off: hr, Len: total}
	if len(segs) > 1 {
		p.GSOSize = uint16(first.PayloadLen())
		s.shell.OutGSO++
		s.shell.OutGSOSegs += uint64(len(segs))
	}
	if s.csum || p.GSOSize > 0 {
		p.Flags = link.FlagNeedsChecksum
	} else {
		th.SetChecksum(0)
		th.SetChecksum(header.TCPChecksum(s.addr, k.raddr, th))
	}
	s.tx.pkts = append(s.tx.pkts, p)
}

// sendIP queues a whole IPv4 packet (an ICMP reply), fragmenting it if it
// exceeds the MTU. pkt is copied.
func (s *Stack) sendIP(pkt []byte) {
	ip := header.IPv4(pkt)
	if len(pkt) <= s.mtu {
		s.queueRaw(pkt)
		return
	}
	count := ipv4.FragmentCount(ip, s.mtu)
	if count <= 0 || count > 64 {
		s.shell.OutDrops++
		return
	}
	bufs := make([][]byte, count)
	for i := range bufs {
		bufs[i] = make([]byte, s.mtu)
	}
	n, err := s.ip.Fragment(ip, s.mtu, bufs)
	if err != nil {
		s.shell.OutDrops++
		return
	}
	for _, b := range bufs[:n] {
		s.queueRaw(b[:header.IPv4(b).TotalLength()])
	}
}

func (s *Stack) queueRaw(pkt []byte) {
	buf := s.tx.next()
	if buf == nil {
		s.flushTX()
		buf = s.tx.next()
	}
	n := copy(buf[s.headroom:], pkt)
	s.tx.pkts = append(s.tx.pkts, link.Packet{Buf: buf, Off: s.headroom, Len: n})
}

// flushTX writes the batch to the link. A packet the link refuses is
// dropped (as lost on the wire) and the rest still go.
func (s *Stack) flushTX() {
	pkts := s.tx.pkts
	if len(pkts) == 0 {
		return
	}
	s.tap.Record(pkts)
	s.shell.OutPackets += uint64(len(pkts))
	for len(pkts) > 0 {
		n, err := s.dev.write(pkts)
		if err == nil {
			break
		}
		s.shell.OutDrops++
		if errors.Is(err, link.ErrClosed) {
			break
		}
		pkts = pkts[n+1:]
	}
	clear(s.tx.pkts)
	s.tx.pkts = s.tx.pkts[:0]
}

// loopSegment is a segment between two connections of this stack, with
// the key of the connection it goes to.
type loopSegment struct {
	key tupleKey
	seg tcp.Segment
}

// queueLoop queues segments to a local address for delivery when the
// operation settles (never inside the Step that made them). Payloads are
// copied into the loopback arena.
func (s *Stack) queueLoop(k tupleKey, segs []tcp.Segment) {
	to := k.reversed()
	for i := range segs {
		seg := segs[i]
		if n := seg.PayloadLen(); n > 0 {
			start := len(s.loopBuf)
			s.loopBuf = seg.AppendPayload(s.loopBuf)
			seg.Payload = s.loopBuf[start : start+n : start+n]
			seg.Payload2 = nil
		}
		s.loopQ = append(s.loopQ, loopSegment{key: to, seg: seg})
	}
}

// runLoopback delivers the queued local segments, and those they cause.
func (s *Stack) runLoopback() {
	for i := 0; i < len(s.loopQ); i++ {
		ls := s.loopQ[i]
		s.loopQ[i] = loopSegment{}
		s.shell.LoopbackSegs++
		s.segmentIn(ls.key, &ls.seg)
	}
	s.loopQ = s.loopQ[:0]
	s.loopBuf = s.loopBuf[:0]
}
