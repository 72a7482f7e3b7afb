package ring

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
)

// The region header occupies the first page of every region. Its first part
// is written once by the creator and read (and validated) by every opener;
// the rest holds the words both sides update while the channel lives, each
// group on its own pair of cache lines so that the producer's and the
// consumer's stores never share a line (and the adjacent-line prefetcher does
// not pair them either).
//
// All integers are little-endian. The layout, by byte offset:
//
//	0    magic          [8]byte  "SATURNRG"
//	8    version        uint32   ABI version (Version)
//	12   header size    uint32   HeaderSize
//	16   sq entry size  uint32   bytes per submission entry
//	20   sq entries     uint32   power of two
//	24   cq entry size  uint32   bytes per completion entry
//	28   cq entries     uint32   power of two
//	32   buffer size    uint32   bytes per data buffer
//	36   buffer count   uint32
//	40   sq offset      uint64   where the submission slots begin
//	48   cq offset      uint64   where the completion slots begin
//	56   pool offset    uint64   where the data buffers begin
//	64   total size     uint64   bytes in the region (equals the file size)
//	128  server state   uint64   epoch<<32 | resume position (see Region.ServerEpoch)
//	136  app pid        uint32   written by the attaching app, for diagnostics
//	140  server caps    uint32   CapResume, CapDown (see Region.ServerCaps)
//	256  sq tail        uint32   written by the app (producer)
//	384  sq head        uint32   written by the server (consumer)
//	512  sq wake flag   uint32   set by a sleeping server; cleared by whoever wakes it
//	516  sq futex word  uint32   bumped by the app to wake the server
//	640  cq tail        uint32   written by the server (producer)
//	768  cq head        uint32   written by the app (consumer)
//	896  cq wake flag   uint32
//	900  cq futex word  uint32
//	1024 completed      uint64   operations the server has completed (all incarnations)
//	1032 submitted      uint64   entries the server has consumed (all incarnations)
const (
	offMagic       = 0
	offVersion     = 8
	offHeaderSize  = 12
	offSQEntrySize = 16
	offSQEntries   = 20
	offCQEntrySize = 24
	offCQEntries   = 28
	offBufferSize  = 32
	offBufferCount = 36
	offSQOffset    = 40
	offCQOffset    = 48
	offPoolOffset  = 56
	offTotalSize   = 64
	staticEnd      = 72 // bytes of the header that Validate reads

	offServerState = 128
	offAppPID      = 136
	offServerCaps  = 140
	offSQTail      = 256
	offSQHead      = 384
	offSQWakeFlag  = 512
	offSQFutex     = 516
	offCQTail      = 640
	offCQHead      = 768
	offCQWakeFlag  = 896
	offCQFutex     = 900
	offCompleted   = 1024
	offSubmitted   = 1032
)

// HeaderSize is the size of the header page.
const HeaderSize = 4096

// Version is the ring ABI version this package speaks. A region of any other
// version is refused.
const Version = 1

// Magic opens every region.
var Magic = [8]byte{'S', 'A', 'T', 'U', 'R', 'N', 'R', 'G'}

// Limits on geometry. They keep every offset computation far from overflow
// and every region a sensible size.
const (
	MaxEntries     = 1 << 20 // per ring
	MaxEntrySize   = 4096
	MaxBufferSize  = 16 << 20
	MaxBufferCount = 1 << 20
	MaxRegionSize  = 16 << 30
	pageSize       = 4096
)

// Geometry describes a region: the shape of its two rings and its buffer
// pool. Counts of ring entries must be powers of two so that a free-running
// counter masks to a slot.
type Geometry struct {
	SQEntrySize uint32 // bytes per submission entry (multiple of 8)
	SQEntries   uint32 // submission slots (power of two)
	CQEntrySize uint32 // bytes per completion entry (multiple of 8)
	CQEntries   uint32 // completion slots (power of two)
	BufferSize  uint32 // bytes per data buffer (multiple of 64)
	BufferCount uint32 // data buffers (may be zero)
}

// layout is where each part of a region lives, derived from a Geometry.
type layout struct {
	sqOffset, cqOffset, poolOffset, total uint64
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// Check reports the first thing wrong with g, naming it.
func (g Geometry) Check() error {
	if err := checkRing("submission", g.SQEntrySize, g.SQEntries); err != nil {
		return err
	}
	if err := checkRing("completion", g.CQEntrySize, g.CQEntries); err != nil {
		return err
	}
	if g.BufferCount > MaxBufferCount {
		return fmt.Errorf("%w: buffer count %d exceeds %d", ErrBadGeometry, g.BufferCount, MaxBufferCount)
	}
	if g.BufferCount > 0 {
		if g.BufferSize == 0 || g.BufferSize%64 != 0 || g.BufferSize > MaxBufferSize {
			return fmt.Errorf("%w: buffer size %d is not a multiple of 64 in (0, %d]", ErrBadGeometry, g.BufferSize, MaxBufferSize)
		}
	}
	if l := g.layout(); l.total > MaxRegionSize {
		return fmt.Errorf("%w: region of %d bytes exceeds %d", ErrBadGeometry, l.total, uint64(MaxRegionSize))
	}
	return nil
}

func checkRing(name string, size, count uint32) error {
	if size == 0 || size%8 != 0 || size > MaxEntrySize {
		return fmt.Errorf("%w: %s entry size %d is not a multiple of 8 in (0, %d]", ErrBadGeometry, name, size, MaxEntrySize)
	}
	if count == 0 || count > MaxEntries || bits.OnesCount32(count) != 1 {
		return fmt.Errorf("%w: %s ring of %d entries is not a power of two in [1, %d]", ErrBadGeometry, name, count, MaxEntries)
	}
	return nil
}

// layout computes offsets. Every part starts on a page boundary, so buffers
// whose size is a multiple of 4096 are page-aligned (what O_DIRECT wants).
// Only call it on a Geometry that passed Check, or whose fields are bounded
// by the Max constants: then nothing overflows.
func (g Geometry) layout() layout {
	var l layout
	l.sqOffset = HeaderSize
	l.cqOffset = alignUp(l.sqOffset+uint64(g.SQEntrySize)*uint64(g.SQEntries), pageSize)
	l.poolOffset = alignUp(l.cqOffset+uint64(g.CQEntrySize)*uint64(g.CQEntries), pageSize)
	l.total = alignUp(l.poolOffset+uint64(g.BufferSize)*uint64(g.BufferCount), pageSize)
	return l
}

// Size is the number of bytes a region of this geometry occupies.
func (g Geometry) Size() int64 { return int64(g.layout().total) }

// encodeHeader writes the static part of the header for g into page.
func encodeHeader(page []byte, g Geometry) {
	l := g.layout()
	le := binary.LittleEndian
	copy(page[offMagic:], Magic[:])
	le.PutUint32(page[offVersion:], Version)
	le.PutUint32(page[offHeaderSize:], HeaderSize)
	le.PutUint32(page[offSQEntrySize:], g.SQEntrySize)
	le.PutUint32(page[offSQEntries:], g.SQEntries)
	le.PutUint32(page[offCQEntrySize:], g.CQEntrySize)
	le.PutUint32(page[offCQEntries:], g.CQEntries)
	le.PutUint32(page[offBufferSize:], g.BufferSize)
	le.PutUint32(page[offBufferCount:], g.BufferCount)
	le.PutUint64(page[offSQOffset:], l.sqOffset)
	le.PutUint64(page[offCQOffset:], l.cqOffset)
	le.PutUint64(page[offPoolOffset:], l.poolOffset)
	le.PutUint64(page[offTotalSize:], l.total)
}

// ValidateHeader checks the static part of a region header read from a
// region of fileSize bytes, and returns its geometry. It trusts nothing in b:
// every field is checked, and offsets are recomputed from the geometry and
// compared, so a header whose offsets lie is refused rather than followed.
// It never panics, whatever b holds.
func ValidateHeader(b []byte, fileSize int64) (Geometry, error) {
	if len(b) < staticEnd {
		return Geometry{}, fmt.Errorf("%w: header is %d bytes, want at least %d", ErrBadHeader, len(b), staticEnd)
	}
	if !bytes.Equal(b[offMagic:offMagic+8], Magic[:]) {
		return Geometry{}, fmt.Errorf("%w: bad magic %q (not a saturn region)", ErrBadHeader, b[offMagic:offMagic+8])
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[offVersion:]); v != Version {
		return Geometry{}, fmt.Errorf("%w: ABI version %d, this binary speaks %d", ErrVersion, v, Version)
	}
	if hs := le.Uint32(b[offHeaderSize:]); hs != HeaderSize {
		return Geometry{}, fmt.Errorf("%w: header size %d, want %d", ErrBadHeader, hs, HeaderSize)
	}
	g := Geometry{
		SQEntrySize: le.Uint32(b[offSQEntrySize:]),
		SQEntries:   le.Uint32(b[offSQEntries:]),
		CQEntrySize: le.Uint32(b[offCQEntrySize:]),
		CQEntries:   le.Uint32(b[offCQEntries:]),
		BufferSize:  le.Uint32(b[offBufferSize:]),
		BufferCount: le.Uint32(b[offBufferCount:]),
	}
	if err := g.Check(); err != nil {
		return Geometry{}, fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	want := g.layout()
	got := layout{
		sqOffset:   le.Uint64(b[offSQOffset:]),
		cqOffset:   le.Uint64(b[offCQOffset:]),
		poolOffset: le.Uint64(b[offPoolOffset:]),
		total:      le.Uint64(b[offTotalSize:]),
	}
	switch {
	case got.sqOffset != want.sqOffset:
		return Geometry{}, fmt.Errorf("%w: submission ring offset %d, geometry says %d", ErrBadHeader, got.sqOffset, want.sqOffset)
	case got.cqOffset != want.cqOffset:
		return Geometry{}, fmt.Errorf("%w: completion ring offset %d, geometry says %d", ErrBadHeader, got.cqOffset, want.cqOffset)
	case got.poolOffset != want.poolOffset:
		return Geometry{}, fmt.Errorf("%w: buffer pool offset %d, geometry says %d", ErrBadHeader, got.poolOffset, want.poolOffset)
	case got.total != want.total:
		return Geometry{}, fmt.Errorf("%w: total size %d, geometry says %d", ErrBadHeader, got.total, want.total)
	}
	if fileSize < 0 || uint64(fileSize) != want.total {
		return Geometry{}, fmt.Errorf("%w: region file is %d bytes, header says %d", ErrBadHeader, fileSize, want.total)
	}
	return g, nil
}
