package ipv4

import (
	"encoding/binary"
	"testing"
	"time"

	"saturn/netproc/header"
)

// FuzzInput feeds a sequence of packets into one endpoint. The input is a
// list of records: a 2-byte length, a control byte, then the packet. The
// control byte's low bit asks the harness to make the packet look plausible
// (version 4, our destination, a correct header checksum) so that the fuzzer
// gets past validation into ICMP and reassembly; its high bits advance the
// clock. Properties: no panic; every verdict is consistent with the counters;
// what is delivered or sent is a valid datagram; memory stays bounded.
func FuzzInput(f *testing.F) {
	rec := func(fix bool, pkt []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(pkt)))
		c := byte(0)
		if fix {
			c = 1
		}
		return append(append(b, c), pkt...)
	}
	frags := split(7, header.ICMPv4ProtocolNumber, echoRequest(1, 2, pattern(3000)), 1480)
	f.Add(append(append(rec(true, frags[1]), rec(false, frags[0])...), rec(false, frags[2])...))
	f.Add(rec(false, packet(header.IPv4Fields{Protocol: header.ICMPv4ProtocolNumber}, echoRequest(1, 1, []byte("hi")))))
	f.Add(rec(false, packet(header.IPv4Fields{Protocol: header.UDPProtocolNumber}, pattern(64))))
	f.Add(rec(true, frag(9, header.TCPProtocolNumber, 64, false, pattern(32))))
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxBytes = 256 << 10
		e := newEndpoint(func(c *Config) {
			c.ReassemblyMaxBytes = maxBytes
			c.ReassemblyMaxDatagrams = 8
			c.ReassemblyTimeout = 2 * time.Second
		})
		now := epoch
		var count uint64
		for len(in) >= 3 {
			n := int(binary.BigEndian.Uint16(in))
			ctl := in[2]
			in = in[3:]
			n = min(n, len(in))
			pkt := append([]byte{}, in[:n]...)
			in = in[n:]
			now = now.Add(time.Duration(ctl>>1) * 100 * time.Millisecond)
			if ctl&1 != 0 && len(pkt) >= header.IPv4MinimumSize {
				pkt[0] = 0x40 | pkt[0]&0x0f
				header.IPv4(pkt).SetDestinationAddress(ours)
				if hl := header.IPv4(pkt).HeaderLength(); hl >= header.IPv4MinimumSize && hl <= len(pkt) {
					fixChecksum(pkt)
				}
			}
			count++
			res := e.Input(pkt, now)
			switch res.Verdict {
			case VerdictDeliver:
				h := mustValid(t, res.Datagram)
				if h.DestinationAddress() != ours || h.IsFragment() {
					t.Fatalf("delivered %+v", h.Fields())
				}
			case VerdictReply:
				h := mustValid(t, res.Reply)
				if err := header.ValidateICMPv4(h.Payload()); err != nil {
					t.Fatalf("reply: %v", err)
				}
			case VerdictDrop:
				if res.Reason == DropNone {
					t.Fatal("drop without a reason")
				}
			}
			if e.ReassemblyBytes() > maxBytes || e.ReassemblyBytes() < 0 {
				t.Fatalf("reassembly holds %d bytes", e.ReassemblyBytes())
			}
			e.Expire(now, func(r []byte) { mustValid(t, r) })
		}
		st := e.Stats()
		if st.InReceives != count {
			t.Fatalf("InReceives %d, want %d", st.InReceives, count)
		}
		e.Expire(now.Add(time.Hour), nil)
		if e.ReassemblyBytes() != 0 {
			t.Fatalf("%d bytes held after every deadline", e.ReassemblyBytes())
		}
	})
}
