package header

import (
	"errors"
	"strings"
	"testing"
)

var (
	tcpSrc = IPv4Addr{10, 77, 0, 1}
	tcpDst = IPv4Addr{10, 77, 0, 2}
)

// linuxSYN is the option block Linux puts on a SYN: MSS 1460,
// SACK-permitted, timestamps, NOP, window scale 7.
const linuxSYNOptions = "020405b4 0402 080a 0001e240 00000000 01 030307"

func buildSegment(t testing.TB, f TCPFields, opts TCPOptions, payload string) []byte {
	t.Helper()
	b := make([]byte, TCPMinimumSize+opts.EncodedLen()+len(payload))
	hl := TCP(b).EncodeWithOptions(&f, opts)
	copy(b[hl:], payload)
	TCP(b).SetChecksum(TCPChecksum(tcpSrc, tcpDst, b))
	return b
}

func TestTCPAccessors(t *testing.T) {
	f := TCPFields{SrcPort: 40000, DstPort: 80, SeqNum: 0xfffffff0, AckNum: 17,
		Flags: TCPFlagSyn | TCPFlagAck, WindowSize: 64240, Urgent: 3}
	opts := NoTCPOptions()
	opts.MSS = 1460
	seg := buildSegment(t, f, opts, "hello")
	h := TCP(seg)
	if h.SourcePort() != 40000 || h.DestinationPort() != 80 || h.SequenceNumber() != 0xfffffff0 ||
		h.AckNumber() != 17 || h.DataOffset() != 24 || h.Flags() != TCPFlagSyn|TCPFlagAck ||
		h.WindowSize() != 64240 || h.UrgentPointer() != 3 || string(h.Payload()) != "hello" {
		t.Fatalf("fields %+v payload %q", h.Fields(), h.Payload())
	}
	if got := h.Flags().String(); got != "SYN|ACK" {
		t.Fatalf("flags string %q", got)
	}
	if !h.IsChecksumValid(tcpSrc, tcpDst) {
		t.Fatal("checksum does not verify")
	}
	if h.IsChecksumValid(tcpSrc, IPv4Addr{10, 77, 0, 3}) {
		t.Fatal("checksum verifies with the wrong pseudo-header (RFC 9293, 3.1)")
	}
}

func TestValidateTCP(t *testing.T) {
	good := func() []byte {
		return buildSegment(t, TCPFields{SrcPort: 1, DstPort: 2, Flags: TCPFlagAck}, NoTCPOptions(), "data")
	}
	tests := []struct {
		name     string
		seg      func() []byte
		checksum bool
		want     error
		msg      string
	}{
		{"good", good, true, nil, ""},
		{"truncated fixed header", func() []byte { return good()[:19] }, true, ErrTruncated, "length 19 < 20"},
		{"data offset 4 words (RFC 9293, 3.1: at least 5)", func() []byte { b := good(); b[12] = 4 << 4; return b }, false, ErrBadDataOffset, "data offset 4 < 5"},
		{"data offset past the segment", func() []byte { b := good(); b[12] = 15 << 4; return b }, false, ErrBadDataOffset, "data offset 60 > 24"},
		{"bad checksum", func() []byte { b := good(); b[len(b)-1] ^= 0x40; return b }, true, ErrBadChecksum, "checksum"},
		{"bad checksum ignored when the link verified it", func() []byte { b := good(); b[len(b)-1] ^= 0x40; return b }, false, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTCP(tt.seg(), tcpSrc, tcpDst, tt.checksum)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestParseTCP(t *testing.T) {
	seg := make([]byte, 20+20)
	TCP(seg).Encode(&TCPFields{DataOffset: 40, Flags: TCPFlagSyn})
	copy(seg[20:], mustHex(t, linuxSYNOptions))
	TCP(seg).SetChecksum(TCPChecksum(tcpSrc, tcpDst, seg))
	h, opts, err := ParseTCP(seg, tcpSrc, tcpDst, true)
	if err != nil {
		t.Fatal(err)
	}
	if h.Flags() != TCPFlagSyn || opts.MSS != 1460 || opts.WScale != 7 || !opts.SACKPermitted || !opts.TS || opts.TSVal != 123456 {
		t.Fatalf("opts %+v", opts)
	}
	seg[21] = 3 // MSS length 3
	TCP(seg).SetChecksum(0)
	TCP(seg).SetChecksum(TCPChecksum(tcpSrc, tcpDst, seg))
	if _, _, err := ParseTCP(seg, tcpSrc, tcpDst, true); !errors.Is(err, ErrBadOptionLength) {
		t.Fatalf("err = %v, want bad option length", err)
	}
}
