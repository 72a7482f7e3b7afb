package proto

import (
	"fmt"
	"syscall"
)

// Reason says why the disk server refused or failed an entry, in more words
// than an errno has: an error completion from diskproc carries it in its Aux
// (bits 0-15 the Reason, bits 32-63 an argument such as the alignment that
// O_DIRECT wants), and the app library turns it into a DiskError whose
// message explains the rule. The errno stays the result, so errors.Is
// works on the errno whatever the reason.
type Reason uint16

// Reasons. Their numbers are ABI: append only.
const (
	ReasonNone              Reason = iota
	ReasonBadPath                  // empty, too long, or holding a NUL byte
	ReasonAbsolute                 // an absolute path
	ReasonDotDot                   // a ".." component
	ReasonEscape                   // a symbolic link that leads out of the root
	ReasonNotRegular               // a device, FIFO or socket: never opened
	ReasonDirectOffset             // O_DIRECT offset not aligned; Arg is the alignment
	ReasonDirectLength             // O_DIRECT length not aligned; Arg is the alignment
	ReasonDirectBuffer             // O_DIRECT buffer address not aligned; Arg is the alignment
	ReasonDirectUnsupported        // the filesystem refuses O_DIRECT
	ReasonTooManyOpen              // the app's open-file limit; Arg is the limit
	ReasonTooManyInflight          // the app's in-flight limit; Arg is the limit
	ReasonBadHandle                // not a handle this app holds
	ReasonBadBuffer                // a buffer index, length or ownership the server refuses
	ReasonBadFlags                 // flags the operation does not take
	ReasonNotAppend                // an appending write on a file not opened to append
	ReasonStale                    // the file changed or vanished across a server restart
	ReasonNoBuffer                 // the operation needs a data buffer
	ReasonBufferSmall              // the buffer is too small; Arg is the size needed
	ReasonBadOffset                // an offset past what a file may hold
	ReasonTableFull                // the server's open-file table is full; Arg is its size
	ReasonNotWritable              // a write on a file not opened for writing
	ReasonNotReadable              // a read on a file not opened for reading
	ReasonNotGranted               // the app may not write there: no [[app]] disk_write grant covers the path
	ReasonShares                   // diskproc's open files are taken by apps past their shares; Arg is the app's guaranteed share
	reasonCount
)

var reasonText = [reasonCount]string{
	ReasonNone:              "",
	ReasonBadPath:           "the path is empty, too long or holds a NUL byte",
	ReasonAbsolute:          "absolute paths are refused: paths are relative to diskproc's root",
	ReasonDotDot:            `paths with a ".." component are refused`,
	ReasonEscape:            "a symbolic link on the path leads out of diskproc's root",
	ReasonNotRegular:        "only regular files and directories can be opened (not devices, FIFOs or sockets)",
	ReasonDirectOffset:      "O_DIRECT needs offsets that are multiples of %d bytes (the file's alignment)",
	ReasonDirectLength:      "O_DIRECT needs lengths that are multiples of %d bytes (the file's alignment)",
	ReasonDirectBuffer:      "O_DIRECT needs buffers aligned to %d bytes in memory",
	ReasonDirectUnsupported: "the filesystem holding the file does not support O_DIRECT",
	ReasonTooManyOpen:       "the app has %d files open, its limit",
	ReasonTooManyInflight:   "the app has %d requests in flight, its limit; retry when some complete",
	ReasonBadHandle:         "not a file handle this app holds",
	ReasonBadBuffer:         "the entry names a buffer the app did not lend, or a length past its end",
	ReasonBadFlags:          "flags this operation does not take",
	ReasonNotAppend:         "an appending write on a file not opened with O_APPEND",
	ReasonStale:             "the file was removed or replaced while diskproc restarted; reopen it",
	ReasonNoBuffer:          "the operation needs a data buffer",
	ReasonBufferSmall:       "the buffer is too small: the operation needs %d bytes",
	ReasonBadOffset:         "the offset and length pass the largest file offset",
	ReasonTableFull:         "diskproc's table of %d open files is full",
	ReasonNotWritable:       "the file is not open for writing",
	ReasonNotReadable:       "the file is not open for reading",
	ReasonNotGranted:        "the app may only read here: no disk_write folder of its config holds the path",
	ReasonShares:            "diskproc's open files are all taken; the app is guaranteed %d of them",
}

// Valid reports whether r is a known reason.
func (r Reason) Valid() bool { return r < reasonCount }

// ReasonAux packs a reason and its argument into an error completion's Aux.
func ReasonAux(r Reason, arg uint32) uint64 { return uint64(r) | uint64(arg)<<32 }

// DiskError is an errno with diskproc's explanation.
type DiskError struct {
	Errno  syscall.Errno
	Reason Reason
	Arg    uint32
}

func (e *DiskError) Error() string {
	text := "diskproc reason " + fmt.Sprint(uint16(e.Reason))
	if e.Reason.Valid() {
		text = reasonText[e.Reason]
		if e.Reason == ReasonDirectOffset || e.Reason == ReasonDirectLength || e.Reason == ReasonDirectBuffer ||
			e.Reason == ReasonTooManyOpen || e.Reason == ReasonTooManyInflight || e.Reason == ReasonBufferSmall || e.Reason == ReasonTableFull {
			text = fmt.Sprintf(text, e.Arg)
		}
	}
	return e.Errno.Error() + ": " + text
}

// Unwrap is the errno, so that errors.Is(err, syscall.EINVAL) and
// errors.Is(err, fs.ErrNotExist) work.
func (e *DiskError) Unwrap() error { return e.Errno }

// DiskErr is the error of a disk completion's result and Aux: nil for a
// result of zero or more, a *DiskError when the server gave a reason, the
// bare syscall.Errno otherwise.
func DiskErr(result int64, aux uint64) error {
	err := ResultErr(result)
	errno, ok := err.(syscall.Errno)
	if !ok {
		return err
	}
	r := Reason(aux & 0xffff)
	if r == ReasonNone {
		return errno
	}
	return &DiskError{Errno: errno, Reason: r, Arg: uint32(aux >> 32)}
}
