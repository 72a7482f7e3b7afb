package sim

import (
	"fmt"
	"time"

	"saturn/netproc/tcp"
)

// packetTooBig drops p, sent by host from, at the hop of LinkConfig.MTU,
// and with LinkConfig.ICMP sends its sender an ICMP "fragmentation
// needed" (RFC 1191) from halfway along the path. The ICMP message is
// never lost: a path that loses it is the one without ICMP.
func (w *world) packetTooBig(from int, p *packet) {
	w.tooBig++
	l := &w.link
	if !l.cfg.ICMP {
		return
	}
	size := min(wireSize(&p.seg), 65535)
	icmp := &packet{to: from, tuple: p.tuple, seg: tcp.Segment{Seq: p.seg.Seq},
		ptb: tcp.PacketTooBig{MTU: uint16(l.cfg.MTU), Size: uint16(size), Seq: p.seg.Seq}}
	w.schedule(&event{at: w.now.Add(l.cfg.Delay / 2), kind: evICMP, pkt: icmp})
}

// icmpIn hands an ICMP "fragmentation needed" to the connection that sent
// the segment it quotes, as a shell does once it has checked the quoted
// headers.
func (w *world) icmpIn(p *packet) {
	h := w.hosts[p.to]
	ep := h.conns[p.tuple]
	if ep == nil {
		return // the connection is gone
	}
	if w.sc.Trace != nil {
		w.sc.Trace(fmt.Sprintf("%v host%d < ICMP fragmentation needed mtu=%d seq=%d", w.now.Sub(tcp.Time(time.Second)), h.idx, p.ptb.MTU, p.ptb.Seq))
	}
	w.step(ep, tcp.Input{Kind: tcp.InPacketTooBig, PTB: p.ptb})
}
