package proto

import (
	"errors"
	"fmt"
	"syscall"
)

// A completion's result is a count (or a handle) when it is zero or more,
// and a negated Linux errno when it is negative, as with io_uring. The Go
// side turns it into a syscall.Errno, so that errors.Is(err,
// syscall.ECONNRESET) and errors.Is(err, fs.ErrNotExist) work as they do on
// errors from package os and net.

// maxErrno bounds the errno values a result may carry (as the kernel's
// MAX_ERRNO does); a more negative result is itself an error.
const maxErrno = 4095

// ErrBadResult: a completion's result is negative but not an errno.
var ErrBadResult = errors.New("proto: result is neither a count nor an errno")

// ErrResult turns an errno into a completion result.
func ErrResult(errno syscall.Errno) int64 {
	if errno == 0 || errno > maxErrno {
		return -int64(syscall.EIO)
	}
	return -int64(errno)
}

// ResultOf turns an error into a completion result: the errno it wraps, or
// EIO for an error that wraps none.
func ResultOf(err error) int64 {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return ErrResult(errno)
	}
	return -int64(syscall.EIO)
}

// Err is the error a completion reports: nil for a result of zero or more,
// the syscall.Errno for a negative one, ErrBadResult for a negative result
// out of the errno range.
func (c *Completion) Err() error { return ResultErr(c.Result) }

// ResultErr is Completion.Err for a bare result.
func ResultErr(result int64) error {
	switch {
	case result >= 0:
		return nil
	case result >= -maxErrno:
		return syscall.Errno(-result)
	}
	return fmt.Errorf("%w: %d", ErrBadResult, result)
}
