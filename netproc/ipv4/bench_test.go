package ipv4

import (
	"testing"

	"saturn/netproc/header"
)

func BenchmarkInputTCP(b *testing.B) {
	e := newEndpoint(nil)
	pkt := packet(header.IPv4Fields{Protocol: header.TCPProtocolNumber}, pattern(1460))
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if e.Input(pkt, epoch).Verdict != VerdictDeliver {
			b.Fatal("not delivered")
		}
	}
}

func BenchmarkEchoReply(b *testing.B) {
	e := newEndpoint(nil)
	req := packet(header.IPv4Fields{Protocol: header.ICMPv4ProtocolNumber}, echoRequest(1, 1, pattern(56)))
	pkt := make([]byte, len(req))
	for b.Loop() {
		copy(pkt, req)
		if e.Input(pkt, epoch).Verdict != VerdictReply {
			b.Fatal("no reply")
		}
	}
}

func BenchmarkReassemble64K(b *testing.B) {
	e := newEndpoint(nil)
	frags := split(1, header.TCPProtocolNumber, pattern(65000), 1480)
	b.SetBytes(65000)
	for b.Loop() {
		for _, f := range frags {
			e.Input(f, epoch)
		}
	}
}
