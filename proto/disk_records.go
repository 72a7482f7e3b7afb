package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// StatSize is the size of the stat record OpStat writes at the start of its
// buffer (the completion's result is StatSize). Layout, little-endian:
//
//	0  size          int64   bytes
//	8  mode          uint32  permission bits (0o777 and set-id/sticky, as Linux st_mode & 07777)
//	12 type          uint8   FileType
//	13 reserved      [3]byte zero
//	16 mtime         int64   modification time, nanoseconds since the Unix epoch
//	24 ino           uint64
//	32 dev           uint64
//	40 nlink         uint32
//	44 blksize       uint32  preferred I/O size
//	48 blocks        uint64  512-byte blocks allocated
//	56 direct align  uint32  O_DIRECT offset and length alignment (0: unknown or unsupported)
//	60 direct mem    uint32  O_DIRECT buffer address alignment (0: unknown)
const StatSize = 64

// Stat is a file's metadata as diskproc reports it.
type Stat struct {
	Size        int64
	Perm        uint32
	Type        FileType
	ModTime     int64 // nanoseconds since the epoch
	Ino, Dev    uint64
	Nlink       uint32
	BlockSize   uint32
	Blocks      uint64
	DirectAlign uint32
	DirectMem   uint32
}

// ErrBadRecord: a stat or directory record in a buffer is malformed.
var ErrBadRecord = errors.New("proto: malformed disk record")

// Encode writes s into b (at least StatSize bytes).
func (s *Stat) Encode(b []byte) {
	_ = b[StatSize-1]
	le := binary.LittleEndian
	le.PutUint64(b[0:], uint64(s.Size))
	le.PutUint32(b[8:], s.Perm)
	b[12] = byte(s.Type)
	b[13], b[14], b[15] = 0, 0, 0
	le.PutUint64(b[16:], uint64(s.ModTime))
	le.PutUint64(b[24:], s.Ino)
	le.PutUint64(b[32:], s.Dev)
	le.PutUint32(b[40:], s.Nlink)
	le.PutUint32(b[44:], s.BlockSize)
	le.PutUint64(b[48:], s.Blocks)
	le.PutUint32(b[56:], s.DirectAlign)
	le.PutUint32(b[60:], s.DirectMem)
}

// DecodeStat reads a stat record, refusing a short one, a negative size,
// unknown mode bits or type, and non-zero reserved bytes.
func DecodeStat(b []byte) (Stat, error) {
	if len(b) < StatSize {
		return Stat{}, fmt.Errorf("%w: stat record of %d bytes, want %d", ErrBadRecord, len(b), StatSize)
	}
	var raw [StatSize]byte
	copy(raw[:], b)
	le := binary.LittleEndian
	s := Stat{
		Size: int64(le.Uint64(raw[0:])), Perm: le.Uint32(raw[8:]), Type: FileType(raw[12]),
		ModTime: int64(le.Uint64(raw[16:])), Ino: le.Uint64(raw[24:]), Dev: le.Uint64(raw[32:]),
		Nlink: le.Uint32(raw[40:]), BlockSize: le.Uint32(raw[44:]), Blocks: le.Uint64(raw[48:]),
		DirectAlign: le.Uint32(raw[56:]), DirectMem: le.Uint32(raw[60:]),
	}
	switch {
	case s.Size < 0:
		return Stat{}, fmt.Errorf("%w: negative size %d", ErrBadRecord, s.Size)
	case s.Perm&^0o7777 != 0:
		return Stat{}, fmt.Errorf("%w: mode %#o has bits beyond 07777", ErrBadRecord, s.Perm)
	case s.Type > TypeOther:
		return Stat{}, fmt.Errorf("%w: file type %d", ErrBadRecord, s.Type)
	case raw[13] != 0 || raw[14] != 0 || raw[15] != 0:
		return Stat{}, fmt.Errorf("%w: reserved stat bytes not zero", ErrBadRecord)
	}
	return s, nil
}

// Time is ModTime as a time.Time.
func (s *Stat) Time() time.Time { return time.Unix(0, s.ModTime) }

// Directory entries. OpReaddir fills its buffer with whole records, as
// many as fit, starting at the cookie in the submission's Offset (0 for the
// start of the directory); the completion's result is the bytes written
// (0 at the end of the directory) and its Aux the cookie to pass next.
// "." and ".." are never listed. A record, little-endian, padded with zeros
// to a multiple of 8 bytes:
//
//	0  ino      uint64
//	8  type     uint8   FileType
//	9  reserved uint8   zero
//	10 namelen  uint16  1 to MaxNameLen
//	12 name     [namelen]byte
const (
	direntHeader = 12
	// MaxNameLen bounds one name (Linux's NAME_MAX).
	MaxNameLen = 255
	// MaxDirentSize is the largest record: a buffer at least this big
	// always has room for the next entry.
	MaxDirentSize = (direntHeader + MaxNameLen + 7) &^ 7
)

// Dirent is one directory entry.
type Dirent struct {
	Ino  uint64
	Type FileType
	Name string
}

// DirentSize is the size of d's record.
func DirentSize(name string) int { return (direntHeader + len(name) + 7) &^ 7 }

// AppendDirent writes d's record at the start of b and reports its size,
// or 0 if it does not fit (or the name is empty or too long).
func AppendDirent(b []byte, d Dirent) int {
	n := DirentSize(d.Name)
	if len(d.Name) == 0 || len(d.Name) > MaxNameLen || n > len(b) {
		return 0
	}
	le := binary.LittleEndian
	le.PutUint64(b[0:], d.Ino)
	b[8] = byte(d.Type)
	b[9] = 0
	le.PutUint16(b[10:], uint16(len(d.Name)))
	copy(b[direntHeader:], d.Name)
	clear(b[direntHeader+len(d.Name) : n])
	return n
}

// DecodeDirents reads the records in b (a copy, or shared memory: each
// field is read once), refusing a truncated record, a bad name length, a
// name holding '/' or NUL, ".", "..", an unknown type and reserved bits.
func DecodeDirents(b []byte) ([]Dirent, error) {
	var out []Dirent
	le := binary.LittleEndian
	for off := 0; off < len(b); {
		if len(b)-off < direntHeader {
			return out, fmt.Errorf("%w: %d stray bytes after the last entry", ErrBadRecord, len(b)-off)
		}
		var hdr [direntHeader]byte
		copy(hdr[:], b[off:])
		d := Dirent{Ino: le.Uint64(hdr[0:]), Type: FileType(hdr[8])}
		n := int(le.Uint16(hdr[10:]))
		size := (direntHeader + n + 7) &^ 7
		switch {
		case n == 0 || n > MaxNameLen:
			return out, fmt.Errorf("%w: name length %d", ErrBadRecord, n)
		case size > len(b)-off:
			return out, fmt.Errorf("%w: entry of %d bytes with %d left", ErrBadRecord, size, len(b)-off)
		case d.Type > TypeOther || hdr[9] != 0:
			return out, fmt.Errorf("%w: type %d, reserved %d", ErrBadRecord, hdr[8], hdr[9])
		}
		name := string(b[off+direntHeader : off+direntHeader+n])
		for i := 0; i < len(name); i++ {
			if name[i] == '/' || name[i] == 0 {
				return out, fmt.Errorf("%w: name %q", ErrBadRecord, name)
			}
		}
		if name == "." || name == ".." {
			return out, fmt.Errorf("%w: name %q", ErrBadRecord, name)
		}
		d.Name = name
		out = append(out, d)
		off += size
	}
	return out, nil
}
