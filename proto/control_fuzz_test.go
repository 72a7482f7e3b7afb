package proto

import (
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzControlStream feeds a control connection's receiving side (the
// inbox, which frames bytes, decodes envelopes and claims descriptors) a
// stream in two reads, each bringing descriptors, as a hostile peer could.
// Whatever comes, nothing panics, every frame handed out has exactly the
// descriptors its envelope declares, and every descriptor that arrived is
// handed out once, closed once, or still waiting: never lost, never
// doubled. Envelopes that decode have bodies that decode, or fail, into
// every message the supervisor reads.
func FuzzControlStream(f *testing.F) {
	good, _ := NewEnvelope(MsgAttach, 1, &Attach{Name: "a", Servers: []string{"netproc"}})
	good.FDs = 1
	goodFrame, _ := AppendFrame(nil, good)
	two := append(append([]byte{}, goodFrame...), rawFrame(2, []byte{0x02}, nil)...)
	deep := nested(40, 0xc0)
	for _, seed := range []struct {
		stream []byte
		split  uint16
		n1, n2 uint8
	}{
		{goodFrame, 0, 1, 0},
		{goodFrame, 3, 0, 1},
		{two, uint16(len(goodFrame)), 1, 2},
		{rawFrame(1, []byte{0xff}, nil), 0, 1, 0}, // negative count
		{rawFrame(1, append([]byte{0xd3, 0x80}, make([]byte, 7)...), nil), 0, 2, 0},          // int64 min
		{rawFrame(1, []byte{0xcc, MaxFDs + 1}, nil), 0, 65, 0},                               // past MaxFDs
		{rawFrame(1, []byte{0x03}, nil), 0, 1, 1},                                            // more than came
		{rawFrame(1, nil, deep), 5, 0, 0},                                                    // nested body
		{rawFrame(1, nil, append([]byte{0x81, 0xa4, 'i', 'n', 'f', 'o'}, deep...)), 0, 0, 0}, // nested field
		{rawFrame(1, nil, []byte{0x81, 0xa5, 'u', 's', 'a', 'g', 'e', 0xdd, 0xff, 0xff, 0xff, 0xff}), 0, 0, 0},
		{rawFrame(1, nil, []byte{0x81, 0xa4, 'i', 'n', 'f', 'o', 0xdf, 0x00, 0x00, 0x00, 0x02, 0xa0, 0xa0, 0xa0}), 0, 0, 0},
		{append(binary.BigEndian.AppendUint32(nil, 4), 0xde, 0xad, 0xbe, 0xef), 0, 3, 0}, // garbage
		{[]byte{0x7f, 0xff, 0xff, 0xff, 1, 2, 3}, 0, 4, 4},                               // too large
	} {
		f.Add(seed.stream, seed.split, seed.n1, seed.n2)
	}
	f.Fuzz(func(t *testing.T, stream []byte, split uint16, n1, n2 uint8) {
		const base = 1000
		state := map[int]string{} // descriptor → "waiting", "claimed", "closed"
		in := inbox{closeFD: func(fd int) {
			if state[fd] != "waiting" {
				t.Fatalf("descriptor %d closed while %s", fd, state[fd])
			}
			state[fd] = "closed"
		}}
		next := base
		arrive := func(data []byte, n uint8) {
			for range n {
				in.fds = append(in.fds, next)
				state[next] = "waiting"
				next++
			}
			in.buf = append(in.buf, data...)
		}
		over := false
		drain := func() {
			for !over {
				e, fds, err, ok := in.next()
				if !ok {
					return
				}
				if err != nil && len(fds) != 0 {
					t.Fatalf("a refused frame handed out descriptors %v", fds)
				}
				if errors.Is(err, ErrFrameTooLarge) {
					if len(in.fds) != 0 {
						t.Fatalf("the stream is over but descriptors %v wait", in.fds)
					}
					over = true
					return
				}
				for _, fd := range fds {
					if state[fd] != "waiting" {
						t.Fatalf("descriptor %d handed out while %s", fd, state[fd])
					}
					state[fd] = "claimed"
				}
				if err != nil {
					if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrCtlVersion) {
						t.Fatalf("unexpected error class: %v", err)
					}
					continue
				}
				if len(fds) != e.FDs {
					t.Fatalf("envelope declares %d descriptors, got %d", e.FDs, len(fds))
				}
				for _, v := range []any{&Kill{}, &Restart{}, &Launch{}, &Detach{}, &Attach{}, &Ready{}, &Capture{}, &CaptureStop{}, &ErrorReply{}, &StatusReply{}, &AttachReply{}} {
					_ = e.Decode(v)
				}
			}
		}
		cut := min(int(split), len(stream))
		arrive(stream[:cut], n1)
		drain()
		arrive(stream[cut:], n2)
		drain()
		for _, fd := range in.fds {
			if state[fd] != "waiting" {
				t.Fatalf("descriptor %d waits while %s", fd, state[fd])
			}
		}
		waiting := 0
		for _, s := range state {
			if s == "waiting" {
				waiting++
			}
		}
		if waiting != len(in.fds) {
			t.Fatalf("%d descriptors waiting, the inbox holds %d: some were lost", waiting, len(in.fds))
		}
	})
}
