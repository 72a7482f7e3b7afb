package proto

import (
	"errors"
	"fmt"
	"strings"
)

// The disk server's records: what OpOpen, OpStat and OpReaddir carry in
// their entries and data buffers. Like the entries themselves these are
// fixed little-endian layouts, decoded once out of shared memory and
// checked field by field.
//
// Paths. OpOpen and OpStat with FlagPath name a path in the data buffer: its
// first Aux bytes, or its first Len bytes when Aux is zero (the buffer may
// be longer than the path because OpStat writes its record into the same
// buffer). A path is relative to the server's root, at most MaxPathLen
// bytes, without NUL bytes; CheckPath says what else is refused.

// MaxPathLen bounds a path in a data buffer (Linux's PATH_MAX less the NUL).
const MaxPathLen = 4095

// OpenFlag is OpOpen's Args[0]: how to open. The bits are saturn's own, not
// Linux's, so that the ABI does not depend on one architecture's numbering.
type OpenFlag uint32

const (
	OpenRead      OpenFlag = 1 << iota // open for reading
	OpenWrite                          // open for writing (with OpenRead: both)
	OpenCreate                         // create the file if it does not exist (mode in Args[1])
	OpenTruncate                       // truncate a regular file to zero length
	OpenExclusive                      // with OpenCreate: fail with EEXIST if the file exists
	OpenAppend                         // every write appends (OpWrite with FlagAppend)
	OpenDirect                         // O_DIRECT: bypass the page cache; see Stat.DirectAlign
	OpenDirectory                      // fail with ENOTDIR unless the path names a directory

	knownOpenFlags = OpenRead | OpenWrite | OpenCreate | OpenTruncate | OpenExclusive | OpenAppend | OpenDirect | OpenDirectory
)

var openFlagNames = []string{"read", "write", "create", "truncate", "exclusive", "append", "direct", "directory"}

func (f OpenFlag) String() string {
	var parts []string
	for i, name := range openFlagNames {
		if f&(1<<i) != 0 {
			parts = append(parts, name)
		}
	}
	if rest := f &^ knownOpenFlags; rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// ErrBadOpenFlags: an OpOpen asks for a combination the server refuses.
var ErrBadOpenFlags = errors.New("proto: bad open flags")

// Check refuses unknown bits and combinations that make no sense: no
// access mode, truncate or append without write, exclusive without create,
// a directory opened for writing.
func (f OpenFlag) Check() error {
	switch {
	case f&^knownOpenFlags != 0:
		return fmt.Errorf("%w: unknown bits %#x", ErrBadOpenFlags, uint32(f&^knownOpenFlags))
	case f&(OpenRead|OpenWrite) == 0:
		return fmt.Errorf("%w: %v opens for neither reading nor writing", ErrBadOpenFlags, f)
	case f&(OpenTruncate|OpenAppend|OpenCreate) != 0 && f&OpenWrite == 0:
		return fmt.Errorf("%w: %v creates, truncates or appends without opening for writing", ErrBadOpenFlags, f)
	case f&OpenExclusive != 0 && f&OpenCreate == 0:
		return fmt.Errorf("%w: %v is exclusive without create", ErrBadOpenFlags, f)
	case f&OpenDirectory != 0 && f&OpenWrite != 0:
		return fmt.Errorf("%w: %v opens a directory for writing", ErrBadOpenFlags, f)
	}
	return nil
}

// Writable reports whether f opens for writing.
func (f OpenFlag) Writable() bool { return f&OpenWrite != 0 }

// MaxOpenMode bounds OpOpen's Args[1]: permission bits only (no set-id or
// sticky bits, which an app should not be able to create through the server).
const MaxOpenMode = 0o777

// FsyncDataOnly in OpFsync's Args[0] asks for fdatasync: the data and
// what is needed to read it back, not every piece of metadata.
const FsyncDataOnly = 1

// PathLen is the length of the path an entry names in its buffer.
func PathLen(s *Submission) uint32 {
	if s.Aux != 0 {
		return s.Aux
	}
	return s.Len
}

// ErrBadPath: a path the server refuses before looking at the disk.
var ErrBadPath = errors.New("proto: bad path")

// CheckPath refuses what no lookup beneath a root may contain: an empty
// path, a NUL byte, more than MaxPathLen bytes, an absolute path, and a ".."
// component (even one that would stay inside the root: the rule is simpler
// to state and to check than to evaluate). "." and "a/./b" are fine.
// Symbolic links are the server's business: it resolves them beneath the
// root and refuses those that leave it.
func CheckPath(p string) (Reason, error) {
	switch {
	case p == "":
		return ReasonBadPath, fmt.Errorf("%w: empty path", ErrBadPath)
	case len(p) > MaxPathLen:
		return ReasonBadPath, fmt.Errorf("%w: %d bytes, limit %d", ErrBadPath, len(p), MaxPathLen)
	case strings.IndexByte(p, 0) >= 0:
		return ReasonBadPath, fmt.Errorf("%w: %q holds a NUL byte", ErrBadPath, p)
	case p[0] == '/':
		return ReasonAbsolute, fmt.Errorf("%w: %q is absolute; paths are relative to the root", ErrBadPath, p)
	}
	for elem := range strings.SplitSeq(p, "/") {
		if elem == ".." {
			return ReasonDotDot, fmt.Errorf("%w: %q has a \"..\" component", ErrBadPath, p)
		}
	}
	return ReasonNone, nil
}

// OpenInfo is what an OpOpen completion says of the file besides its
// handle, packed into the completion's Aux:
//
//	bits 0-7   file type (FileType)
//	bits 32-63 O_DIRECT offset and length alignment, or 0 if not opened direct
type OpenInfo struct {
	Type        FileType
	DirectAlign uint32
}

// Encode packs i into a completion's Aux.
func (i OpenInfo) Encode() uint64 { return uint64(i.Type) | uint64(i.DirectAlign)<<32 }

// DecodeOpenInfo unpacks a completion's Aux.
func DecodeOpenInfo(aux uint64) OpenInfo {
	return OpenInfo{Type: FileType(aux & 0xff), DirectAlign: uint32(aux >> 32)}
}

// FileType is a file's type as the disk records carry it.
type FileType uint8

const (
	TypeUnknown FileType = iota
	TypeRegular
	TypeDir
	TypeSymlink
	TypeOther // device, FIFO, socket: listed, never opened
)

func (t FileType) String() string {
	switch t {
	case TypeRegular:
		return "regular"
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symlink"
	case TypeOther:
		return "other"
	}
	return "unknown"
}
