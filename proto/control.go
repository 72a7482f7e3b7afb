package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// The control plane: messages between the CLI, the supervisor, servers and
// apps over Unix stream sockets. Unlike ring entries these are rare, so they
// are msgpack, which lets them carry strings, lists and maps.
//
// A frame is a 4-byte big-endian length followed by that many bytes of a
// msgpack-encoded Envelope. Frames longer than MaxFrame are refused before
// anything is read past the length. A request and its reply share an ID.
// File descriptors travel as SCM_RIGHTS ancillary data with the frame's
// bytes (see Conn); Envelope.FDs says how many belong to the frame.

// ControlVersion is the control protocol's version. A message of another
// version is refused with an ErrorReply.
const ControlVersion = 1

// MaxFrame bounds a control frame's length.
const MaxFrame = 1 << 20

// Control-plane errors.
var (
	ErrFrameTooLarge = errors.New("proto: control frame too large")
	ErrMalformed     = errors.New("proto: malformed control message")
	ErrCtlVersion    = errors.New("proto: unsupported control protocol version")
)

// MsgType names a control message.
type MsgType string

// Message types. Requests first, then replies and notices.
const (
	MsgStatus  MsgType = "status"  // Status → StatusReply
	MsgKill    MsgType = "kill"    // Kill → OK
	MsgRestart MsgType = "restart" // Restart → OK
	MsgStop    MsgType = "stop"    // Stop → OK, then the supervisor stops
	MsgLaunch  MsgType = "launch"  // Launch → OK: supervise a new app process
	MsgDetach  MsgType = "detach"  // Detach → OK: stop and forget an app
	MsgAttach  MsgType = "attach"  // Attach → AttachReply with channel fds
	MsgReady   MsgType = "ready"   // Ready → OK: a component is ready, with what it reports
	MsgChannel MsgType = "channel" // Channel (supervisor → server, with fds) → OK
	MsgDrop    MsgType = "drop"    // Drop (supervisor → server) → OK: an app's channel is gone

	// Capture (CLI → supervisor → netproc, with the file to write) →
	// CaptureReply once the capture ends; CaptureStop → OK ends it early.
	MsgCapture     MsgType = "capture"
	MsgCaptureStop MsgType = "capture-stop"

	MsgOK           MsgType = "ok"
	MsgError        MsgType = "error"
	MsgStatusReply  MsgType = "status-reply"
	MsgAttachReply  MsgType = "attach-reply"
	MsgCaptureReply MsgType = "capture-reply"
)

// Envelope is one framed control message.
type Envelope struct {
	Version uint16             `msgpack:"v"`
	Type    MsgType            `msgpack:"t"`
	ID      uint64             `msgpack:"id"`
	Re      bool               `msgpack:"re,omitempty"`  // a reply to request ID, not a request
	FDs     int                `msgpack:"fds,omitempty"` // descriptors sent with this frame
	Body    msgpack.RawMessage `msgpack:"b,omitempty"`
}

// NewEnvelope builds an envelope of the current version around body.
func NewEnvelope(t MsgType, id uint64, body any) (*Envelope, error) {
	e := &Envelope{Version: ControlVersion, Type: t, ID: id}
	if body != nil {
		b, err := msgpack.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("proto: encoding %s: %w", t, err)
		}
		e.Body = b
	}
	return e, nil
}

// Decode unpacks the body into v.
func (e *Envelope) Decode(v any) error {
	if len(e.Body) == 0 {
		return nil
	}
	if err := msgpack.Unmarshal(e.Body, v); err != nil {
		return fmt.Errorf("%w: %s body: %w", ErrMalformed, e.Type, err)
	}
	return nil
}

// AppendFrame appends e's frame to dst.
func AppendFrame(dst []byte, e *Envelope) ([]byte, error) {
	b, err := msgpack.Marshal(e)
	if err != nil {
		return dst, fmt.Errorf("proto: encoding envelope: %w", err)
	}
	if len(b) > MaxFrame {
		return dst, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(b))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...), nil
}

// ReadFrame reads one frame from r and decodes its envelope. A declared
// length over MaxFrame fails with ErrFrameTooLarge before the body is read
// (the stream cannot be resynchronised after that: close it). Bytes that do
// not decode, or decode with trailing garbage, fail with ErrMalformed; a
// message of another version fails with ErrCtlVersion, and the envelope is
// still returned so that the reply can echo its ID.
func ReadFrame(r io.Reader) (*Envelope, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return nil, fmt.Errorf("%w: declared %d bytes, limit %d", ErrFrameTooLarge, n, MaxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return DecodeEnvelope(buf)
}

// DecodeEnvelope decodes a frame's body (without its length prefix).
func DecodeEnvelope(b []byte) (*Envelope, error) {
	var e Envelope
	br := bytes.NewReader(b) // a ByteScanner, so the decoder reads it directly
	dec := msgpack.NewDecoder(br)
	dec.DisallowUnknownFields(true)
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if br.Len() != 0 {
		return nil, fmt.Errorf("%w: trailing bytes after the envelope", ErrMalformed)
	}
	if e.Version != ControlVersion {
		return &e, fmt.Errorf("%w: version %d, this binary speaks %d", ErrCtlVersion, e.Version, ControlVersion)
	}
	if e.Type == "" {
		return &e, fmt.Errorf("%w: no message type", ErrMalformed)
	}
	if e.FDs < 0 || e.FDs > MaxFDs {
		return &e, fmt.Errorf("%w: %d descriptors", ErrMalformed, e.FDs)
	}
	return &e, nil
}

// MaxFDs bounds the descriptors one frame may carry.
const MaxFDs = 64
