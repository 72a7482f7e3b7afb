package tcp

import "errors"

// Errors returned by Step for application calls, and reported in
// Output.Err with WakeError when a connection fails. The shell maps them to
// errno values (ECONNRESET, ECONNREFUSED, ETIMEDOUT, EPIPE, ...).
var (
	ErrConnectionReset   = errors.New("tcp: connection reset by peer")
	ErrConnectionRefused = errors.New("tcp: connection refused")
	ErrTimeout           = errors.New("tcp: connection timed out")
	ErrAborted           = errors.New("tcp: connection aborted")
	ErrClosed            = errors.New("tcp: use of closed connection")
	ErrNotConnected      = errors.New("tcp: not connected")
	ErrAlreadyOpen       = errors.New("tcp: connection already open")
	ErrWriteClosed       = errors.New("tcp: write after shutdown")
	ErrInvalid           = errors.New("tcp: invalid argument")
	ErrBufferSize        = errors.New("tcp: buffer size differs from the size fixed at open")
)

// errCode is the plain-data form of a connection's sticky error, so that
// Conn holds no interface.
type errCode uint8

const (
	errNone errCode = iota
	errReset
	errRefused
	errTimeout
	errAborted
)

func (e errCode) err() error {
	switch e {
	case errReset:
		return ErrConnectionReset
	case errRefused:
		return ErrConnectionRefused
	case errTimeout:
		return ErrTimeout
	case errAborted:
		return ErrAborted
	}
	return nil
}
