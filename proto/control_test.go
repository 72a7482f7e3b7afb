package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestFrameRoundTrip(t *testing.T) {
	e, err := NewEnvelope(MsgKill, 7, &Kill{Name: "netproc", Signal: "KILL"})
	if err != nil {
		t.Fatal(err)
	}
	frame, err := AppendFrame(nil, e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadFrame(bytes.NewReader(frame))
	if err != nil {
		t.Fatal(err)
	}
	var k Kill
	if err := got.Decode(&k); err != nil {
		t.Fatal(err)
	}
	if got.Type != MsgKill || got.ID != 7 || k.Name != "netproc" || k.Signal != "KILL" {
		t.Fatalf("got %+v %+v", got, k)
	}
}

func TestFrameRefusals(t *testing.T) {
	huge := binary.BigEndian.AppendUint32(nil, 1<<31)
	if _, err := ReadFrame(bytes.NewReader(huge)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("huge declared length: %v", err)
	}
	garbage := append(binary.BigEndian.AppendUint32(nil, 5), 0xc1, 0xff, 0x00, 0x13, 0x37)
	if _, err := ReadFrame(bytes.NewReader(garbage)); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage body: %v", err)
	}
	short := append(binary.BigEndian.AppendUint32(nil, 50), 1, 2)
	if _, err := ReadFrame(bytes.NewReader(short)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated body: %v", err)
	}
	old, _ := msgpack.Marshal(&Envelope{Version: 99, Type: MsgStatus, ID: 3})
	e, err := DecodeEnvelope(old)
	if !errors.Is(err, ErrCtlVersion) || e == nil || e.ID != 3 {
		t.Errorf("other version: %v (envelope %+v)", err, e)
	}
	notype, _ := msgpack.Marshal(&Envelope{Version: ControlVersion, ID: 3})
	if _, err := DecodeEnvelope(notype); !errors.Is(err, ErrMalformed) {
		t.Errorf("no type: %v", err)
	}
	good, _ := msgpack.Marshal(&Envelope{Version: ControlVersion, Type: MsgStatus})
	if _, err := DecodeEnvelope(append(good, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
	extra, _ := msgpack.Marshal(map[string]any{"v": ControlVersion, "t": "status", "zz": 1})
	if _, err := DecodeEnvelope(extra); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown field: %v", err)
	}
}

func socketPair(t *testing.T) (*ControlConn, *ControlConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *ControlConn {
		f := os.NewFile(uintptr(fd), "sock")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		return NewControlConn(c.(*net.UnixConn))
	}
	a, b := conn(fds[0]), conn(fds[1])
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// pipe is an os.Pipe, closed when the test ends.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func TestConnPassesDescriptors(t *testing.T) {
	a, b := socketPair(t)
	r, w := pipe(t)
	go func() {
		e, files, err := b.Receive()
		if err != nil {
			t.Error(err)
			return
		}
		if len(files) != 1 {
			t.Errorf("received %d files", len(files))
			return
		}
		files[0].Write([]byte("through the socket"))
		files[0].Close()
		b.Reply(e, MsgOK, nil)
	}()
	if _, err := a.Call(MsgChannel, &Channel{Channel: ChannelDesc{ID: 1}}, nil, w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, _ := io.ReadAll(r)
	if string(got) != "through the socket" {
		t.Fatalf("read %q through the passed pipe", got)
	}
}

func TestConnKeepsStepAfterBadFrame(t *testing.T) {
	a, b := socketPair(t)
	// A frame with a valid length and a garbage body, then a good request.
	garbage := append(binary.BigEndian.AppendUint32(nil, 3), 0xc1, 0xc1, 0xc1)
	if _, err := a.UnixConn().Write(garbage); err != nil {
		t.Fatal(err)
	}
	e, _ := NewEnvelope(MsgStatus, 5, &Status{})
	if err := a.Send(e); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Receive(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbage frame: %v", err)
	}
	got, _, err := b.Receive()
	if err != nil || got.ID != 5 {
		t.Fatalf("after garbage: %+v %v", got, err)
	}
	// A frame that claims descriptors it does not bring.
	e, _ = NewEnvelope(MsgStatus, 6, nil)
	e.FDs = 2
	frame, _ := AppendFrame(nil, e)
	a.UnixConn().Write(frame)
	if _, _, err := b.Receive(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("missing descriptors: %v", err)
	}
	// A huge declared length ends the connection.
	a.UnixConn().Write(binary.BigEndian.AppendUint32(nil, 0xffffffff))
	if _, _, err := b.Receive(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("huge frame: %v", err)
	}
}

func TestCallErrorReply(t *testing.T) {
	a, b := socketPair(t)
	go func() {
		e, _, err := b.Receive()
		if err == nil {
			b.ReplyError(e, CodeNotFound, "no component named nope")
		}
	}()
	_, err := a.Call(MsgKill, &Kill{Name: "nope"}, nil)
	var er *ErrorReply
	if !errors.As(err, &er) || er.Code != CodeNotFound {
		t.Fatalf("Call: %v", err)
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	e, _ := NewEnvelope(MsgLaunch, 1, &Launch{Name: "x", Command: []string{"a"}})
	good, _ := msgpack.Marshal(e)
	f.Add(good)
	f.Add([]byte{0x80})
	// The hostile cases: descriptor counts out of range, nesting past
	// MaxDepth, containers longer than the frame.
	for _, fr := range [][]byte{
		rawFrame(1, []byte{0xff}, nil),
		rawFrame(1, []byte{0xce, 0x7f, 0xff, 0xff, 0xff}, nil),
		rawFrame(1, nil, nested(MaxDepth+2, 0xc0)),
		rawFrame(1, nil, []byte{0x81, 0xa5, 'u', 's', 'a', 'g', 'e', 0xdd, 0xff, 0xff, 0xff, 0xff}),
	} {
		f.Add(fr[4:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		// Whatever decodes, its bodies decode or fail cleanly.
		var l Launch
		_ = e.Decode(&l)
		var s StatusReply
		_ = e.Decode(&s)
	})
}

func FuzzReadFrame(f *testing.F) {
	e, _ := NewEnvelope(MsgStatus, 1, nil)
	frame, _ := AppendFrame(nil, e)
	f.Add(frame)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for range 10 {
			if _, err := ReadFrame(r); err != nil {
				return
			}
		}
	})
}
