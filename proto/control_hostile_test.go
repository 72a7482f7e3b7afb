package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sys/unix"
)

// Hostile control frames, as a local client or app could send them to the
// supervisor. Each must cost its sender the frame (or the connection),
// never the receiving process.

// rawFrame is a frame around an envelope map given as msgpack bytes:
// version, type "status", id, the descriptor count fds (a raw msgpack
// integer, so that it may be negative or huge), and body bytes if any.
func rawFrame(id byte, fds []byte, body []byte) []byte {
	n := byte(3)
	if fds != nil {
		n++
	}
	if body != nil {
		n++
	}
	e := []byte{0x80 | n, 0xa1, 'v', 0x01, 0xa1, 't', 0xa6, 's', 't', 'a', 't', 'u', 's', 0xa2, 'i', 'd', id}
	if fds != nil {
		e = append(append(e, 0xa3, 'f', 'd', 's'), fds...)
	}
	if body != nil {
		e = append(append(e, 0xa1, 'b'), body...)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(e))), e...)
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestHostileDescriptorCounts sends frames whose descriptor count is
// negative, past MaxFDs, or more than came with them. Each is refused with
// ErrMalformed (it used to panic the receiver with a negative slice
// length), the descriptors that came are closed, and the stream stays in
// step for the next frame.
func TestHostileDescriptorCounts(t *testing.T) {
	a, b := socketPair(t)
	_, w := pipe(t)
	before := openFDs(t)
	cases := []struct {
		name  string
		fds   []byte // msgpack integer
		carry int    // descriptors actually sent with the frame
	}{
		{"negative", []byte{0xff}, 0},          // -1
		{"negative with one", []byte{0xff}, 1}, // -1, and a descriptor
		{"int64 min", append([]byte{0xd3, 0x80}, make([]byte, 7)...), 1},
		{"past MaxFDs", []byte{0xcc, MaxFDs + 1}, 1},
		{"huge", []byte{0xce, 0x7f, 0xff, 0xff, 0xff}, 2},
		{"more than came", []byte{0x03}, 2},
	}
	for i, c := range cases {
		var fds []int
		for range c.carry {
			fds = append(fds, int(w.Fd()))
		}
		frame := rawFrame(byte(i+1), c.fds, nil)
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		if _, _, err := a.UnixConn().WriteMsgUnix(frame, oob, nil); err != nil {
			t.Fatal(err)
		}
		e, files, err := b.Receive()
		if !errors.Is(err, ErrMalformed) || len(files) != 0 {
			t.Errorf("%s: %+v %d files %v, want ErrMalformed and no files", c.name, e, len(files), err)
		}
		if e == nil || e.ID != uint64(i+1) {
			t.Errorf("%s: the envelope (to echo its ID) is %+v", c.name, e)
		}
	}
	// In step: a good frame with a descriptor comes through whole.
	good, _ := NewEnvelope(MsgStatus, 99, nil)
	if err := a.Send(good, w); err != nil {
		t.Fatal(err)
	}
	e, files, err := b.Receive()
	if err != nil || e.ID != 99 || len(files) != 1 {
		t.Fatalf("good frame after the bad ones: %+v %d files %v", e, len(files), err)
	}
	files[0].Close()
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open before, %d after: the refused frames' descriptors leaked", before, after)
	}
}

// TestSessionSurvivesHostileCounts: a Session answers frames with bad
// descriptor counts with an error reply, by ID, and goes on serving.
func TestSessionSurvivesHostileCounts(t *testing.T) {
	ca, cb := socketPair(t)
	s := NewSession(cb, func(r *Request) { r.Reply(MsgOK, nil) })
	go s.Run()
	for i, fds := range [][]byte{{0xff}, {0xcc, 200}, {0x05}} {
		if _, err := ca.UnixConn().Write(rawFrame(byte(i+1), fds, nil)); err != nil {
			t.Fatal(err)
		}
		r, _, err := ca.Receive()
		if err != nil || r.Type != MsgError || r.ID != uint64(i+1) {
			t.Fatalf("bad count %x: reply %+v %v", fds, r, err)
		}
	}
	if _, err := ca.Call(MsgStatus, nil, nil); err != nil {
		t.Fatalf("after bad counts: %v", err)
	}
}

func nested(depth int, leaf byte) []byte {
	return append(bytes.Repeat([]byte{0x91}, depth), leaf)
}

func TestCheckMsgpack(t *testing.T) {
	// Everything saturn sends passes.
	for _, v := range []any{
		&StatusReply{Instance: "x", Components: []ComponentStatus{{Name: "netproc", Info: map[string]string{"a": "b"},
			Channels: []ChannelStatus{{ID: 1, Usage: &ChannelUsage{Sockets: 3}}}}}},
		&Launch{Name: "a", Command: []string{"x", "y"}, Env: map[string]string{"K": "V"}},
		&Attach{Name: "a", Servers: []string{"netproc"}, PID: -5},
		&AttachReply{Channels: []ChannelDesc{{ID: 1<<63 + 5, Limits: &ChannelLimits{Memory: -1}}}},
		&Ready{Usage: make([]ChannelUsage, 300)},
		&ErrorReply{Message: strings.Repeat("x", 70000)},
		&Capture{Count: 1 << 40},
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckMsgpack(b); err != nil {
			t.Errorf("%T: %v", v, err)
		}
	}
	for _, c := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"nested to the limit", nested(MaxDepth, 0xc0), true},
		{"nested past it", nested(MaxDepth+1, 0xc0), false},
		{"a million deep", nested(1<<20, 0xc0), false},
		{"maps nested past it", append(bytes.Repeat([]byte{0x81, 0xa0}, MaxDepth+1), 0xc0), false},
		{"array32 longer than the bytes", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, false},
		{"map32 longer than the bytes", []byte{0xdf, 0x00, 0x01, 0x00, 0x00, 0xc0, 0xc0}, false},
		{"fixmap with half its pairs", []byte{0x82, 0xa0, 0xc0}, false},
		{"str32 longer than the bytes", []byte{0xdb, 0x7f, 0xff, 0xff, 0xff, 'x'}, false},
		{"bin16 truncated length", []byte{0xc5, 0x01}, false},
		{"ext8 past the end", []byte{0xc7, 0x05, 0x01, 1, 2}, false},
		{"fixext4", []byte{0xd6, 0x01, 1, 2, 3, 4}, true},
		{"more elements than MaxItems", append([]byte{0xdd, 0x00, 0x01, 0x00, 0x01}, make([]byte, MaxItems+1)...), false},
		{"MaxItems elements", append([]byte{0xdc, 0xff, 0xff}, make([]byte, MaxItems-1)...), true},
		{"unused code", []byte{0xc1}, false},
		{"empty", nil, false},
		{"trailing", []byte{0xc0, 0xc0}, false},
		{"unterminated array", []byte{0x93, 0x01, 0x02}, false},
	} {
		err := CheckMsgpack(c.b)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// hostileFrames are frames of at most MaxFrame bytes built to cost their
// receiver memory: deep nesting (the decoder recursed once per level, on
// the reading goroutine's stack) and lengths declared past the frame (the
// decoder preallocated by them).
func hostileFrames() []namedFrame {
	deep := nested(MaxFrame-64, 0xc0)
	n := MaxFrame - 64
	usage := binary.BigEndian.AppendUint32([]byte{0x81, 0xa5, 'u', 's', 'a', 'g', 'e', 0xdd}, uint32(n))
	usage = append(usage, bytes.Repeat([]byte{0x80}, n)...)
	return []namedFrame{
		{"nested-body", rawFrame(1, nil, deep)},
		{"nested-envelope-field", append(binary.BigEndian.AppendUint32(nil, uint32(len(deep)+3)), append([]byte{0x81, 0xa1, 'v'}, deep...)...)},
		{"nested-body-field", rawFrame(1, nil, append([]byte{0x81, 0xa4, 'i', 'n', 'f', 'o'}, deep[:len(deep)-8]...))},
		{"million-elements", rawFrame(1, nil, usage)},
		{"declared-4G-map", rawFrame(1, nil, []byte{0x81, 0xa4, 'i', 'n', 'f', 'o', 0xdf, 0xff, 0xff, 0xff, 0xff})},
	}
}

type namedFrame struct {
	name  string
	frame []byte
}

// TestHostileFrameMemory measures what a hostile frame costs the receiver:
// the memory the process takes from the system (MemStats.Sys, which does
// not shrink), the heap it allocates, and the stack left in use, reading
// the frame from a socket and decoding its body as the supervisor does.
// Before the checks in DecodeEnvelope, measured one frame per process: the
// nested body took Sys +256 MiB and left 64 MiB of stack in use on the
// reading goroutine, to fail only once paid for; a million empty maps in
// a Ready's usage list took Sys +100 MiB (105 MiB allocated) and was
// accepted. Now each is refused for a few KiB beyond reading its bytes.
func TestHostileFrameMemory(t *testing.T) {
	for _, c := range hostileFrames() {
		t.Run(c.name, func(t *testing.T) {
			if len(c.frame) > 4+MaxFrame {
				t.Fatalf("%d bytes, more than a legal frame", len(c.frame))
			}
			a, b := socketPair(t)
			go a.UnixConn().Write(c.frame)
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			e, _, err := b.Receive()
			if err == nil {
				var m Ready
				err = e.Decode(&m)
			}
			runtime.GC()
			runtime.ReadMemStats(&m1)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%v, want ErrMalformed", err)
			}
			sys := int64(m1.Sys) - int64(m0.Sys)
			alloc := m1.TotalAlloc - m0.TotalAlloc
			stack := int64(m1.StackInuse) - int64(m0.StackInuse)
			t.Logf("Sys %+d KiB, allocated %d KiB, stack in use %+d KiB: %v", sys>>10, alloc>>10, stack>>10, err)
			// Reading a legal frame costs its bytes (and the read buffer);
			// refusing it must cost nothing more.
			if sys > 8<<20 || alloc > 4<<20 || stack > 1<<20 {
				t.Errorf("the frame cost Sys %+d KiB, %d KiB allocated, stack %+d KiB; want at most a few MiB", sys>>10, alloc>>10, stack>>10)
			}
		})
	}
}
