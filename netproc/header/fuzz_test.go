package header

import (
	"bytes"
	"errors"
	"testing"
)

// Fuzz targets for every parser of untrusted bytes. Properties: never panic;
// every error is a *ParseError; what parses re-encodes to what parses the
// same way.

func FuzzIPv4(f *testing.F) {
	f.Add(mustHex(f, wikiHeader))
	opt := make([]byte, 32)
	IPv4(opt).Encode(&IPv4Fields{TotalLength: 32, ID: 9, Flags: IPv4FlagMoreFragments, FragmentOffset: 8,
		TTL: 1, Protocol: 6, Options: []byte{1, 7, 3, 4, 0}})
	f.Add(opt)
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		err := ValidateIPv4(b)
		h := IPv4(b)
		_ = h.Payload()
		_ = h.Options()
		if err != nil {
			wantParseError(t, err)
			return
		}
		tl, hl := int(h.TotalLength()), h.HeaderLength()
		if len(h.Payload()) != tl-hl || len(h.Options()) != hl-IPv4MinimumSize {
			t.Fatalf("payload %d options %d for tl %d hl %d", len(h.Payload()), len(h.Options()), tl, hl)
		}
		fields := h.Fields()
		out := make([]byte, tl)
		IPv4(out).Encode(&fields)
		copy(out[hl:], h.Payload())
		if err := ValidateIPv4(out); err != nil {
			t.Fatalf("re-encoded header invalid: %v", err)
		}
		// Equal except that a stored 0xffff and a computed 0x0000 are the
		// same checksum in one's complement.
		in := append([]byte{}, b[:tl]...)
		IPv4(in).SetChecksum(0)
		IPv4(out).SetChecksum(0)
		if !bytes.Equal(in, out) {
			t.Fatalf("round trip\n in %x\nout %x", in, out)
		}
	})
}

func FuzzTCP(f *testing.F) {
	f.Add(buildSegment(f, TCPFields{SrcPort: 1, DstPort: 2, Flags: TCPFlagAck}, NoTCPOptions(), "data"), false)
	syn := make([]byte, 40)
	TCP(syn).Encode(&TCPFields{DataOffset: 40, Flags: TCPFlagSyn})
	copy(syn[20:], mustHex(f, linuxSYNOptions))
	f.Add(syn, true)
	f.Fuzz(func(t *testing.T, b []byte, fixChecksum bool) {
		if fixChecksum && len(b) >= TCPMinimumSize {
			TCP(b).SetChecksum(0)
			TCP(b).SetChecksum(TCPChecksum(tcpSrc, tcpDst, b))
		}
		h := TCP(b)
		if len(b) >= TCPMinimumSize {
			_ = h.Payload()
			_ = h.Options()
		}
		verr := ValidateTCP(b, tcpSrc, tcpDst, true)
		if fixChecksum && verr != nil && errors.Is(verr, ErrBadChecksum) {
			t.Fatalf("fixed checksum rejected: %v", verr)
		}
		_, opts, err := ParseTCP(b, tcpSrc, tcpDst, false)
		if err != nil {
			wantParseError(t, err)
			return
		}
		if len(h.Options()) > TCPMaximumOptionsSize {
			t.Fatalf("options %d bytes", len(h.Options()))
		}
		// Re-encode the fields and options with this package's layout and
		// parse again: same fields, options and payload.
		fields := h.Fields()
		out := make([]byte, TCPMinimumSize+opts.EncodedLen()+len(h.Payload()))
		hl := TCP(out).EncodeWithOptions(&fields, opts)
		copy(out[hl:], h.Payload())
		TCP(out).SetChecksum(TCPChecksum(tcpSrc, tcpDst, out))
		h2, opts2, err := ParseTCP(out, tcpSrc, tcpDst, true)
		if err != nil {
			t.Fatalf("re-encoded segment invalid: %v", err)
		}
		f2 := h2.Fields()
		f2.DataOffset, fields.DataOffset = 0, 0
		f2.Checksum, fields.Checksum = 0, 0
		if f2 != fields || opts2 != opts || !bytes.Equal(h2.Payload(), h.Payload()) {
			t.Fatalf("round trip\n in %+v %+v\nout %+v %+v", fields, opts, f2, opts2)
		}
	})
}

func FuzzTCPOptions(f *testing.F) {
	for _, s := range []string{linuxSYNOptions, "0101 0512 00000064 000000c8 0000012c 00000190", "1e04abcd 020405b4", "0502", "01"} {
		f.Add(mustHex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > TCPMaximumOptionsSize {
			b = b[:TCPMaximumOptionsSize] // a data offset of 15 is the most a header says
		}
		o, err := ParseTCPOptions(b)
		if err != nil {
			wantParseError(t, err)
			return
		}
		if o.NumSACK > MaxSACKBlocks || o.WScale > MaxWScale || o.WScale < -1 {
			t.Fatalf("out of range: %+v", o)
		}
		enc := make([]byte, o.EncodedLen())
		n := o.Encode(enc)
		if n != len(enc) || n%4 != 0 || n > TCPMaximumOptionsSize {
			t.Fatalf("encoded %d bytes, EncodedLen %d", n, len(enc))
		}
		o2, err := ParseTCPOptions(enc)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if o2 != o {
			t.Fatalf("round trip lost options: %x\n in %+v\nout %+v", b, o, o2)
		}
	})
}

// wantParseError fails t unless err is a *ParseError whose message can be
// made.
func wantParseError(t *testing.T, err error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ParseError", err)
	}
	_ = err.Error()
}
