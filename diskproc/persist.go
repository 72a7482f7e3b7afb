package diskproc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"saturn/internal/serverkit"
	"saturn/proto"
)

// The persistent open-file table: slots in the server's persistent memory
// (proto.PersistFromEnv), one per open file, that outlive an incarnation.
// Only diskproc maps this memory; still, a record may be half-written when
// an incarnation dies, so each one is published by a final atomic store of
// its state word, and every field is checked when a new incarnation loads
// it.
//
// Layout, little-endian: a header page, then fixed-size slots.
//
//	header: 0 magic "SATDISK1", 8 version uint32, 12 slot size uint32, 16 slot count uint32
//	slot:   0   state     uint32 (slotFree, slotOpening, slotOpen, slotClosed)
//	        4   flags     uint32 proto.OpenFlag
//	        8   channel   uint64
//	        16  handle    uint64
//	        24  open ud   uint64 the user_data of the open that made it
//	        32  dev       uint64
//	        40  ino       uint64
//	        48  when      int64  unix nanoseconds the open was started
//	        56  mode      uint32
//	        60  path len  uint32
//	        64  close ud  uint64 the user_data of the close (slotClosed)
//	        128 path      [MaxPathLen+1]byte
const (
	persistMagic   = "SATDISK1"
	persistVersion = 1
	persistHeader  = 4096
	slotSize       = 128 + proto.MaxPathLen + 1
)

type slotState uint32

const (
	slotFree    slotState = iota
	slotOpening           // an open was started; it may or may not have happened
	slotOpen              // the file is open under handle
	slotClosed            // a tombstone: the file was closed by close ud
)

// record is one slot's contents, in private memory.
type record struct {
	slot     int
	state    slotState
	flags    proto.OpenFlag
	channel  uint64
	handle   uint64
	openUD   uint64
	dev, ino uint64
	when     int64
	mode     uint32
	closeUD  uint64
	path     string
}

// persistTable is the table. Loop only.
type persistTable struct {
	mem   []byte
	slots int
	free  []int // free slots, used first
	tombs []int // tombstones, oldest first, reused when no slot is free
}

// openPersist maps f and checks or initialises its header. A nil f gets a
// private memfd of size bytes (an in-process server, in tests).
func openPersist(f *os.File, size int64) (*persistTable, error) {
	if f != nil {
		size = 0 // the supervisor's, as it is
	}
	mem, err := serverkit.MapPersist(f, "saturn-diskproc-persist", size)
	if err != nil {
		return nil, fmt.Errorf("diskproc: %w", err)
	}
	if len(mem) < persistHeader+slotSize {
		unix.Munmap(mem)
		return nil, fmt.Errorf("diskproc: persistent memory of %d bytes is too small for one slot", len(mem))
	}
	p := &persistTable{mem: mem, slots: (len(mem) - persistHeader) / slotSize}
	hdr := serverkit.PersistHeader{Magic: persistMagic, Fields: []serverkit.PersistField{
		{Name: "version", Off: 8, Size: 4, Want: persistVersion},
		{Name: "slot size", Off: 12, Size: 4, Want: slotSize},
		{Name: "slots", Off: 16, Size: 4, Want: uint64(p.slots)},
	}}
	switch verdict, what := hdr.Check(mem); verdict {
	case serverkit.PersistFresh:
		hdr.Write(mem)
	case serverkit.PersistForeign, serverkit.PersistOtherLayout:
		unix.Munmap(mem)
		return nil, fmt.Errorf("diskproc: persistent memory holds %s", what)
	}
	return p, nil
}

func (p *persistTable) close() error {
	return serverkit.UnmapPersist(&p.mem)
}

func (p *persistTable) slotMem(i int) []byte {
	off := persistHeader + i*slotSize
	return p.mem[off : off+slotSize : off+slotSize]
}

func (p *persistTable) stateWord(i int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&p.slotMem(i)[0]))
}

// load reads every slot, frees those that do not check out, and returns
// the records in use. It also builds the free list.
func (p *persistTable) load() []record {
	var out []record
	p.free, p.tombs = p.free[:0], p.tombs[:0]
	for i := p.slots - 1; i >= 0; i-- {
		r, ok := p.read(i)
		if !ok {
			if r.state != slotFree {
				p.stateWord(i).Store(uint32(slotFree))
			}
			p.free = append(p.free, i)
			continue
		}
		if r.state == slotClosed {
			p.tombs = append(p.tombs, i)
		}
		out = append(out, r)
	}
	return out
}

// read decodes slot i; ok is false for a free or malformed slot.
func (p *persistTable) read(i int) (record, bool) {
	b := p.slotMem(i)
	le := binary.LittleEndian
	r := record{
		slot: i, state: slotState(p.stateWord(i).Load()), flags: proto.OpenFlag(le.Uint32(b[4:])),
		channel: le.Uint64(b[8:]), handle: le.Uint64(b[16:]), openUD: le.Uint64(b[24:]),
		dev: le.Uint64(b[32:]), ino: le.Uint64(b[40:]), when: int64(le.Uint64(b[48:])),
		mode: le.Uint32(b[56:]), closeUD: le.Uint64(b[64:]),
	}
	n := le.Uint32(b[60:])
	switch {
	case r.state == slotFree || r.state > slotClosed:
		return r, false
	case n == 0 || n > proto.MaxPathLen || r.flags.Check() != nil || r.mode > proto.MaxOpenMode:
		return r, false
	case r.state != slotOpening && (r.handle == 0 || r.handle > maxHandle):
		return r, false
	}
	r.path = string(b[128 : 128+n])
	if reason, _ := proto.CheckPath(r.path); reason != proto.ReasonNone {
		return r, false
	}
	return r, true
}

// alloc takes a slot: a free one, else the oldest tombstone. ok is false
// when every slot holds an open file.
func (p *persistTable) alloc() (int, bool) {
	if n := len(p.free); n > 0 {
		i := p.free[n-1]
		p.free = p.free[:n-1]
		return i, true
	}
	for len(p.tombs) > 0 {
		i := p.tombs[0]
		p.tombs = p.tombs[1:]
		if slotState(p.stateWord(i).Load()) == slotClosed {
			return i, true
		}
	}
	return 0, false
}

// write stores r into its slot: every field, then the state word.
func (p *persistTable) write(r *record) {
	b := p.slotMem(r.slot)
	le := binary.LittleEndian
	p.stateWord(r.slot).Store(uint32(slotFree)) // unpublished while we write
	le.PutUint32(b[4:], uint32(r.flags))
	le.PutUint64(b[8:], r.channel)
	le.PutUint64(b[16:], r.handle)
	le.PutUint64(b[24:], r.openUD)
	le.PutUint64(b[32:], r.dev)
	le.PutUint64(b[40:], r.ino)
	le.PutUint64(b[48:], uint64(r.when))
	le.PutUint32(b[56:], r.mode)
	le.PutUint32(b[60:], uint32(len(r.path)))
	le.PutUint64(b[64:], r.closeUD)
	copy(b[128:], r.path)
	p.stateWord(r.slot).Store(uint32(r.state))
}

// setOpen publishes a finished open in the slot of its intent.
func (p *persistTable) setOpen(r *record) {
	b := p.slotMem(r.slot)
	le := binary.LittleEndian
	le.PutUint64(b[16:], r.handle)
	le.PutUint64(b[32:], r.dev)
	le.PutUint64(b[40:], r.ino)
	p.stateWord(r.slot).Store(uint32(slotOpen))
}

// setClosed turns an open file's slot into a tombstone for a replayed close.
func (p *persistTable) setClosed(slot int, closeUD uint64) {
	le := binary.LittleEndian
	le.PutUint64(p.slotMem(slot)[64:], closeUD)
	p.stateWord(slot).Store(uint32(slotClosed))
	p.tombs = append(p.tombs, slot)
}

// release frees a slot.
func (p *persistTable) release(slot int) {
	p.stateWord(slot).Store(uint32(slotFree))
	p.free = append(p.free, slot)
}

// errTableFull is returned when every slot holds an open file.
var errTableFull = errors.New("diskproc: persistent open-file table is full")
