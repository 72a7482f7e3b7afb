package link

import (
	"bytes"
	"errors"
	"testing"

	"saturn/netproc/header"
)

var (
	srcAddr = header.IPv4Addr{10, 77, 0, 1}
	dstAddr = header.IPv4Addr{10, 77, 0, 2}
)

// tcpPacket builds a TCP/IPv4 packet with a correct checksum.
func tcpPacket(t testing.TB, seq uint32, flags header.TCPFlags, payload []byte) []byte {
	t.Helper()
	total := header.IPv4MinimumSize + header.TCPMinimumSize + len(payload)
	b := make([]byte, total)
	header.IPv4(b).Encode(&header.IPv4Fields{TotalLength: uint16(total), ID: 100, Flags: header.IPv4FlagDontFragment,
		TTL: 64, Protocol: header.TCPProtocolNumber, SrcAddr: srcAddr, DstAddr: dstAddr})
	tcp := header.TCP(b[header.IPv4MinimumSize:])
	tcp.Encode(&header.TCPFields{SrcPort: 1234, DstPort: 80, SeqNum: seq, AckNum: 9, DataOffset: 20, Flags: flags, WindowSize: 512})
	copy(tcp[header.TCPMinimumSize:], payload)
	setFullChecksum(b, header.IPv4MinimumSize)
	return b
}

func checkTCP(t *testing.T, pkt []byte) header.TCP {
	t.Helper()
	if err := header.ValidateIPv4(pkt); err != nil {
		t.Fatal(err)
	}
	ip := header.IPv4(pkt)
	if err := header.ValidateTCP(ip.Payload(), ip.SourceAddress(), ip.DestinationAddress(), true); err != nil {
		t.Fatal(err)
	}
	return header.TCP(ip.Payload())
}

func TestVirtioHeaderRoundTrip(t *testing.T) {
	h := virtioNetHdr{flags: 1, gsoType: 0x81, hdrLen: 54, gsoSize: 1448, csumStart: 20, csumOffset: 16}
	b := make([]byte, virtioNetHdrLen)
	h.encode(b)
	var got virtioNetHdr
	got.decode(b)
	if got != h {
		t.Fatalf("got %+v, want %+v", got, h)
	}
}

func TestFromKernel(t *testing.T) {
	payload := bytes.Repeat([]byte("saturn"), 2000)
	partial := func() []byte {
		b := tcpPacket(t, 1, header.TCPFlagAck, payload)
		setPartialChecksum(b, 20)
		return b
	}
	needsCsum := virtioNetHdr{flags: virtioNetHdrFNeedsCsum, csumStart: 20, csumOffset: 16}
	gso := needsCsum
	gso.gsoType, gso.gsoSize = virtioNetHdrGSOTCPv4, 1448
	tests := []struct {
		name    string
		hdr     virtioNetHdr
		pkt     []byte
		gso     uint16
		flags   PacketFlags
		wantErr error
	}{
		{"no offload", virtioNetHdr{}, tcpPacket(t, 1, header.TCPFlagAck, nil), 0, 0, nil},
		{"data valid", virtioNetHdr{flags: virtioNetHdrFDataValid}, tcpPacket(t, 1, header.TCPFlagAck, nil), 0, FlagChecksumValid, nil},
		{"partial checksum trusted", needsCsum, partial(), 0, FlagChecksumValid | FlagChecksumPartial, nil},
		{"GSO segment handed up whole", gso, partial(), 1448, FlagChecksumValid | FlagChecksumPartial, nil},
		{"GSO with ECN", virtioNetHdr{flags: 1, gsoType: 0x81, gsoSize: 1448, csumStart: 20, csumOffset: 16}, partial(), 1448, FlagChecksumValid | FlagChecksumPartial, nil},
		{"checksum offset past the end", virtioNetHdr{flags: virtioNetHdrFNeedsCsum, csumStart: 20, csumOffset: 60000}, partial(), 0, 0, errBadVirtioHeader},
		{"checksum start past the end", virtioNetHdr{flags: virtioNetHdrFNeedsCsum, csumStart: 65000}, partial(), 0, 0, errBadVirtioHeader},
		{"GSO of a truncated packet", gso, partial()[:5000], 0, 0, errBadVirtioHeader},
		{"GSO size zero", virtioNetHdr{gsoType: virtioNetHdrGSOTCPv4}, tcpPacket(t, 1, 0, payload), 0, 0, errBadVirtioHeader},
		{"UDP GSO", virtioNetHdr{gsoType: 3, gsoSize: 1000}, tcpPacket(t, 1, 0, nil), 0, 0, errUnsupportedGSO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := bytes.Clone(tt.pkt)
			gso, flags, err := fromKernel(&tt.hdr, tt.pkt)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if gso != tt.gso || flags != tt.flags {
				t.Fatalf("gso %d flags %v, want %d %v", gso, flags, tt.gso, tt.flags)
			}
			if !bytes.Equal(tt.pkt, sent) {
				t.Fatal("the packet was changed")
			}
			if flags&FlagChecksumPartial != 0 {
				setFullChecksum(tt.pkt, header.IPv4MinimumSize) // as a capture's copy gets it
			}
			checkTCP(t, tt.pkt)
		})
	}
}

func TestTCPv4Headers(t *testing.T) {
	good := tcpPacket(t, 1, 0, []byte("x"))
	if ihl, thl, err := tcpv4Headers(good); err != nil || ihl != 20 || thl != 20 {
		t.Fatal(ihl, thl, err)
	}
	udp := append([]byte{}, good...)
	udp[9] = header.UDPProtocolNumber
	frag := append([]byte{}, good...)
	header.IPv4(frag).SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
	badOff := append([]byte{}, good...)
	badOff[32] = 0xf0
	for name, tc := range map[string]struct {
		pkt  []byte
		want error
	}{
		"short":             {good[:19], ErrBadPacket},
		"total length":      {good[:40], ErrBadPacket},
		"not TCP":           {udp, ErrNotTCP},
		"fragment":          {frag, ErrNotTCP},
		"data offset large": {badOff, ErrBadPacket},
	} {
		if _, _, err := tcpv4Headers(tc.pkt); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
}
