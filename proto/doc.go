// Package proto is saturn's ABI: what travels on the rings between apps and
// servers, and what travels on the control sockets between the CLI, the
// supervisor and the components.
//
// # Ring entries
//
// A Submission (64 bytes) asks a server for one operation; a Completion (32
// bytes) answers it, echoing the submission's user_data. Both are encoded
// explicitly, little-endian, field by field (see their doc comments for the
// byte layout); they are never msgpack. Op lists the operations and what
// each reads from the entry. A completion's result is a count or handle, or
// a negated errno that Completion.Err turns into a syscall.Errno, so that
// errors.Is works as it does on errors from os and net.
//
// Data that does not fit in an entry travels in a data buffer of the
// channel's pool (package ring): the bytes to send or write, the room to
// receive or read into, a path, or a socket address (EncodeSockAddr).
//
// # What a server does with a bad entry
//
// DecodeSubmission copies the entry out of shared memory once and checks the
// opcode, the flags and the reserved bits. The server then checks what only
// it can (the buffer with ring.Loans, the handle against the app's own
// table, the lengths and offsets against the operation) and answers any
// failure with a completion whose result is a negative errno (EINVAL for a
// malformed entry, EBADF for an unknown handle, EFAULT for a bad buffer,
// EOPNOTSUPP for an opcode it does not serve) and whose buffer is the one
// it took, if any. It never crashes and never touches memory outside the
// channel.
//
// # Control messages
//
// Control messages are msgpack Envelopes in length-prefixed frames, with a
// protocol version, a type, a request ID that the reply echoes, and file
// descriptors passed alongside (ControlConn). Malformed bytes, an unknown version
// and an oversized frame are refused with errors; see ReadFrame and ControlConn.
package proto
