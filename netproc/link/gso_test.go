package link

import (
	"bytes"
	"errors"
	"testing"

	"saturn/netproc/header"
)

func TestSegmentTCPv4(t *testing.T) {
	payload := make([]byte, 10000)
	for i := range payload {
		payload[i] = byte(i * 13)
	}
	flags := header.TCPFlagAck | header.TCPFlagPsh | header.TCPFlagFin | header.TCPFlagCwr
	pkt := tcpPacket(t, 0xfffff000, flags, payload) // the sequence space wraps
	scratch := make([]byte, 1500)
	var segs [][]byte
	n, err := SegmentTCPv4(pkt, 1460, scratch, func(seg []byte) error {
		segs = append(segs, append([]byte{}, seg...))
		return nil
	})
	if err != nil || n != 7 || len(segs) != 7 {
		t.Fatalf("%d segments, err %v", n, err)
	}
	var got []byte
	for i, seg := range segs {
		tcp := checkTCP(t, seg)
		ip := header.IPv4(seg)
		if ip.ID() != uint16(100+i) || !ip.DontFragment() {
			t.Fatalf("segment %d: id %d", i, ip.ID())
		}
		if tcp.SequenceNumber() != 0xfffff000+uint32(1460*i) {
			t.Fatalf("segment %d: seq %#x", i, tcp.SequenceNumber())
		}
		last := i == len(segs)-1
		f := tcp.Flags()
		if f.Has(header.TCPFlagFin) != last || f.Has(header.TCPFlagPsh) != last || f.Has(header.TCPFlagCwr) != (i == 0) || !f.Has(header.TCPFlagAck) {
			t.Fatalf("segment %d: flags %v", i, f)
		}
		if !last && len(tcp.Payload()) != 1460 {
			t.Fatalf("segment %d: %d bytes", i, len(tcp.Payload()))
		}
		got = append(got, tcp.Payload()...)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("payload differs after segmentation")
	}
}

func TestSegmentTCPv4Edges(t *testing.T) {
	empty := tcpPacket(t, 5, header.TCPFlagAck, nil)
	n, err := SegmentTCPv4(empty, 1460, make([]byte, 1500), func([]byte) error { return nil })
	if n != 1 || err != nil {
		t.Fatalf("empty: %d %v", n, err)
	}
	if _, err := SegmentTCPv4(empty, 1460, make([]byte, 100), nil); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("short scratch: %v", err)
	}
	stop := errors.New("stop")
	n, err = SegmentTCPv4(tcpPacket(t, 5, 0, make([]byte, 5000)), 1000, make([]byte, 1500), func([]byte) error { return stop })
	if n != 0 || err != stop {
		t.Fatalf("emit error: %d %v", n, err)
	}
}
