package ipv4

import (
	"bytes"
	"testing"
	"time"

	"saturn/netproc/header"
)

func TestInputDrops(t *testing.T) {
	tcp := func(f header.IPv4Fields) []byte {
		f.Protocol = header.TCPProtocolNumber
		return packet(f, make([]byte, 20))
	}
	tests := []struct {
		name   string
		mod    func(*Config)
		pkt    []byte
		reason DropReason
	}{
		{"shorter than a header", nil, tcp(header.IPv4Fields{})[:12], DropTruncated},
		{"IPv6 from the kernel (RFC 791 3.1 version)", nil, append([]byte{0x60}, make([]byte, 39)...), DropBadVersion},
		{"IHL 4", nil, func() []byte { b := tcp(header.IPv4Fields{}); b[0] = 0x44; return fixChecksum(b) }(), DropBadIHL},
		{"total length below the header", nil, func() []byte { b := tcp(header.IPv4Fields{}); header.IPv4(b).SetTotalLength(10); return fixChecksum(b) }(), DropBadTotalLength},
		{"total length past the packet", nil, func() []byte { b := tcp(header.IPv4Fields{}); header.IPv4(b).SetTotalLength(41); return fixChecksum(b) }(), DropTruncated},
		{"bad header checksum (RFC 1122 3.2.1.2)", nil, func() []byte { b := tcp(header.IPv4Fields{}); b[10] ^= 1; return b }(), DropBadChecksum},
		{"malformed option", nil, tcp(header.IPv4Fields{Options: []byte{0x44, 1, 0, 0}}), DropBadOptions},
		{"TTL 0 (RFC 1122 3.2.1.7)", nil, func() []byte { b := tcp(header.IPv4Fields{}); b[8] = 0; return fixChecksum(b) }(), DropZeroTTL},
		{"source 0.0.0.0 (RFC 1122 3.2.1.3)", nil, func() []byte {
			b := tcp(header.IPv4Fields{})
			header.IPv4(b).SetSourceAddress(header.IPv4Addr{})
			return fixChecksum(b)
		}(), DropMartianSource},
		{"source broadcast", nil, tcp(header.IPv4Fields{SrcAddr: header.IPv4Broadcast}), DropMartianSource},
		{"source multicast", nil, tcp(header.IPv4Fields{SrcAddr: header.IPv4Addr{224, 0, 0, 1}}), DropMartianSource},
		{"source loopback", nil, tcp(header.IPv4Fields{SrcAddr: header.IPv4Addr{127, 0, 0, 1}}), DropMartianSource},
		{"source is our own address", nil, tcp(header.IPv4Fields{SrcAddr: ours}), DropMartianSource},
		{"destination another host", nil, tcp(header.IPv4Fields{DstAddr: header.IPv4Addr{10, 77, 0, 3}}), DropNotForUs},
		{"destination broadcast", nil, tcp(header.IPv4Fields{DstAddr: header.IPv4Broadcast}), DropNotForUs},
		{"fragment with fragments disabled", func(c *Config) { c.DropFragments = true },
			tcp(header.IPv4Fields{Flags: header.IPv4FlagMoreFragments}), DropFragmentsDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEndpoint(tt.mod)
			res := e.Input(tt.pkt, epoch)
			if res.Verdict != VerdictDrop || res.Reason != tt.reason {
				t.Fatalf("got %v/%v (%v), want drop/%v", res.Verdict, res.Reason, res.Err, tt.reason)
			}
			st := e.Stats()
			if st.Drops[tt.reason] != 1 || st.Dropped() != 1 || st.InReceives != 1 {
				t.Fatalf("counters %+v", st)
			}
		})
	}
}

func TestInputDeliversTCP(t *testing.T) {
	e := newEndpoint(nil)
	seg := pattern(40)
	pkt := append(packet(header.IPv4Fields{Protocol: header.TCPProtocolNumber, TTL: 1}, seg), 0, 0, 0, 0) // link padding
	res := e.Input(pkt, epoch)
	if res.Verdict != VerdictDeliver || res.Reassembled {
		t.Fatalf("verdict %v reassembled %v", res.Verdict, res.Reassembled)
	}
	if !bytes.Equal(res.Datagram.Payload(), seg) || len(res.Datagram) != 60 {
		t.Fatalf("payload %x (datagram %d bytes)", res.Datagram.Payload(), len(res.Datagram))
	}
	if &res.Datagram[0] != &pkt[0] {
		t.Fatal("delivered datagram does not alias the input")
	}
	if st := e.Stats(); st.InDelivers != 1 || st.Dropped() != 0 {
		t.Fatalf("counters %+v", st)
	}
}

func TestEchoReply(t *testing.T) {
	for _, opts := range [][]byte{nil, {1, 1, 1, 1, 0x44, 4, 5, 0}} {
		e := newEndpoint(nil)
		data := []byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789")
		pkt := packet(header.IPv4Fields{Protocol: header.ICMPv4ProtocolNumber, TOS: 0x10, ID: 77, Options: opts}, echoRequest(0x4242, 3, data))
		res := e.Input(pkt, epoch)
		if res.Verdict != VerdictReply {
			t.Fatalf("options %x: verdict %v reason %v err %v", opts, res.Verdict, res.Reason, res.Err)
		}
		// Built in place: the reply is a suffix of the request's buffer.
		if &res.Reply[len(res.Reply)-1] != &pkt[len(pkt)-1] {
			t.Fatal("reply not built in place")
		}
		h := mustValid(t, res.Reply)
		if h.HeaderLength() != 20 || h.SourceAddress() != ours || h.DestinationAddress() != peer ||
			h.Protocol() != header.ICMPv4ProtocolNumber || h.TTL() != DefaultTTL || h.TOS() != 0x10 || h.ID() != 1000 {
			t.Fatalf("reply header %+v", h.Fields())
		}
		if err := header.ValidateICMPv4(h.Payload()); err != nil {
			t.Fatalf("reply ICMP: %v", err)
		}
		m := header.ICMPv4(h.Payload())
		// RFC 792 echo reply: type 0, same identifier, sequence and data.
		if m.Type() != header.ICMPv4EchoReply || m.Code() != 0 || m.Ident() != 0x4242 || m.Sequence() != 3 || !bytes.Equal(m.Payload(), data) {
			t.Fatalf("reply message type %d ident %x seq %d data %q", m.Type(), m.Ident(), m.Sequence(), m.Payload())
		}
		if st := e.Stats(); st.ICMPInEchos != 1 || st.ICMPOutEchoReps != 1 || st.OutHeaders != 1 {
			t.Fatalf("counters %+v", st)
		}
	}
}

func TestICMPInput(t *testing.T) {
	e := newEndpoint(nil)
	bad := echoRequest(1, 1, []byte("x"))
	bad[2] ^= 0xff
	if res := e.Input(packet(header.IPv4Fields{Protocol: header.ICMPv4ProtocolNumber}, bad), epoch); res.Reason != DropICMPInvalid {
		t.Fatalf("bad ICMP checksum: %v/%v", res.Verdict, res.Reason)
	}
	if res := e.Input(packet(header.IPv4Fields{Protocol: header.ICMPv4ProtocolNumber}, []byte{8, 0, 0}), epoch); res.Reason != DropICMPInvalid {
		t.Fatalf("truncated ICMP: %v/%v", res.Verdict, res.Reason)
	}
	// A destination unreachable goes up for the transport (RFC 1122 3.2.2).
	unreach := make([]byte, 8+28)
	m := header.ICMPv4(unreach)
	m.SetType(header.ICMPv4DstUnreachable)
	m.SetCode(header.ICMPv4FragmentationNeeded)
	m.SetMTU(1400)
	m.SetChecksum(m.CalculateChecksum())
	res := e.Input(packet(header.IPv4Fields{Protocol: header.ICMPv4ProtocolNumber}, unreach), epoch)
	if res.Verdict != VerdictDeliver || header.ICMPv4(res.Datagram.Payload()).MTU() != 1400 {
		t.Fatalf("unreachable: %v/%v", res.Verdict, res.Reason)
	}
}

func TestProtocolUnreachable(t *testing.T) {
	e := newEndpoint(func(c *Config) { c.ICMPErrorsPerSecond, c.ICMPErrorBurst = 1, 2 })
	udp := packet(header.IPv4Fields{Protocol: header.UDPProtocolNumber, ID: 5}, pattern(1000))
	for i, want := range []bool{true, true, false} {
		res := e.Input(append([]byte{}, udp...), epoch)
		if res.Reason != DropUnknownProtocol {
			t.Fatalf("#%d reason %v", i, res.Reason)
		}
		if (res.Verdict == VerdictReply) != want {
			t.Fatalf("#%d verdict %v, want reply %v (burst 2)", i, res.Verdict, want)
		}
		if !want {
			continue
		}
		// RFC 1122 3.2.2.1 protocol unreachable; RFC 1812 4.3.2.3: as much
		// of the datagram as fits in 576 bytes.
		h := mustValid(t, res.Reply)
		if len(res.Reply) != 576 || h.DestinationAddress() != peer || h.SourceAddress() != ours {
			t.Fatalf("reply %d bytes to %v", len(res.Reply), h.DestinationAddress())
		}
		if err := header.ValidateICMPv4(h.Payload()); err != nil {
			t.Fatal(err)
		}
		m := header.ICMPv4(h.Payload())
		if m.Type() != header.ICMPv4DstUnreachable || m.Code() != header.ICMPv4ProtoUnreachable || !bytes.Equal(m.Payload(), udp[:548]) {
			t.Fatalf("type %d code %d", m.Type(), m.Code())
		}
	}
	// One token per second refills the bucket.
	if res := e.Input(udp, epoch.Add(time.Second)); res.Verdict != VerdictReply {
		t.Fatalf("after a second: %v", res.Verdict)
	}
	if st := e.Stats(); st.ICMPOutDestUnreachs != 3 || st.ICMPOutRateLimited != 1 || st.Drops[DropUnknownProtocol] != 4 {
		t.Fatalf("counters %+v", st)
	}
}

func TestWriteHeader(t *testing.T) {
	e := newEndpoint(func(c *Config) { c.TTL = 9 })
	b := make([]byte, 60)
	for i := range 2 {
		h := e.WriteHeader(b, Outgoing{Protocol: header.TCPProtocolNumber, Dst: peer, TotalLength: 60, DontFragment: true, TOS: 2})
		h = mustValid(t, h)
		if h.ID() != uint16(1000+i) || h.TTL() != 9 || !h.DontFragment() || h.SourceAddress() != ours || h.DestinationAddress() != peer || h.TotalLength() != 60 || h.TOS() != 2 {
			t.Fatalf("header %+v", h.Fields())
		}
	}
}

func TestStatsEachNamesEveryReason(t *testing.T) {
	e := newEndpoint(nil)
	names := map[string]bool{}
	st := e.Stats()
	st.Each(func(name string, _ uint64) {
		if names[name] || name == "drop_unknown" {
			t.Fatalf("bad or duplicate name %q", name)
		}
		names[name] = true
	})
	if len(names) < int(numDropReasons)+10 {
		t.Fatalf("only %d counters", len(names))
	}
}
