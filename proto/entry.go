package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// SubmissionSize and CompletionSize are the ring entry sizes of the ABI.
const (
	SubmissionSize = 64
	CompletionSize = 32
)

// NoBuffer in a Buf field means the entry names no data buffer.
const NoBuffer = ^uint32(0)

// Submission is one request from an app to a server, decoded into private
// memory. Its wire form is SubmissionSize little-endian bytes:
//
//	0  op        uint8
//	1  flags     uint8   SubmitFlag bits; unknown bits are refused
//	2  reserved  uint16  must be zero
//	4  buf       uint32  data buffer index, or NoBuffer
//	8  len       uint32  bytes in (or room in) the buffer
//	12 aux       uint32  per-op
//	16 handle    uint64  socket or file handle
//	24 user_data uint64  echoed by the completion
//	32 offset    uint64  file offset, readdir cookie, or per-op
//	40 args      [3]uint64 per-op (see the Op constants)
type Submission struct {
	Op       Op
	Flags    SubmitFlag
	Buf      uint32
	Len      uint32
	Aux      uint32
	Handle   uint64
	UserData uint64
	Offset   uint64
	Args     [3]uint64
}

// SubmitFlag modifies a submission.
type SubmitFlag uint8

const (
	// FlagPath: OpStat names a path in the buffer instead of a handle.
	FlagPath SubmitFlag = 1 << iota
	// FlagAppend: OpWrite appends at the end of the file, ignoring Offset.
	FlagAppend
	// FlagStream: OpSend, OpRecv and OpClose on a connection carry the
	// app's stream offsets: in Offset, for OpSend the stream position of
	// its first byte (bytes sent before it), for OpRecv and OpClose the
	// bytes received so far; OpClose's Args[0] and OpShutdown's Offset are
	// the bytes sent in all.
	// netproc on a backend whose connections survive its death takes a
	// replayed entry exactly once by them, and closes only once every
	// byte sent before the close is in (see docs/restart.md). A server
	// that does not resume ignores it.
	FlagStream
	// FlagSelect: a wait (see Op.Waits) that names no buffer (Buf is
	// NoBuffer) and holds none while it waits. When its output is ready
	// (received bytes, an accepted or connected socket's address pair) the
	// server picks one of the buffers the app lent it with OpProvide,
	// writes at most Len bytes into it, and names it in the completion, as
	// io_uring's buffer selection does. A wait for which no provided buffer
	// is free waits on, ready, until the app provides one. OpConnect with
	// FlagSelect carries its address in the entry itself (see
	// InlineSockAddr), so that a connect in progress holds no buffer.
	FlagSelect

	knownSubmitFlags = FlagPath | FlagAppend | FlagStream | FlagSelect
)

// Completion is a server's answer to one submission. Its wire form is
// CompletionSize little-endian bytes:
//
//	0  user_data uint64  the submission's, echoed
//	8  result    int64   a count or handle (>= 0), or a negative errno
//	16 buf       uint32  the buffer handed back, or NoBuffer
//	20 flags     uint32  CompleteFlag bits
//	24 aux       uint64  per-op (the next readdir cookie, ...)
type Completion struct {
	UserData uint64
	Result   int64
	Buf      uint32
	Flags    CompleteFlag
	Aux      uint64
}

// CompleteFlag qualifies a completion.
type CompleteFlag uint32

const (
	// FlagMore: more completions for the same user_data follow.
	FlagMore CompleteFlag = 1 << iota
)

// Entry decoding errors.
var (
	ErrShortEntry = errors.New("proto: entry too short")
	ErrBadOp      = errors.New("proto: unknown opcode")
	ErrBadFlags   = errors.New("proto: unknown flags")
	ErrReserved   = errors.New("proto: reserved field not zero")
)

// Encode writes s into b, which must hold SubmissionSize bytes.
func (s *Submission) Encode(b []byte) {
	_ = b[SubmissionSize-1]
	le := binary.LittleEndian
	b[0] = byte(s.Op)
	b[1] = byte(s.Flags)
	le.PutUint16(b[2:], 0)
	le.PutUint32(b[4:], s.Buf)
	le.PutUint32(b[8:], s.Len)
	le.PutUint32(b[12:], s.Aux)
	le.PutUint64(b[16:], s.Handle)
	le.PutUint64(b[24:], s.UserData)
	le.PutUint64(b[32:], s.Offset)
	le.PutUint64(b[40:], s.Args[0])
	le.PutUint64(b[48:], s.Args[1])
	le.PutUint64(b[56:], s.Args[2])
}

// DecodeSubmission copies an entry out of b (shared memory) and validates
// what can be validated without a server's state: the opcode, the flags and
// the reserved field. On a validation error the returned Submission still
// carries the entry's fields, so that the server can answer its user_data
// (and hand back its buffer) with an error completion.
func DecodeSubmission(b []byte) (Submission, error) {
	if len(b) < SubmissionSize {
		return Submission{}, fmt.Errorf("%w: %d bytes, want %d", ErrShortEntry, len(b), SubmissionSize)
	}
	var raw [SubmissionSize]byte
	copy(raw[:], b) // one read of shared memory; everything below reads the copy
	le := binary.LittleEndian
	s := Submission{
		Op:       Op(raw[0]),
		Flags:    SubmitFlag(raw[1]),
		Buf:      le.Uint32(raw[4:]),
		Len:      le.Uint32(raw[8:]),
		Aux:      le.Uint32(raw[12:]),
		Handle:   le.Uint64(raw[16:]),
		UserData: le.Uint64(raw[24:]),
		Offset:   le.Uint64(raw[32:]),
		Args:     [3]uint64{le.Uint64(raw[40:]), le.Uint64(raw[48:]), le.Uint64(raw[56:])},
	}
	switch {
	case !s.Op.Valid():
		return s, fmt.Errorf("%w: %d", ErrBadOp, raw[0])
	case s.Flags&^knownSubmitFlags != 0:
		return s, fmt.Errorf("%w: %#x", ErrBadFlags, raw[1])
	case le.Uint16(raw[2:]) != 0:
		return s, fmt.Errorf("%w: %#x", ErrReserved, le.Uint16(raw[2:]))
	}
	return s, nil
}

// Encode writes c into b, which must hold CompletionSize bytes.
func (c *Completion) Encode(b []byte) {
	_ = b[CompletionSize-1]
	le := binary.LittleEndian
	le.PutUint64(b[0:], c.UserData)
	le.PutUint64(b[8:], uint64(c.Result))
	le.PutUint32(b[16:], c.Buf)
	le.PutUint32(b[20:], uint32(c.Flags))
	le.PutUint64(b[24:], c.Aux)
}

// DecodeCompletion copies a completion out of b (shared memory). A
// completion has no field that can be invalid in isolation; the app checks
// its user_data against what it has in flight, its buffer with ring.Pool,
// and its result with Err.
func DecodeCompletion(b []byte) (Completion, error) {
	if len(b) < CompletionSize {
		return Completion{}, fmt.Errorf("%w: %d bytes, want %d", ErrShortEntry, len(b), CompletionSize)
	}
	var raw [CompletionSize]byte
	copy(raw[:], b)
	le := binary.LittleEndian
	return Completion{
		UserData: le.Uint64(raw[0:]),
		Result:   int64(le.Uint64(raw[8:])),
		Buf:      le.Uint32(raw[16:]),
		Flags:    CompleteFlag(le.Uint32(raw[20:])),
		Aux:      le.Uint64(raw[24:]),
	}, nil
}
