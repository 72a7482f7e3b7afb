package kernel

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"saturn/internal/serverkit"
)

// The socket table: one record per socket the supervisor holds for netproc
// (see store.go), in netproc's persistent memory (proto.PersistFromEnv),
// so that the next incarnation knows what each descriptor it gets back is,
// who holds it and how far its streams got. Only netproc maps this memory,
// but a death may stop a write anywhere, and the records are read back as
// hostile input: every field is checked, a record that fails is freed and
// its socket closed.
//
// Layout, little-endian; a header page, then 128-byte records:
//
//	header: 0 magic "SATKRN01", 8 version uint32, 12 record size uint32,
//	        16 records uint32, 20 high uint32 (records past it never used)
//	record: 0   state      uint32 recFree, recLive (written last when made, first when freed)
//	        4   gen        uint32 bumped at every use of the record
//	        8   kind       uint32 kindListener, kindAccepted, kindDialed
//	        12  flags      uint32 flagConnected, flagShutWrite, flagV6Only, flagReusePort
//	        16  owner      uint64 the app channel that holds it (its ID)
//	        24  handle     uint64 the app's handle for it
//	        32  call       uint64 the user_data of the call that made it (0: none)
//	        40  sent       uint64 bytes the socket has taken from the app
//	        48  writing    uint64 a write of this many bytes is under way (0: none)
//	        56  consumed   uint64 bytes received that the app has and the socket let go
//	        64  discarding uint64 a consuming read of this many bytes is under way (0: none)
//	        72  closeAt    uint64 the app closed it at this stream end (0: open)
//	        80  backlog    uint32 a listener's backlog
//
// The counters are single aligned 8-byte stores; a write (or a consuming
// read) is bracketed by its intent (writing, discarding), so that a record
// left by a death in the middle of one is told apart, and settled from the
// kernel's own counts (see settle in resume.go).
const (
	tableMagic   = "SATKRN01"
	tableVersion = 1
	tableHeader  = 4096
	recordSize   = 128
	// maxRecords bounds the table whatever the memory's size.
	maxRecords = 1 << 20

	hVersion = 8
	hRecord  = 12
	hRecords = 16
	hHigh    = 20

	rState      = 0
	rGen        = 4
	rKind       = 8
	rFlags      = 12
	rOwner      = 16
	rHandle     = 24
	rCall       = 32
	rSent       = 40
	rWriting    = 48
	rConsumed   = 56
	rDiscarding = 64
	rCloseAt    = 72
	rBacklog    = 80
)

const (
	recFree uint32 = 0
	recLive uint32 = 1
)

// Kinds of socket.
const (
	kindListener uint32 = 1 + iota
	kindAccepted
	kindDialed
)

// Record flags.
const (
	flagConnected uint32 = 1 << iota // a dialed socket's connect finished
	flagShutWrite                    // the app shut down its sending side
	flagV6Only
	flagReusePort
	knownFlags = flagConnected | flagShutWrite | flagV6Only | flagReusePort
)

// table is the mapped socket table. Loop only.
type table struct {
	mem     []byte
	records int
	high    int   // records past it have never been used
	free    []int // free records below high, used first
	discard string
}

// openTable maps f (nil: a private memfd of size bytes, in tests) and
// checks or initialises its header. A header of another layout, or of
// another backend (usertcp keeps its connections in the same memory), is
// discarded: nothing in it can be trusted to describe a kernel socket.
func openTable(f *os.File, size int64) (*table, error) {
	if f != nil {
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("kernel: socket table: %w", err)
		}
		size = st.Size()
	}
	mem, err := serverkit.MapPersist(f, "saturn-kernel-sockets", size)
	if err != nil {
		return nil, fmt.Errorf("kernel: socket table: %w", err)
	}
	if len(mem) < tableHeader+recordSize {
		unix.Munmap(mem)
		return nil, fmt.Errorf("kernel: socket table: %d bytes hold no record", len(mem))
	}
	t := &table{mem: mem, records: min((len(mem)-tableHeader)/recordSize, maxRecords)}
	hdr := t.header()
	switch verdict, what := hdr.Check(mem); verdict {
	case serverkit.PersistOurs:
		t.high = min(int(binary.LittleEndian.Uint32(mem[hHigh:])), t.records)
	case serverkit.PersistForeign, serverkit.PersistOtherLayout:
		t.discard = what
		clear(mem[:tableHeader])
		fallthrough
	default:
		binary.LittleEndian.PutUint32(mem[hHigh:], 0)
		hdr.Write(mem)
	}
	return t, nil
}

func (t *table) header() *serverkit.PersistHeader {
	return &serverkit.PersistHeader{Magic: tableMagic, Fields: []serverkit.PersistField{
		{Name: "version", Off: hVersion, Size: 4, Want: tableVersion},
		{Name: "record size", Off: hRecord, Size: 4, Want: recordSize},
		{Name: "records", Off: hRecords, Size: 4, Want: uint64(t.records)},
	}}
}

func (t *table) close() error {
	if t == nil {
		return nil
	}
	return serverkit.UnmapPersist(&t.mem)
}

func (t *table) rec(i int) []byte {
	off := tableHeader + i*recordSize
	return t.mem[off : off+recordSize : off+recordSize]
}

func (t *table) u32(i, off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&t.rec(i)[off]))
}

func (t *table) u64(i, off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&t.rec(i)[off]))
}

// record is a record's contents, read once into private memory.
type record struct {
	slot                          int
	gen, kind, flags, backlog     uint32
	owner, handle, call           uint64
	sent, writing                 uint64
	consumed, discarding, closeAt uint64
}

// key names record i's socket in the supervisor's store: its generation
// and its index, so that a descriptor of an earlier use of the record is
// never taken for this one.
func (r record) key() uint64 { return uint64(r.gen)<<32 | uint64(r.slot) }

// slotOf splits a key; ok is false for an index outside the table.
func (t *table) slotOf(key uint64) (slot int, gen uint32, ok bool) {
	slot, gen = int(uint32(key)), uint32(key>>32)
	return slot, gen, slot < t.high
}

// read decodes record i; ok is false for a free record or one that fails
// a check.
func (t *table) read(i int) (record, bool) {
	b := t.rec(i)
	le := binary.LittleEndian
	r := record{
		slot: i, gen: t.u32(i, rGen).Load(), kind: le.Uint32(b[rKind:]), flags: le.Uint32(b[rFlags:]), backlog: le.Uint32(b[rBacklog:]),
		owner: le.Uint64(b[rOwner:]), handle: le.Uint64(b[rHandle:]), call: le.Uint64(b[rCall:]),
		sent: t.u64(i, rSent).Load(), writing: t.u64(i, rWriting).Load(),
		consumed: t.u64(i, rConsumed).Load(), discarding: t.u64(i, rDiscarding).Load(), closeAt: le.Uint64(b[rCloseAt:]),
	}
	const huge = 1 << 62 // no stream of a life comes near
	switch {
	case t.u32(i, rState).Load() != recLive:
		return r, false
	case r.kind < kindListener || r.kind > kindDialed || r.flags&^knownFlags != 0:
		return r, false
	case r.owner == 0 || r.handle == 0 || r.handle>>63 != 0:
		return r, false
	case r.sent > huge || r.writing > huge || r.consumed > huge || r.discarding > huge || r.closeAt > huge:
		return r, false
	case r.kind == kindListener && (r.sent|r.writing|r.consumed|r.discarding|r.closeAt != 0 || r.flags&^(flagV6Only|flagReusePort) != 0):
		return r, false
	}
	return r, true
}

// load reads every record that was ever used, frees those that fail, and
// returns the live ones by index. It rebuilds the free list.
func (t *table) load() map[int]record {
	out := map[int]record{}
	t.free = t.free[:0]
	for i := t.high - 1; i >= 0; i-- {
		r, ok := t.read(i)
		if !ok {
			t.u32(i, rState).Store(recFree)
			t.free = append(t.free, i)
			continue
		}
		out[i] = r
	}
	return out
}

// alloc makes a live record for r (its slot and generation are set here)
// and returns it; false when the table is full.
func (t *table) alloc(r *record) bool {
	var i int
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else if t.high < t.records {
		i = t.high
		t.high++
		binary.LittleEndian.PutUint32(t.mem[hHigh:], uint32(t.high))
	} else {
		return false
	}
	r.slot = i
	r.gen = t.u32(i, rGen).Load() + 1
	b := t.rec(i)
	le := binary.LittleEndian
	t.u32(i, rState).Store(recFree) // unpublished while written
	t.u32(i, rGen).Store(r.gen)
	le.PutUint32(b[rKind:], r.kind)
	le.PutUint32(b[rFlags:], r.flags)
	le.PutUint32(b[rBacklog:], r.backlog)
	le.PutUint64(b[rOwner:], r.owner)
	le.PutUint64(b[rHandle:], r.handle)
	le.PutUint64(b[rCall:], r.call)
	t.u64(i, rSent).Store(r.sent)
	t.u64(i, rWriting).Store(0)
	t.u64(i, rConsumed).Store(r.consumed)
	t.u64(i, rDiscarding).Store(0)
	le.PutUint64(b[rCloseAt:], r.closeAt)
	t.u32(i, rState).Store(recLive)
	return true
}

// release frees record i.
func (t *table) release(i int) {
	t.u32(i, rState).Store(recFree)
	t.free = append(t.free, i)
}
