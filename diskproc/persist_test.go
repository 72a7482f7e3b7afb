package diskproc

import (
	"encoding/binary"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

func memfd(t *testing.T, size int64) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("persist-test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "persist")
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPersistTable: records survive a remap; half-written and corrupt
// slots are dropped, not trusted; a full table says so; tombstones are
// reused only when no slot is free.
func TestPersistTable(t *testing.T) {
	f := memfd(t, persistHeader+4*slotSize)
	p, err := openPersist(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.slots != 4 || len(p.load()) != 0 || len(p.free) != 4 {
		t.Fatalf("fresh table: %d slots, %d free", p.slots, len(p.free))
	}
	recs := []*record{
		{state: slotOpen, flags: proto.OpenRead, channel: 7, handle: 11, openUD: 1, dev: 2, ino: 3, path: "a/b"},
		{state: slotOpening, flags: proto.OpenWrite | proto.OpenCreate | proto.OpenExclusive, channel: 7, openUD: 2, when: 99, mode: 0o600, path: "new"},
		{state: slotOpen, flags: proto.OpenRead, channel: 8, handle: 12, openUD: 3, path: "c"},
	}
	for _, r := range recs {
		slot, ok := p.alloc()
		if !ok {
			t.Fatal("no slot")
		}
		r.slot = slot
		p.write(r)
	}
	p.setClosed(recs[2].slot, 55)
	if _, ok := p.alloc(); !ok {
		t.Fatal("the fourth slot")
	}
	if slot, ok := p.alloc(); !ok || slot != recs[2].slot {
		t.Fatalf("a full table should reuse the tombstone: %d %v", slot, ok)
	}
	if _, ok := p.alloc(); ok {
		t.Fatal("alloc from a table of open files succeeded")
	}
	p.setClosed(recs[2].slot, 55) // back to a tombstone for the reload below
	// Corrupt slot 3: a bad path after a valid state word.
	b := p.slotMem(3)
	binary.LittleEndian.PutUint32(b[60:], 3)
	copy(b[128:], "../")
	binary.LittleEndian.PutUint32(b[4:], uint32(proto.OpenRead))
	binary.LittleEndian.PutUint64(b[16:], 5)
	p.stateWord(3).Store(uint32(slotOpen))
	p.close()

	p, err = openPersist(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := p.load()
	if len(got) != 3 {
		t.Fatalf("reloaded %d records, want 3 (the corrupt one dropped): %+v", len(got), got)
	}
	byUD := map[uint64]record{}
	for _, r := range got {
		byUD[r.openUD] = r
	}
	if r := byUD[1]; r.state != slotOpen || r.handle != 11 || r.path != "a/b" || r.dev != 2 || r.ino != 3 {
		t.Errorf("open record: %+v", r)
	}
	if r := byUD[2]; r.state != slotOpening || r.when != 99 || r.mode != 0o600 {
		t.Errorf("intent record: %+v", r)
	}
	if r := byUD[3]; r.state != slotClosed || r.closeUD != 55 {
		t.Errorf("tombstone: %+v", r)
	}
	if len(p.free) != 1 || p.free[0] != 3 {
		t.Errorf("free slots after reload: %v", p.free)
	}
	p.close()

	// Memory that is not ours is refused.
	g := memfd(t, persistHeader+slotSize)
	g.WriteAt([]byte("NOTSATRN"), 0)
	if _, err := openPersist(g, 0); err == nil {
		t.Fatal("foreign persistent memory accepted")
	}
}
