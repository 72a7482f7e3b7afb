package usertcp

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"reflect"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"saturn/internal/serverkit"
	"saturn/netproc/leftover"
	"saturn/netproc/tcp"
)

// The connection table lives in netproc's persistent memory
// (proto.PersistFromEnv): a memfd that the supervisor holds for the life of
// the instance and hands to every incarnation of netproc. It is laid out as
// fixed-size records, so that a later incarnation can find every connection
// the dead one left, with its bytes:
//
//	header (one page, little-endian):
//	  0  magic      "SATTCP01"
//	  8  version    uint32
//	  12 record     uint32  record size
//	  16 connSize   uint32  unsafe.Sizeof(tcp.Conn): the core's layout
//	  20 records    uint32  capacity
//	  24 sndCap     uint32  send-buffer slot size
//	  28 rcvCap     uint32  receive-buffer slot size
//	  32 recOff     uint64  where the records start
//	  40 bufOff     uint64  where the buffer slots start
//	  48 size       uint64  bytes the layout needs
//	  56 incarnation uint64 bumped by every netproc that opens the table
//	  64 secret     [16]byte ISN, timestamp-offset and SYN-cookie key
//	  80 used       uint32  records ever used: those past it were never touched
//	  88 layout     uint64  connLayout: a hash of tcp.Conn's fields
//	  96 netns      [32]byte the namespace a netproc of this instance created
//	                        (a length byte, then the name), removed at stop;
//	                        package leftover fixes this record and the magic
//	record i (recordSize bytes at recOff + i*recordSize):
//	  0  state      uint32  recFree, recOpen (an app holds it, or it waits in
//	                        an accept queue), recOrphan (the app closed it; it
//	                        finishes FIN-WAIT/LAST-ACK/TIME-WAIT on its own),
//	                        recListen (a listener: see listenrec.go; from
//	                        offset 64 on it holds the listener, not a conn)
//	  4  gen        uint32  bumped at every reuse of the record
//	  8  sndSize    uint32  the connection's buffer sizes (the core fixes
//	  12 rcvSize    uint32  them at open)
//	  16 listen     uint16  the listener's port, for a child not yet accepted
//	  20 seq        uint32  odd while the connection is being written (see
//	                        stepRecord): a record left odd was torn by a death
//	  24 owner      uint64  the app channel that holds it (its ID), 0: none
//	  32 handle     uint64  the app's handle for it in that channel
//	  40 closeAt    uint64  the app closed it at this stream end (0: open)
//	  48 call       uint64  the user_data of the app's accept, connect or
//	                        listen that made it (0: none recorded)
//	  64 conn       tcp.Conn, stepped in place
//	buffer slot i (sndCap+rcvCap bytes at bufOff + i*(sndCap+rcvCap)):
//	  the send buffer, then the receive buffer, each used from its start
//
// tcp.Conn is plain data with no pointers, so the core steps it right where
// it lies. Pages of the memfd cost memory only once written, so a large
// capacity is free until used; the reclaimer punches the pages of buffers
// that have emptied (see reclaim.go). The header is checked as hostile:
// another layout (version, sizes, the core's struct size and field layout)
// is discarded as a whole, and every record found in use is checked with
// tcp.Conn.Check. The version covers what this file lays out by hand (the
// header and the record's first bytes); the core's struct is covered by
// connLayout, which no one has to remember to bump. (recListen and call
// came later without a bump: a binary that knows neither frees a listener's
// record, as any record in a state it does not know, and ignores call.)
const (
	tableMagic   = leftover.Magic
	tableVersion = 2
	headerSize   = 4096
	recordSize   = 2304 // 2 KiB since RACK's transmission log, and a quarter more for BBR's model
	connOffset   = 64
	pageSize     = 4096
)

// The record must hold the core's connection: this fails to compile if
// tcp.Conn outgrows it.
var _ [recordSize - connOffset - int(unsafe.Sizeof(tcp.Conn{}))]byte

// connLayout is the layout of tcp.Conn as this binary compiled it, hashed:
// every field, nested ones included, by name, offset, size, alignment and
// type (a struct's type by its fields, not its name). Its size alone would let through a change that keeps the size (two
// fields swapped, a uint32 become an int32 or a [4]byte); a table with
// another hash is discarded, as one with another version is. A field
// renamed changes it too, which discards a table that could have been
// kept: the safe side of a mistake, and rare.
var connLayout = layoutHash(reflect.TypeFor[tcp.Conn]())

// layoutHash hashes typ's layout (FNV-1a over a line per type and field).
func layoutHash(typ reflect.Type) uint64 {
	h := fnv.New64a()
	writeLayout(h, typ, "", 0)
	return h.Sum64()
}

// writeLayout writes one line for typ found at off under the name path, then
// one for each of its fields or, for an array, for its element (the
// array's length is in its type's name).
func writeLayout(w io.Writer, typ reflect.Type, path string, off uintptr) {
	name := typ.String()
	if typ.Kind() == reflect.Struct {
		name = "struct" // its fields follow
	}
	fmt.Fprintf(w, "%s @%d %s %s size %d align %d\n", path, off, name, typ.Kind(), typ.Size(), typ.Align())
	switch typ.Kind() {
	case reflect.Struct:
		for i := range typ.NumField() {
			f := typ.Field(i)
			writeLayout(w, f.Type, path+"."+f.Name, off+f.Offset)
		}
	case reflect.Array:
		writeLayout(w, typ.Elem(), path+"[0]", off)
	}
}

// Record states.
const (
	recFree   uint32 = 0
	recOpen   uint32 = 1
	recOrphan uint32 = 2
	recListen uint32 = 3
)

// Header offsets.
const (
	hMagic       = 0
	hVersion     = 8
	hRecord      = 12
	hConnSize    = 16
	hRecords     = 20
	hSndCap      = 24
	hRcvCap      = 28
	hRecOff      = 32
	hBufOff      = 40
	hSize        = 48
	hIncarnation = 56
	hSecret      = 64
	hUsed        = 80
	hLayout      = 88
	hNetns       = leftover.NetnsOffset
)

// Record offsets.
const (
	rState   = 0
	rGen     = 4
	rSndSize = 8
	rRcvSize = 12
	rListen  = 16
	rSeq     = 20
	rOwner   = 24
	rHandle  = 32
	rCloseAt = 40
	rCall    = 48
)

// table is the mapped connection table. Loop only.
type table struct {
	file    *os.File
	mem     []byte
	records int
	sndCap  int
	rcvCap  int
	recOff  int
	bufOff  int
	size    int

	free []int32 // free records below used, most recently freed last
	used int32   // records ever used (mirrored in the header)

	layout      uint64 // the tcp.Conn layout hash this binary wants: connLayout
	secret      tcp.Secret
	incarnation uint64
	// found is what an earlier incarnation left: records in use, to be
	// recovered (see recover.go). fresh says the table was (re)initialised.
	fresh   bool
	discard string // why an earlier table was discarded, if it was
}

// tableLayout computes where things go for a capacity and slot sizes.
func tableLayout(records, sndCap, rcvCap int) (recOff, bufOff, size int) {
	recOff = headerSize
	bufOff = alignUp(recOff+records*recordSize, 1<<21) // 2 MiB: huge-page friendly
	size = bufOff + records*(sndCap+rcvCap)
	return
}

func alignUp(v, a int) int   { return (v + a - 1) / a * a }
func alignDown(v, a int) int { return v / a * a }

// openTable maps f (a private memfd when nil), growing it to the layout's
// size (a memfd grows sparse), and checks or initialises its header.
func openTable(f *os.File, records, sndCap, rcvCap int) (*table, error) {
	return openTableLayout(f, records, sndCap, rcvCap, connLayout)
}

// openTableLayout is openTable for a binary whose tcp.Conn has the layout
// hash layout: a test's way to be another binary.
func openTableLayout(f *os.File, records, sndCap, rcvCap int, layout uint64) (*table, error) {
	if records <= 0 || sndCap <= 0 || rcvCap <= 0 || sndCap%pageSize != 0 || rcvCap%pageSize != 0 {
		return nil, fmt.Errorf("usertcp: bad table geometry: %d records, slots %d+%d", records, sndCap, rcvCap)
	}
	recOff, bufOff, size := tableLayout(records, sndCap, rcvCap)
	mem, err := serverkit.MapPersist(f, "saturn-usertcp", int64(size))
	if err != nil {
		return nil, fmt.Errorf("usertcp: %w", err)
	}
	t := &table{file: f, mem: mem, records: records, sndCap: sndCap, rcvCap: rcvCap, recOff: recOff, bufOff: bufOff, size: size, layout: layout}
	switch verdict, what := t.header().Check(mem); verdict {
	case serverkit.PersistFresh:
		t.init()
	case serverkit.PersistForeign, serverkit.PersistOtherLayout:
		// Not ours (the memory is netproc's alone, so this is an older
		// layout or garbage): start afresh.
		t.discard = what
		t.init()
	default:
		le := binary.LittleEndian
		copy(t.secret[:], mem[hSecret:hSecret+16])
		t.used = int32(min(le.Uint32(mem[hUsed:]), uint32(records)))
		t.incarnation = le.Uint64(mem[hIncarnation:]) + 1
		le.PutUint64(mem[hIncarnation:], t.incarnation)
	}
	return t, nil
}

// header is the table's header as this binary lays it out: what must
// match for an earlier incarnation's table to be taken over.
func (t *table) header() *serverkit.PersistHeader {
	return &serverkit.PersistHeader{Magic: tableMagic, Fields: []serverkit.PersistField{
		{Name: "version", Off: hVersion, Size: 4, Want: tableVersion},
		{Name: "record size", Off: hRecord, Size: 4, Want: recordSize},
		{Name: "tcp.Conn size", Off: hConnSize, Size: 4, Want: uint64(unsafe.Sizeof(tcp.Conn{}))},
		{Name: "tcp.Conn layout hash", Off: hLayout, Size: 8, Want: t.layout},
		{Name: "records", Off: hRecords, Size: 4, Want: uint64(t.records)},
		{Name: "send slot", Off: hSndCap, Size: 4, Want: uint64(t.sndCap)},
		{Name: "receive slot", Off: hRcvCap, Size: 4, Want: uint64(t.rcvCap)},
		{Name: "records offset", Off: hRecOff, Size: 8, Want: uint64(t.recOff)},
		{Name: "buffers offset", Off: hBufOff, Size: 8, Want: uint64(t.bufOff)},
		{Name: "size", Off: hSize, Size: 8, Want: uint64(t.size)},
	}}
}

// init wipes the memory and writes a fresh header with a new secret.
func (t *table) init() {
	// Punch the whole mapping: zero pages, and no memory held for what an
	// earlier layout left behind.
	if err := unix.Madvise(t.mem, unix.MADV_REMOVE); err != nil {
		clear(t.mem[:headerSize])
		clear(t.mem[t.recOff : t.recOff+t.records*recordSize])
	}
	le := binary.LittleEndian
	m := t.mem
	t.incarnation = 1
	le.PutUint64(m[hIncarnation:], t.incarnation)
	crand.Read(t.secret[:]) // never fails on Linux
	copy(m[hSecret:], t.secret[:])
	le.PutUint32(m[hUsed:], 0)
	t.header().Write(m) // last: the header is valid once it has its magic
	t.used = 0
	t.free = t.free[:0]
	t.fresh = true
}

func (t *table) close() error {
	errs := []error{serverkit.UnmapPersist(&t.mem)}
	if t.file != nil {
		errs = append(errs, t.file.Close())
		t.file = nil
	}
	return errors.Join(errs...)
}

// rec returns record i's bytes.
func (t *table) rec(i int32) []byte {
	off := t.recOff + int(i)*recordSize
	return t.mem[off : off+recordSize : off+recordSize]
}

func (t *table) stateWord(i int32) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&t.rec(i)[rState]))
}

// seqWord is record i's step sequence: odd while a Step is under way.
func (t *table) seqWord(i int32) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&t.rec(i)[rSeq]))
}

// setOwner records the app channel and handle that hold record i. The
// owner goes last: a record with an owner has its handle.
func (t *table) setOwner(i int32, owner, handle uint64) {
	r := t.rec(i)
	binary.LittleEndian.PutUint64(r[rHandle:], handle)
	binary.LittleEndian.PutUint64(r[rOwner:], owner)
}

// setCall records the user_data of the app's call that made record i.
func (t *table) setCall(i int32, call uint64) { binary.LittleEndian.PutUint64(t.rec(i)[rCall:], call) }

// call returns what setCall recorded.
func (t *table) call(i int32) uint64 { return binary.LittleEndian.Uint64(t.rec(i)[rCall:]) }

// listenPort returns the listener a child waits on (see setListen).
func (t *table) listenPort(i int32) uint16 { return binary.LittleEndian.Uint16(t.rec(i)[rListen:]) }

// setCloseAt records the stream end at which the app closed record i.
func (t *table) setCloseAt(i int32, end uint64) {
	binary.LittleEndian.PutUint64(t.rec(i)[rCloseAt:], end)
}

// closeAt returns what setCloseAt recorded.
func (t *table) closeAt(i int32) uint64 { return binary.LittleEndian.Uint64(t.rec(i)[rCloseAt:]) }

// owner returns what setOwner recorded.
func (t *table) owner(i int32) (owner, handle uint64) {
	r := t.rec(i)
	return binary.LittleEndian.Uint64(r[rOwner:]), binary.LittleEndian.Uint64(r[rHandle:])
}

// conn returns the core's connection stored in record i.
func (t *table) conn(i int32) *tcp.Conn {
	return (*tcp.Conn)(unsafe.Pointer(&t.rec(i)[connOffset]))
}

// slot returns record i's buffer slot.
func (t *table) slot(i int32) []byte {
	n := t.sndCap + t.rcvCap
	off := t.bufOff + int(i)*n
	return t.mem[off : off+n : off+n]
}

// bufs returns record i's send and receive buffers at the given sizes.
func (t *table) bufs(i int32, snd, rcv int) (s, r []byte) {
	sl := t.slot(i)
	return sl[:snd:snd], sl[t.sndCap : t.sndCap+rcv : t.sndCap+rcv]
}

// alloc takes a free record for a connection with the given buffer sizes
// and marks it open; false when the table is full.
func (t *table) alloc(snd, rcv int, listenPort uint16) (int32, bool) {
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else if int(t.used) < t.records {
		i = t.used
		t.used++
		binary.LittleEndian.PutUint32(t.mem[hUsed:], uint32(t.used))
	} else {
		return 0, false
	}
	r := t.rec(i)
	le := binary.LittleEndian
	t.stateWord(i).Store(recFree) // unpublished while we write
	le.PutUint32(r[rGen:], le.Uint32(r[rGen:])+1)
	le.PutUint32(r[rSndSize:], uint32(snd))
	le.PutUint32(r[rRcvSize:], uint32(rcv))
	le.PutUint16(r[rListen:], listenPort)
	t.seqWord(i).Store(0)
	le.PutUint64(r[rOwner:], 0)
	le.PutUint64(r[rHandle:], 0)
	le.PutUint64(r[rCloseAt:], 0)
	le.PutUint64(r[rCall:], 0)
	*t.conn(i) = tcp.Conn{}
	t.stateWord(i).Store(recOpen)
	return i, true
}

// setState publishes a record's new state.
func (t *table) setState(i int32, s uint32) { t.stateWord(i).Store(s) }

// setListen records (or clears, with 0) the listener a child waits on.
func (t *table) setListen(i int32, port uint16) {
	binary.LittleEndian.PutUint16(t.rec(i)[rListen:], port)
}

// release frees record i.
func (t *table) release(i int32) {
	t.stateWord(i).Store(recFree)
	t.free = append(t.free, i)
}

// sizes returns record i's buffer sizes.
func (t *table) sizes(i int32) (snd, rcv int) {
	r := t.rec(i)
	return int(binary.LittleEndian.Uint32(r[rSndSize:])), int(binary.LittleEndian.Uint32(r[rRcvSize:]))
}

// punch gives back the pages fully inside slot i's bytes [lo, hi): their
// contents become zeros and cost no memory until written again.
func (t *table) punch(i int32, lo, hi int) error {
	base := t.bufOff + int(i)*(t.sndCap+t.rcvCap)
	a, b := alignUp(base+lo, pageSize), alignDown(base+hi, pageSize)
	if b <= a {
		return nil
	}
	return unix.Madvise(t.mem[a:b], unix.MADV_REMOVE)
}

// gen returns record i's generation.
func (t *table) gen(i int32) uint32 { return binary.LittleEndian.Uint32(t.rec(i)[rGen:]) }

// setCreatedNamespace records that this instance's netproc created the
// namespace ns, so that whichever incarnation stops last removes it, or
// the supervisor if none is left (package leftover).
func (t *table) setCreatedNamespace(ns string) { leftover.SetNamespace(t.mem[:headerSize], ns) }

// createdNamespace returns the namespace recorded by setCreatedNamespace.
func (t *table) createdNamespace() string { return leftover.Namespace(t.mem[:headerSize]) }
