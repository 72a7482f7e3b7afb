package header

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseTCPOptions(t *testing.T) {
	withSACK := func(blocks ...SACKBlock) TCPOptions {
		o := NoTCPOptions()
		o.NumSACK = uint8(len(blocks))
		copy(o.SACK[:], blocks)
		return o
	}
	tests := []struct {
		name string
		hex  string
		want TCPOptions
		err  error
		msg  string
	}{
		{"empty", "", NoTCPOptions(), nil, ""},
		{"Linux SYN (RFC 9293 3.7.1 MSS, RFC 2018 2, RFC 7323 2 and 3)", linuxSYNOptions,
			TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, TS: true, TSVal: 123456}, nil, ""},
		{"NOPs then EOL stops parsing (RFC 9293 3.2)", "0101 00 02", NoTCPOptions(), nil, ""},
		{"window scale 15 is taken as 14 (RFC 7323 2.3)", "01 03030f", TCPOptions{WScale: 14}, nil, ""},
		{"SACK with two blocks (RFC 2018 3)", "0101 0512 00000064 000000c8 0000012c 00000190",
			withSACK(SACKBlock{100, 200}, SACKBlock{300, 400}), nil, ""},
		{"unknown kind 30 is skipped by its length (RFC 9293 3.2)", "1e04abcd 020405b4", TCPOptions{MSS: 1460, WScale: -1}, nil, ""},
		{"the last of two MSS options counts", "020405b4 02040218", TCPOptions{MSS: 536, WScale: -1}, nil, ""},
		{"kind without its length byte", "0101 02", NoTCPOptions(), ErrTruncatedOption, "MSS length 1 < 2"},
		{"length 0 (RFC 9293 3.2: illegal option length)", "1e00", NoTCPOptions(), ErrBadOptionLength, "kind 30 length 0 < 2"},
		{"length 1", "0801", NoTCPOptions(), ErrBadOptionLength, "timestamps length 1 < 2"},
		{"length past the end", "080a00000001", NoTCPOptions(), ErrTruncatedOption, "timestamps length 10 > 6"},
		{"MSS length 5", "02050000 00", NoTCPOptions(), ErrBadOptionLength, "MSS length 5 != 4"},
		{"window scale length 4", "03040700", NoTCPOptions(), ErrBadOptionLength, "window scale length 4 != 3"},
		{"SACK-permitted length 3", "040300", NoTCPOptions(), ErrBadOptionLength, "SACK-permitted length 3 != 2"},
		{"timestamps length 8", "0808 00000000 0000", NoTCPOptions(), ErrBadOptionLength, "timestamps length 8 != 10"},
		{"SACK with no block", "0502", NoTCPOptions(), ErrBadOptionLength, "SACK length 2"},
		{"SACK with a partial block", "050b 00000001 00000002 00", NoTCPOptions(), ErrBadOptionLength, "SACK length 11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTCPOptions(mustHex(t, tt.hex))
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("err %q does not say %q", err, tt.msg)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestEncodeTCPOptions(t *testing.T) {
	syn := TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, TS: true, TSVal: 1, TSEcr: 0}
	ack := NoTCPOptions()
	ack.TS, ack.TSVal, ack.TSEcr = true, 5, 6
	ack.NumSACK = 3
	ack.SACK = [MaxSACKBlocks]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}
	four := NoTCPOptions()
	four.NumSACK = 4
	four.SACK = ack.SACK
	tests := []struct {
		name string
		in   TCPOptions
		hex  string
	}{
		{"none", NoTCPOptions(), ""},
		{"SYN: MSS, NOP+WS, SACK-permitted with timestamps", syn, "020405b4 01030307 0402080a 00000001 00000000"},
		{"timestamps with 3 SACK blocks pack without NOPs (RFC 2018 3)", ack,
			"080a 00000005 00000006 051a 00000001 00000002 00000003 00000004 00000005 00000006"},
		{"4 SACK blocks alone", four, "0101 0522 00000001 00000002 00000003 00000004 00000005 00000006 00000007 00000008"},
		{"SACK-permitted alone", TCPOptions{WScale: -1, SACKPermitted: true}, "01010402"},
		{"window scale above 14 written as 14 (RFC 7323 2.3)", TCPOptions{WScale: 20}, "0103030e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := mustHex(t, tt.hex)
			if n := tt.in.EncodedLen(); n != len(want) {
				t.Fatalf("EncodedLen = %d, want %d", n, len(want))
			}
			b := make([]byte, 40)
			n := tt.in.Encode(b)
			if !bytes.Equal(b[:n], want) {
				t.Fatalf("Encode = %x, want %x", b[:n], want)
			}
		})
	}
	// Timestamps and 4 SACK blocks do not fit 40 bytes: the fourth block is
	// left out (RFC 2018, section 3).
	full := ack
	full.NumSACK = 4
	b := make([]byte, 40)
	n := full.Encode(b)
	got, err := ParseTCPOptions(b[:n])
	if err != nil || got.NumSACK != 3 {
		t.Fatalf("NumSACK %d err %v, want 3 blocks", got.NumSACK, err)
	}
}

// normalize is what encoding and parsing again does to o.
func normalize(o TCPOptions) TCPOptions {
	if o.WScale > MaxWScale {
		o.WScale = MaxWScale
	}
	if o.WScale < 0 {
		o.WScale = -1
	}
	if !o.TS {
		o.TSVal, o.TSEcr = 0, 0
	}
	o.NumSACK = uint8(o.layout().sackBlocks)
	for i := int(o.NumSACK); i < MaxSACKBlocks; i++ {
		o.SACK[i] = SACKBlock{}
	}
	return o
}

func TestTCPOptionsRoundTripProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		o := TCPOptions{WScale: int8(rng.IntN(20) - 3)}
		if rng.IntN(2) == 0 {
			o.MSS = uint16(rng.Uint32())
		}
		o.SACKPermitted = rng.IntN(2) == 0
		if rng.IntN(2) == 0 {
			o.TS, o.TSVal, o.TSEcr = true, rng.Uint32(), rng.Uint32()
		}
		o.NumSACK = uint8(rng.IntN(MaxSACKBlocks + 1))
		for i := range o.NumSACK {
			o.SACK[i] = SACKBlock{rng.Uint32(), rng.Uint32()}
		}
		b := make([]byte, 40)
		n := o.Encode(b)
		if n != o.EncodedLen() || n%4 != 0 || n > 40 {
			t.Fatalf("%+v: encoded %d bytes, EncodedLen %d", o, n, o.EncodedLen())
		}
		got, err := ParseTCPOptions(b[:n])
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if want := normalize(o); got != want {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, want)
		}
	}
}
