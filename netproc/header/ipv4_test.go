package header

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// wikiHeader is the example header of the "IPv4 header checksum" article:
// 192.168.0.1 -> 192.168.0.199, UDP, total length 115, DF, checksum b861.
const wikiHeader = "4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIPv4Accessors(t *testing.T) {
	b := mustHex(t, wikiHeader)
	h := IPv4(b)
	if h.Version() != 4 || h.HeaderLength() != 20 || h.TotalLength() != 0x73 ||
		!h.DontFragment() || h.MoreFragments() || h.FragmentOffset() != 0 ||
		h.TTL() != 0x40 || h.Protocol() != UDPProtocolNumber || h.Checksum() != 0xb861 ||
		h.SourceAddress() != (IPv4Addr{192, 168, 0, 1}) || h.DestinationAddress() != (IPv4Addr{192, 168, 0, 199}) {
		t.Fatalf("accessors disagree with RFC 791 layout: %+v", h.Fields())
	}
	// RFC 791, 3.1: the checksum field is the complement of the sum with
	// the field zero.
	if got := h.CalculateChecksum(); got != 0xb861 {
		t.Fatalf("CalculateChecksum = %#04x, want 0xb861", got)
	}
	if !h.IsChecksumValid() {
		t.Fatal("IsChecksumValid = false")
	}
	if h.SourceAddress().String() != "192.168.0.1" {
		t.Fatalf("String = %q", h.SourceAddress().String())
	}
}

func TestIPv4EncodeRoundTrip(t *testing.T) {
	f := IPv4Fields{
		TOS: 0x10, TotalLength: 28, ID: 0xbeef, Flags: IPv4FlagMoreFragments,
		FragmentOffset: 1480, TTL: 63, Protocol: ICMPv4ProtocolNumber,
		SrcAddr: IPv4Addr{10, 77, 0, 1}, DstAddr: IPv4Addr{10, 77, 0, 2},
		Options: []byte{1, 1, 1}, // three NOPs, padded to 4 with an EOL
	}
	b := make([]byte, 28)
	IPv4(b).Encode(&f)
	if err := ValidateIPv4(b); err != nil {
		t.Fatal(err)
	}
	got := IPv4(b).Fields()
	if !bytes.Equal(got.Options, []byte{1, 1, 1, 0}) {
		t.Fatalf("options = %x", got.Options)
	}
	got.Options, f.Options = nil, nil
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("fields = %+v, want %+v", got, f)
	}
}

func TestValidateIPv4(t *testing.T) {
	good := func() []byte {
		b := make([]byte, 40)
		IPv4(b).Encode(&IPv4Fields{TotalLength: 40, TTL: 64, Protocol: TCPProtocolNumber,
			SrcAddr: IPv4Addr{10, 0, 0, 1}, DstAddr: IPv4Addr{10, 0, 0, 2}})
		return b
	}
	// withOptions is a 24-byte header with the four bytes of options
	// given.
	withOptions := func(options ...byte) func() []byte {
		return func() []byte {
			b := make([]byte, 24)
			IPv4(b).Encode(&IPv4Fields{TotalLength: 24, TTL: 1, Options: options})
			return b
		}
	}
	fix := func(b []byte) []byte {
		IPv4(b).SetChecksum(0)
		IPv4(b).SetChecksum(IPv4(b).CalculateChecksum())
		return b
	}
	tests := []struct {
		name string
		pkt  func() []byte
		want error
		msg  string
	}{
		{"good", good, nil, ""},
		{"trailing link padding is allowed (RFC 791, 3.1 total length)", func() []byte { return append(good(), 0, 0, 0) }, nil, ""},
		{"shorter than 20 bytes", func() []byte { return good()[:19] }, ErrTruncated, "length 19 < 20"},
		{"version 6 (RFC 791, 3.1)", func() []byte { b := good(); b[0] = 0x65; return fix(b) }, ErrBadVersion, "version 6 != 4"},
		{"IHL 4 (RFC 791, 3.1: minimum 5)", func() []byte { b := good(); b[0] = 0x44; return b }, ErrBadIHL, "IHL 4 < 5"},
		{"IHL past the packet", func() []byte { b := good()[:20]; b[0] = 0x46; return b }, ErrTruncated, "header length 20 < 24"},
		{"total length below header", func() []byte { b := good(); IPv4(b).SetTotalLength(19); return fix(b) }, ErrBadTotalLength, "total length 19 < 20"},
		{"total length past the packet", func() []byte { b := good(); IPv4(b).SetTotalLength(41); return fix(b) }, ErrTruncated, "total length 40 < 41"},
		{"bad header checksum (RFC 1122, 3.2.1.2)", func() []byte { b := good(); b[8]--; return b }, ErrBadChecksum, "header checksum"},
		{"option length 1", withOptions(7, 1, 0, 0), ErrBadOptionLength, "option length 1 < 2"},
		{"option past the header", withOptions(1, 1, 7, 9), ErrTruncatedOption, "option length 9 > 2"},
		{"option length byte missing", withOptions(1, 1, 1, 7), ErrTruncatedOption, "option length byte"},
		{"options after end-of-list are not parsed", withOptions(0, 7, 9, 9), nil, ""},
		{"fragment ending past 65535 (ping of death)", func() []byte {
			b := good()
			IPv4(b).SetFlagsFragmentOffset(0, 65528)
			return fix(b)
		}, ErrBadFragment, "fragment end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateIPv4(tt.pkt())
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Header != "ipv4" {
					t.Fatalf("err %v is not an ipv4 *ParseError", err)
				}
				if !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("err %q does not say %q", err, tt.msg)
				}
			}
		})
	}
}

func TestIPv4PayloadClampsOnBadInput(t *testing.T) {
	// Accessors must not panic on unvalidated bytes (package doc).
	b := mustHex(t, wikiHeader) // total length 115 > 20 bytes present
	if p := IPv4(b).Payload(); len(p) != 0 {
		t.Fatalf("payload = %x", p)
	}
	b[0] = 0x4f
	if o := IPv4(b).Options(); len(o) != 0 {
		t.Fatalf("options = %x", o)
	}
	b[0] = 0x41
	b[2], b[3] = 0, 0
	_ = IPv4(b).Payload()
}

func TestICMPv4(t *testing.T) {
	// An echo request as ping sends it (RFC 792, "Echo or Echo Reply").
	m := make([]byte, 16)
	e := ICMPv4(m)
	e.SetType(ICMPv4Echo)
	e.SetIdent(0x1234)
	e.SetSequence(7)
	copy(e.Payload(), "saturn!!")
	e.SetChecksum(e.CalculateChecksum())
	if err := ValidateICMPv4(m); err != nil {
		t.Fatal(err)
	}
	if e.Type() != ICMPv4Echo || e.Code() != 0 || e.Ident() != 0x1234 || e.Sequence() != 7 {
		t.Fatal("accessors")
	}
	m[9] ^= 1
	if err := ValidateICMPv4(m); !errors.Is(err, ErrBadChecksum) {
		t.Fatalf("err = %v, want bad checksum", err)
	}
	if err := ValidateICMPv4(m[:7]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v, want truncated", err)
	}
	for typ, isErr := range map[ICMPv4Type]bool{ICMPv4Echo: false, ICMPv4EchoReply: false, ICMPv4DstUnreachable: true, ICMPv4TimeExceeded: true, ICMPv4ParamProblem: true} {
		if typ.IsError() != isErr {
			t.Errorf("type %d IsError = %v", typ, !isErr)
		}
	}
}
