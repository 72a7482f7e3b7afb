package diskproc_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"saturn/diskproc"
	"saturn/internal/disktest"
	"saturn/proto"
)

// FuzzLiveEntries feeds entries made from random bytes to a live diskproc
// loop: every one must get exactly one completion that echoes its
// user_data and hands back no buffer but its own, and the server must keep
// serving, holding none of the app's buffers once everything completed.
func FuzzLiveEntries(f *testing.F) {
	srv := disktest.Start(f, diskproc.Options{MaxOpen: 64})
	os.WriteFile(filepath.Join(srv.Root, "probe"), []byte("probe-data"), 0o644)
	os.Mkdir(filepath.Join(srv.Root, "dir"), 0o755)
	os.Symlink("/etc", filepath.Join(srv.Root, "escape"))
	r := newRaw(f, srv)
	probe := uint64(r.open("probe", proto.OpenRead, 1).Result) // fuzz entries name these handles
	rw := uint64(r.open("rw", proto.OpenRead|proto.OpenWrite|proto.OpenCreate, 2).Result)
	dir := uint64(r.open("dir", proto.OpenRead, 3).Result)
	if probe == 0 || rw == 0 || dir == 0 {
		f.Fatal("setup opens failed")
	}
	handles := []uint64{probe, rw, dir, 0, 1, ^uint64(0)}
	paths := []string{"probe", "rw", "dir", "escape/passwd", "../x", "/abs", "new-file", "dir/sub", "", "a\x00b", "."}
	count := disktest.Geometry.BufferCount

	// Seeds: a plausible entry of each kind, and garbage.
	for op := range 20 {
		seed := make([]byte, 64)
		seed[0] = byte(op)
		f.Add(seed)
	}
	f.Add([]byte("\xff\xff\xff\xff garbage entry that is not an entry at all ................"))

	var ud uint64 = 1 << 32
	f.Fuzz(func(t *testing.T, data []byte) {
		r.t = t
		var subs []proto.Submission
		want := map[uint64]proto.Submission{}
		lent := map[uint32]bool{}
		for len(data) > 0 && len(subs) < 48 {
			chunk := make([]byte, 64)
			data = data[copy(chunk, data):]
			le := binary.LittleEndian
			s := proto.Submission{
				Op:     proto.Op(chunk[0] % 20),
				Flags:  proto.SubmitFlag(chunk[1] & 7),
				Buf:    uint32(chunk[2]) % (count + 2),
				Len:    le.Uint32(chunk[8:]) % (disktest.Geometry.BufferSize + 100),
				Aux:    uint32(chunk[3]),
				Handle: handles[int(chunk[4])%len(handles)],
				Offset: le.Uint64(chunk[16:]) >> (chunk[5] % 64),
				Args:   [3]uint64{le.Uint64(chunk[24:]) & 0x3ff, le.Uint64(chunk[32:]) & 0o7777, le.Uint64(chunk[40:])},
			}
			switch chunk[6] % 4 {
			case 0:
				s.Buf = proto.NoBuffer
			case 1:
				s.Buf = le.Uint32(chunk[48:]) // anything at all
			}
			if chunk[7]%8 == 0 {
				s.Handle = le.Uint64(chunk[56:])
			}
			if s.Buf < count && !lent[s.Buf] && (s.Op == proto.OpOpen || s.Op == proto.OpStat) {
				p := paths[int(chunk[5])%len(paths)]
				copy(r.buf(s.Buf), p)
				s.Aux = uint32(len(p))
			}
			if s.Buf < count {
				lent[s.Buf] = true
			}
			ud++
			s.UserData = ud
			want[ud] = s
			subs = append(subs, s)
		}
		r.submit(subs...)
		for _, c := range r.reap(len(subs)) {
			s, ok := want[c.UserData]
			if !ok {
				t.Fatalf("a completion for user_data %d, which was not submitted (or twice)", c.UserData)
			}
			delete(want, c.UserData)
			if c.Buf != proto.NoBuffer && c.Buf != s.Buf {
				t.Fatalf("%v entry with buffer %d: completion hands back buffer %d", s.Op, s.Buf, c.Buf)
			}
			if c.Result < -4095 {
				t.Fatalf("%v: result %d is neither a count nor an errno", s.Op, c.Result)
			}
			if s.Op == proto.OpOpen && c.Result > 0 { // keep the table from filling up
				r.do(proto.Submission{Op: proto.OpClose, Handle: uint64(c.Result), Buf: proto.NoBuffer, UserData: 7})
			}
		}
		// Still serving, and holding none of the app's buffers: a read
		// into every buffer at once succeeds. (The entries may have closed
		// or truncated anything: open afresh.)
		os.WriteFile(filepath.Join(srv.Root, "probe"), []byte("probe-data"), 0o644)
		c := r.open("probe", proto.OpenRead, 8)
		if c.Result <= 0 {
			t.Fatalf("open after the fuzz entries: %v", errOf(c))
		}
		h := uint64(c.Result)
		var reads []proto.Submission
		for i := range count {
			reads = append(reads, proto.Submission{Op: proto.OpRead, Handle: h, Buf: i, Len: 10, UserData: uint64(10 + i)})
		}
		r.submit(reads...)
		for _, c := range r.reap(int(count)) {
			if c.Result != 10 || c.Buf != uint32(c.UserData-10) {
				t.Fatalf("read into buffer %d after the fuzz entries: %v (buffer %d)", c.UserData-10, errOf(c), c.Buf)
			}
		}
		r.do(proto.Submission{Op: proto.OpClose, Handle: h, Buf: proto.NoBuffer, UserData: 9})
	})
}
