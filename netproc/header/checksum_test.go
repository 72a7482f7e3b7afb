package header

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// naiveChecksum adds 16-bit big-endian words one at a time, as RFC 1071,
// section 4.1 does in C.
func naiveChecksum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071, section 3: the words 0001 f203 f4f5 f6f7 sum to 0x2ddf0,
	// which folds to 0xddf2; the checksum stored is its complement.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Checksum(b, 0); got != 0xddf2 {
		t.Fatalf("Checksum = %#04x, want 0xddf2", got)
	}
	if got := ^Checksum(b, 0); got != 0x220d {
		t.Fatalf("complement = %#04x, want 0x220d", got)
	}
}

func TestChecksumMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		init := uint16(rng.Uint32())
		if got, want := Checksum(b, init), naiveChecksum(b, init); got != want {
			t.Fatalf("len %d: Checksum = %#04x, naive = %#04x", n, got, want)
		}
	}
	// All ones exercises every carry.
	b := make([]byte, 70000)
	for i := range b {
		b[i] = 0xff
	}
	if got, want := Checksum(b, 0xffff), naiveChecksum(b, 0xffff); got != want {
		t.Fatalf("all ones: %#04x, want %#04x", got, want)
	}
}

func TestChecksumCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		a := make([]byte, 2*rng.IntN(40))
		b := make([]byte, rng.IntN(80))
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		whole := Checksum(append(append([]byte{}, a...), b...), 0)
		if got := ChecksumCombine(Checksum(a, 0), Checksum(b, 0)); got != whole && !(got == 0xffff && whole == 0) && !(got == 0 && whole == 0xffff) {
			t.Fatalf("combine = %#04x, whole = %#04x", got, whole)
		}
	}
}

func TestPseudoHeaderChecksum(t *testing.T) {
	// RFC 9293, section 3.1: source, destination, zero, PTCL, TCP length.
	src, dst := IPv4Addr{10, 77, 0, 1}, IPv4Addr{10, 77, 0, 2}
	ph := []byte{10, 77, 0, 1, 10, 77, 0, 2, 0, 6, 0x05, 0xdc}
	if got, want := PseudoHeaderChecksum(TCPProtocolNumber, src, dst, 1500), naiveChecksum(ph, 0); got != want {
		t.Fatalf("pseudo-header sum = %#04x, want %#04x", got, want)
	}
}

func TestChecksumUpdateRFC1624(t *testing.T) {
	// RFC 1624, section 4 (the example: a field changing from 0x5555 to
	// 0x3285 must yield the same checksum as recomputing, never -0).
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		b := make([]byte, 2+2*rng.IntN(30))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if rng.IntN(10) == 0 {
			clear(b) // the all-zero data where RFC 1141 gives -0
		}
		binary.BigEndian.PutUint16(b, 0)
		binary.BigEndian.PutUint16(b, ^Checksum(b, 0))
		field := 2 * rng.IntN(len(b)/2)
		if field == 0 {
			continue
		}
		old := binary.BigEndian.Uint16(b[field:])
		nw := uint16(rng.Uint32())
		binary.BigEndian.PutUint16(b[field:], nw)
		hc := ChecksumUpdate(binary.BigEndian.Uint16(b), old, nw)
		binary.BigEndian.PutUint16(b, hc)
		if Checksum(b, 0) != 0xffff {
			t.Fatalf("after update %#04x->%#04x the checksum %#04x does not verify", old, nw, hc)
		}
		binary.BigEndian.PutUint16(b, 0)
		if want := ^Checksum(b, 0); hc != want && want != 0 {
			// Recomputation and equation 3 agree except that a recomputed
			// 0x0000 may appear as 0xffff (both are zero).
			t.Fatalf("incremental %#04x, recomputed %#04x", hc, want)
		}
	}
}

func TestChecksumUpdate32(t *testing.T) {
	b := make([]byte, 12)
	binary.BigEndian.PutUint32(b[4:], 0x0a4d0001)
	binary.BigEndian.PutUint32(b[8:], 0xdeadbeef)
	binary.BigEndian.PutUint16(b, ^Checksum(b, 0))
	binary.BigEndian.PutUint32(b[4:], 0xc0a80102)
	hc := ChecksumUpdate32(binary.BigEndian.Uint16(b), 0x0a4d0001, 0xc0a80102)
	binary.BigEndian.PutUint16(b, hc)
	if Checksum(b, 0) != 0xffff {
		t.Fatal("32-bit update does not verify")
	}
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		Checksum(buf, 0)
	}
}

func BenchmarkChecksum64K(b *testing.B) {
	buf := make([]byte, 65000)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		Checksum(buf, 0)
	}
}
