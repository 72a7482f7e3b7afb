package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"

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
// bytes (see ControlConn); Envelope.FDs says how many belong to the frame.

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
	MsgUpgrade MsgType = "upgrade" // Upgrade → UpgradeReply
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

// Decode unpacks the body into v, which must be a pointer to one of the
// message structs: a peer's bytes are never decoded into interface values,
// maps of any or other open-ended shapes whose cost the peer would choose.
// The body is checked by CheckMsgpack first (an envelope from
// DecodeEnvelope was already checked whole; one built by hand may not be).
func (e *Envelope) Decode(v any) error {
	if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("proto: decoding %s: want a pointer to a message struct, not %T", e.Type, v)
	}
	if len(e.Body) == 0 {
		return nil
	}
	if err := CheckMsgpack(e.Body); err != nil {
		return fmt.Errorf("%w: %s body: %w", ErrMalformed, e.Type, err)
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

// DecodeEnvelope decodes a frame's body (without its length prefix). The
// bytes are checked by CheckMsgpack before the decoder sees them, so that a
// hostile frame costs time and memory in proportion to its length (the
// decoder recurses once per nesting level, and sizes slices and maps by
// what the peer declares). An envelope is a map. A message of another
// version, without a type, or with a descriptor count out of [0, MaxFDs]
// is returned with its error, so that the reply can echo its ID.
func DecodeEnvelope(b []byte) (*Envelope, error) {
	if len(b) == 0 || !isMapCode(b[0]) {
		return nil, fmt.Errorf("%w: an envelope is a map", ErrMalformed)
	}
	if err := CheckMsgpack(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
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
	if e.FDs < 0 || e.FDs > MaxFDs {
		return &e, fmt.Errorf("%w: %d descriptors (limit %d)", ErrMalformed, e.FDs, MaxFDs)
	}
	if e.Version != ControlVersion {
		return &e, fmt.Errorf("%w: version %d, this binary speaks %d", ErrCtlVersion, e.Version, ControlVersion)
	}
	if e.Type == "" {
		return &e, fmt.Errorf("%w: no message type", ErrMalformed)
	}
	return &e, nil
}

// MaxFDs bounds the descriptors one frame may carry.
const MaxFDs = 64

// Bounds on the shape of a control message, checked before decoding.
// saturn's deepest message (a status reply: envelope, body, components,
// a component, its channels, a channel, its usage) nests 7 levels, and its
// longest list is one row per component or channel.
const (
	MaxDepth = 32      // containers inside containers
	MaxItems = 1 << 16 // elements of one array or map
)

// CheckMsgpack checks that b is exactly one well-formed msgpack value that
// nests at most MaxDepth containers, whose arrays and maps hold at most
// MaxItems elements each, and whose every declared length fits in the
// bytes that follow it (an element takes at least one byte). It walks the
// bytes once, without recursion and without allocating, so a hostile
// frame costs what its length costs; only then may the decoder, which
// recurses and preallocates, see them.
func CheckMsgpack(b []byte) error {
	var open [MaxDepth]uint32 // elements still to read in each open container
	depth := 0
	i := 0
	for {
		if i >= len(b) {
			return fmt.Errorf("msgpack: truncated at byte %d", i)
		}
		c := b[i]
		i++
		// skip: bytes of payload to pass over. n: elements of a new
		// container, of which there are items values (a map's are pairs).
		var skip, n, items uint64
		container := false
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixint, nil, bool
		case c >= 0x80 && c <= 0x8f: // fixmap
			n, items, container = uint64(c&0x0f), 2*uint64(c&0x0f), true
		case c >= 0x90 && c <= 0x9f: // fixarray
			n, items, container = uint64(c&0x0f), uint64(c&0x0f), true
		case c >= 0xa0 && c <= 0xbf: // fixstr
			skip = uint64(c & 0x1f)
		default:
			l, size, ok := msgpackLen(b[i:], c)
			if !ok {
				return fmt.Errorf("msgpack: bad or truncated code 0x%02x at byte %d", c, i-1)
			}
			i += size
			switch c {
			case 0xdc, 0xdd: // array16, array32
				n, items, container = l, l, true
			case 0xde, 0xdf: // map16, map32
				n, items, container = l, 2*l, true
			default:
				skip = l
			}
		}
		rest := uint64(len(b) - i)
		if container {
			if n > MaxItems {
				return fmt.Errorf("msgpack: a container of %d elements at byte %d (limit %d)", n, i, MaxItems)
			}
			if items > rest {
				return fmt.Errorf("msgpack: a container of %d elements at byte %d, with %d bytes left", items, i, rest)
			}
			if items > 0 {
				if depth == MaxDepth {
					return fmt.Errorf("msgpack: nested deeper than %d at byte %d", MaxDepth, i)
				}
				open[depth] = uint32(items)
				depth++
				continue
			}
		} else if skip > rest {
			return fmt.Errorf("msgpack: %d bytes declared at byte %d, %d left", skip, i, rest)
		}
		i += int(skip)
		// One value is complete: count it off its container, and close
		// every container it completes.
		for {
			if depth == 0 {
				if i != len(b) {
					return fmt.Errorf("msgpack: %d trailing bytes", len(b)-i)
				}
				return nil
			}
			open[depth-1]--
			if open[depth-1] > 0 {
				break
			}
			depth--
		}
	}
}

// msgpackLen reads what follows code c (at b): for a string, binary or
// extension, the length of its payload (an extension's type byte
// included); for a number, its width; for an array or map, its element
// count (pairs for a map). size is how many bytes of b the length itself
// took. ok is false for a code msgpack does not define or a truncated
// length.
func msgpackLen(b []byte, c byte) (n uint64, size int, ok bool) {
	be := func(w int) (uint64, bool) {
		if len(b) < w {
			return 0, false
		}
		var v uint64
		for _, x := range b[:w] {
			v = v<<8 | uint64(x)
		}
		return v, true
	}
	switch c {
	case 0xcc, 0xd0: // uint8, int8
		return 1, 0, true
	case 0xcd, 0xd1:
		return 2, 0, true
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return 4, 0, true
	case 0xcb, 0xcf, 0xd3:
		return 8, 0, true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16, after a type byte
		return 1 + 1<<(c-0xd4), 0, true
	case 0xc4, 0xd9: // bin8, str8
		v, ok := be(1)
		return v, 1, ok
	case 0xc5, 0xda, 0xdc, 0xde: // bin16, str16, array16, map16
		v, ok := be(2)
		return v, 2, ok
	case 0xc6, 0xdb, 0xdd, 0xdf: // bin32, str32, array32, map32
		v, ok := be(4)
		return v, 4, ok
	case 0xc7: // ext8: length, type, payload
		v, ok := be(1)
		return v + 1, 1, ok
	case 0xc8:
		v, ok := be(2)
		return v + 1, 2, ok
	case 0xc9:
		v, ok := be(4)
		return v + 1, 4, ok
	}
	return 0, 0, false // 0xc1, never used
}

func isMapCode(c byte) bool { return c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf }
