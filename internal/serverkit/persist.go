package serverkit

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// A server's persistent memory (proto.PersistFromEnv) is a memfd that the
// supervisor keeps for the life of the instance and hands to every
// incarnation of the server. Each server lays it out its own way, behind a
// header that PersistHeader describes: an 8-byte magic, then little-endian
// integers that fix the layout. A header is valid once it has its magic,
// which is written last; a new incarnation checks the header as it would
// any input from another process before it trusts anything behind it.

// PersistField is one integer of a persistent header: its name (for
// messages), its offset, its size (4 or 8 bytes) and the value this binary
// wants there.
type PersistField struct {
	Name string
	Off  int
	Size int
	Want uint64
}

// PersistHeader describes a persistent header.
type PersistHeader struct {
	Magic  string // 8 bytes at offset 0
	Fields []PersistField
}

// PersistVerdict is what Check found.
type PersistVerdict int

const (
	PersistFresh       PersistVerdict = iota // zeros where the magic goes: a first start
	PersistOurs                              // the magic, and every field as wanted
	PersistForeign                           // another magic: not this server's memory, or garbage
	PersistOtherLayout                       // the magic, but fields that differ: another binary's layout
)

// Check reads the header at the start of mem. For PersistForeign and
// PersistOtherLayout it also says what it found, and what this binary
// wants, in a phrase for an error or a log line.
func (h *PersistHeader) Check(mem []byte) (PersistVerdict, string) {
	magic := mem[:len(h.Magic)]
	if string(magic) == string(make([]byte, len(h.Magic))) {
		return PersistFresh, ""
	}
	if string(magic) != h.Magic {
		return PersistForeign, fmt.Sprintf("magic %q, not %q", magic, h.Magic)
	}
	var diffs []string
	for _, f := range h.Fields {
		if got := f.get(mem); got != f.Want {
			diffs = append(diffs, fmt.Sprintf("%s %d (this binary wants %d)", f.Name, got, f.Want))
		}
	}
	if len(diffs) > 0 {
		return PersistOtherLayout, "a layout with " + strings.Join(diffs, ", ")
	}
	return PersistOurs, ""
}

// Write writes the header's fields, then its magic: the header is valid
// from that last store on. A server that keeps more in its header writes
// that before calling Write.
func (h *PersistHeader) Write(mem []byte) {
	for _, f := range h.Fields {
		f.put(mem)
	}
	copy(mem, h.Magic)
}

func (f PersistField) get(mem []byte) uint64 {
	if f.Size == 4 {
		return uint64(binary.LittleEndian.Uint32(mem[f.Off:]))
	}
	return binary.LittleEndian.Uint64(mem[f.Off:])
}

func (f PersistField) put(mem []byte) {
	if f.Size == 4 {
		binary.LittleEndian.PutUint32(mem[f.Off:], uint32(f.Want))
		return
	}
	binary.LittleEndian.PutUint64(mem[f.Off:], f.Want)
}

// MapPersist maps a server's persistent memory, shared and writable: f, or
// when f is nil a private memfd named name (an in-process server, in
// tests), which the mapping then keeps alive alone. A file smaller than
// size is grown to it (a memfd grows sparse: its pages cost memory once
// written). The whole file is mapped; the caller unmaps it, and owns f.
func MapPersist(f *os.File, name string, size int64) ([]byte, error) {
	if f == nil {
		fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("persistent memory: %w", err)
		}
		f = os.NewFile(uintptr(fd), name)
		defer f.Close()
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("persistent memory: %w", err)
	}
	have := st.Size()
	if have < size {
		if err := f.Truncate(size); err != nil {
			return nil, fmt.Errorf("growing persistent memory to %d bytes: %w", size, err)
		}
		have = size
	}
	if have == 0 {
		return nil, fmt.Errorf("persistent memory is empty")
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(have), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping %d bytes of persistent memory: %w", have, err)
	}
	return mem, nil
}

// UnmapPersist unmaps *mem, persistent memory MapPersist mapped, and sets
// it to nil, so that a table closed twice (on an error path, then by its
// server's Close) unmaps once.
func UnmapPersist(mem *[]byte) error {
	if *mem == nil {
		return nil
	}
	err := unix.Munmap(*mem)
	*mem = nil
	return err
}
