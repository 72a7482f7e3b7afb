package proto

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"syscall"
	"testing"
)

func TestSubmissionRoundTrip(t *testing.T) {
	s := Submission{Op: OpWrite, Flags: FlagAppend, Buf: 7, Len: 4096, Aux: 9,
		Handle: 1<<40 + 3, UserData: ^uint64(0), Offset: 1 << 33, Args: [3]uint64{1, 2, 3}}
	b := roundTrip(t, s, SubmissionSize, s.Encode, DecodeSubmission)
	// The layout is ABI: spot-check offsets.
	if b[0] != byte(OpWrite) || b[4] != 7 || b[16] != 3 || b[24] != 0xff {
		t.Fatalf("layout changed: % x", b)
	}
}

func TestSubmissionRefusals(t *testing.T) {
	good := make([]byte, SubmissionSize)
	(&Submission{Op: OpNop, UserData: 42, Buf: 3}).Encode(good)
	tests := []struct {
		name   string
		mutate func(b []byte)
		want   error
	}{
		{"unknown op", func(b []byte) { b[0] = 200 }, ErrBadOp},
		{"unknown flags", func(b []byte) { b[1] = 0x80 }, ErrBadFlags},
		{"reserved", func(b []byte) { b[2] = 1 }, ErrReserved},
	}
	for _, tt := range tests {
		b := append([]byte(nil), good...)
		tt.mutate(b)
		s, err := DecodeSubmission(b)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		// The fields come back anyway, for the error completion.
		if s.UserData != 42 || s.Buf != 3 {
			t.Errorf("%s: user_data %d buf %d lost", tt.name, s.UserData, s.Buf)
		}
	}
	if _, err := DecodeSubmission(good[:10]); !errors.Is(err, ErrShortEntry) {
		t.Errorf("short entry: %v", err)
	}
}

func TestCompletionRoundTrip(t *testing.T) {
	c := Completion{UserData: 99, Result: -int64(syscall.ECONNRESET), Buf: NoBuffer, Flags: FlagMore, Aux: 5}
	roundTrip(t, c, CompletionSize, c.Encode, DecodeCompletion)
	if !errors.Is(c.Err(), syscall.ECONNRESET) {
		t.Fatalf("Err() = %v, want ECONNRESET", c.Err())
	}
}

// roundTrip encodes v into size bytes with encode, decodes them, and fails
// the test unless v comes back; it returns the bytes, for checks of the
// layout.
func roundTrip[T comparable](t *testing.T, v T, size int, encode func([]byte), decode func([]byte) (T, error)) []byte {
	t.Helper()
	b := make([]byte, size)
	encode(b)
	got, err := decode(b)
	if err != nil || got != v {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, v)
	}
	return b
}

// refusesMutations fails the test unless decode refuses with want each copy
// of good changed by one of mutate, and good cut to short bytes.
func refusesMutations[T any](t *testing.T, good []byte, short int, decode func([]byte) (T, error), want error, mutate ...func([]byte)) {
	t.Helper()
	for i, m := range mutate {
		c := append([]byte(nil), good...)
		m(c)
		if _, err := decode(c); !errors.Is(err, want) {
			t.Errorf("mutation %d: %v, want %v", i, err, want)
		}
	}
	if _, err := decode(good[:short]); !errors.Is(err, want) {
		t.Errorf("cut to %d bytes: %v, want %v", short, err, want)
	}
}

func TestResultErrors(t *testing.T) {
	if err := ResultErr(12); err != nil {
		t.Errorf("positive result: %v", err)
	}
	if err := ResultErr(ErrResult(syscall.ENOENT)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ENOENT does not satisfy fs.ErrNotExist: %v", err)
	}
	if err := ResultErr(ResultOf(os.ErrDeadlineExceeded)); !errors.Is(err, syscall.EIO) {
		t.Errorf("an error without errno should become EIO: %v", err)
	}
	wrapped := &os.PathError{Op: "open", Path: "x", Err: syscall.EACCES}
	if err := ResultErr(ResultOf(wrapped)); !errors.Is(err, syscall.EACCES) {
		t.Errorf("wrapped errno lost: %v", err)
	}
	if err := ResultErr(-1 << 40); !errors.Is(err, ErrBadResult) {
		t.Errorf("out-of-range result: %v", err)
	}
}

func TestOps(t *testing.T) {
	for op := Op(0); op < opCount; op++ {
		if opInfo[op].name == "" {
			t.Errorf("opcode %d has no name", op)
		}
	}
	if !OpSend.ServedBy(ServerNet) || OpSend.ServedBy(ServerDisk) {
		t.Error("send is a network op")
	}
	if !OpClose.ServedBy(ServerNet) || !OpClose.ServedBy(ServerDisk) || !OpNop.ServedBy(ServerDisk) {
		t.Error("close and nop are served by both")
	}
	if Op(250).Valid() || Op(250).ServedBy(ServerNet) || Op(250).String() != "op(250)" {
		t.Error("unknown opcodes must be invalid")
	}
	for op := Op(0); op < opCount; op++ {
		want := op == OpAccept || op == OpConnect || op == OpRecv
		if op.Waits() != want {
			t.Errorf("%s: Waits() = %v, want %v", op, op.Waits(), want)
		}
	}
	if Op(250).Waits() {
		t.Error("an unknown opcode is no wait")
	}
}

// TestInlineSockAddr: OpConnect's address packed into the entry reads back
// as it went in, and a bad one is refused as DecodeSockAddr refuses it.
func TestInlineSockAddr(t *testing.T) {
	for _, s := range []string{"10.77.0.2:8080", "[::1]:443", "[fe80::1%3]:22", "[2001:db8::ff]:65535"} {
		ap := netip.MustParseAddrPort(s)
		off, a1, a2, err := InlineSockAddr(ap)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		sub := Submission{Op: OpConnect, Flags: FlagSelect, Offset: off, Args: [3]uint64{0, a1, a2}}
		var raw [SubmissionSize]byte
		sub.Encode(raw[:])
		back, err := DecodeSubmission(raw[:])
		if err != nil {
			t.Fatal(err)
		}
		if got, err := InlineAddr(&back); err != nil || got != ap {
			t.Errorf("%s: read back %v, %v", s, got, err)
		}
	}
	if _, err := InlineAddr(&Submission{Offset: 99}); !errors.Is(err, ErrBadAddr) {
		t.Errorf("a bad family: %v", err)
	}
}

func TestSockAddr(t *testing.T) {
	for _, s := range []string{"10.77.0.2:8080", "[::1]:443", "[fe80::1%3]:22", "0.0.0.0:0", "[::ffff:1.2.3.4]:5"} {
		ap := netip.MustParseAddrPort(s)
		b := make([]byte, SockAddrSize)
		if err := EncodeSockAddr(b, ap); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		got, err := DecodeSockAddr(b)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got != ap {
			t.Errorf("round trip %s: got %s", s, got)
		}
	}
	b := make([]byte, SockAddrSize)
	b[0] = 99
	if _, err := DecodeSockAddr(b); !errors.Is(err, ErrBadAddr) {
		t.Errorf("unknown family: %v", err)
	}
	EncodeSockAddr(b, netip.MustParseAddrPort("1.2.3.4:5"))
	b[12] = 1
	if _, err := DecodeSockAddr(b); !errors.Is(err, ErrBadAddr) {
		t.Errorf("stray bytes after IPv4: %v", err)
	}
	if err := EncodeSockAddr(b, netip.MustParseAddrPort("[fe80::1%eth0]:1")); !errors.Is(err, ErrBadAddr) {
		t.Errorf("named zone: %v", err)
	}
	if _, err := DecodeSockAddr(b[:5]); !errors.Is(err, ErrBadAddr) {
		t.Errorf("short address: %v", err)
	}
}

func FuzzDecodeSubmission(f *testing.F) {
	b := make([]byte, SubmissionSize)
	(&Submission{Op: OpRead, Buf: 1, Len: 10}).Encode(b)
	f.Add(b)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSubmission(b)
		if err != nil {
			return
		}
		// A valid entry re-encodes to the same bytes.
		out := make([]byte, SubmissionSize)
		s.Encode(out)
		if string(out) != string(b[:SubmissionSize]) {
			t.Fatalf("re-encoding differs:\n% x\n% x", out, b[:SubmissionSize])
		}
	})
}

func FuzzDecodeCompletion(f *testing.F) {
	f.Add(make([]byte, CompletionSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCompletion(b)
		if err != nil {
			return
		}
		_ = c.Err() // never panics
		out := make([]byte, CompletionSize)
		c.Encode(out)
		if string(out) != string(b[:CompletionSize]) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzDecodeSockAddr(f *testing.F) {
	b := make([]byte, SockAddrSize)
	EncodeSockAddr(b, netip.MustParseAddrPort("[fe80::1%3]:22"))
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		ap, err := DecodeSockAddr(b)
		if err != nil {
			return
		}
		out := make([]byte, SockAddrSize)
		if err := EncodeSockAddr(out, ap); err != nil {
			t.Fatalf("decoded %s does not encode: %v", ap, err)
		}
		back, err := DecodeSockAddr(out)
		if err != nil || back != ap {
			t.Fatalf("re-decoding %s: %s, %v", ap, back, err)
		}
	})
}
