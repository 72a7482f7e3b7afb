package ipv4

import (
	"testing"
	"time"

	"saturn/netproc/header"
)

var (
	ours  = header.IPv4Addr{10, 77, 0, 2}
	peer  = header.IPv4Addr{10, 77, 0, 1}
	epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func newEndpoint(mod func(*Config)) *Endpoint {
	cfg := Config{Addr: ours, Protocols: []uint8{header.TCPProtocolNumber}, InitialID: 1000}
	if mod != nil {
		mod(&cfg)
	}
	return New(cfg)
}

// datagram builds an IPv4 datagram from peer to us.
func packet(f header.IPv4Fields, payload []byte) []byte {
	if f.SrcAddr == (header.IPv4Addr{}) {
		f.SrcAddr = peer
	}
	if f.DstAddr == (header.IPv4Addr{}) {
		f.DstAddr = ours
	}
	if f.TTL == 0 {
		f.TTL = 64
	}
	hl := f.EncodedLength()
	f.TotalLength = uint16(hl + len(payload))
	b := make([]byte, int(f.TotalLength))
	header.IPv4(b).Encode(&f)
	copy(b[hl:], payload)
	return b
}

func echoRequest(ident, seq uint16, data []byte) []byte {
	m := make([]byte, header.ICMPv4MinimumSize+len(data))
	e := header.ICMPv4(m)
	e.SetType(header.ICMPv4Echo)
	e.SetIdent(ident)
	e.SetSequence(seq)
	copy(e.Payload(), data)
	e.SetChecksum(e.CalculateChecksum())
	return m
}

func fixChecksum(b []byte) []byte {
	h := header.IPv4(b)
	h.SetChecksum(0)
	h.SetChecksum(h.CalculateChecksum())
	return b
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func mustValid(t *testing.T, b []byte) header.IPv4 {
	t.Helper()
	if err := header.ValidateIPv4(b); err != nil {
		t.Fatalf("invalid datagram: %v", err)
	}
	return header.IPv4(b)
}
