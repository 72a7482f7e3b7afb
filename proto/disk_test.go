package proto

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

func TestOpenFlagCheck(t *testing.T) {
	tests := []struct {
		f  OpenFlag
		ok bool
	}{
		{OpenRead, true},
		{OpenRead | OpenWrite | OpenCreate | OpenTruncate, true},
		{OpenWrite | OpenCreate | OpenExclusive | OpenAppend | OpenDirect, true},
		{OpenRead | OpenDirectory, true},
		{0, false},                         // no access mode
		{OpenRead | OpenTruncate, false},   // truncate without write
		{OpenRead | OpenAppend, false},     // append without write
		{OpenWrite | OpenExclusive, false}, // exclusive without create
		{OpenWrite | OpenDirectory, false}, // a directory for writing
		{OpenRead | 1<<20, false},          // unknown bit
	}
	for _, tt := range tests {
		if err := tt.f.Check(); (err == nil) != tt.ok {
			t.Errorf("%v: %v, want ok=%v", tt.f, err, tt.ok)
		} else if err != nil && !errors.Is(err, ErrBadOpenFlags) {
			t.Errorf("%v: %v does not wrap ErrBadOpenFlags", tt.f, err)
		}
	}
	if s := (OpenRead | OpenDirect | 1<<30).String(); s != "read|direct|0x40000000" {
		t.Errorf("String: %q", s)
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		path string
		want Reason
	}{
		{".", ReasonNone},
		{"a/b/c.txt", ReasonNone},
		{"a/./b", ReasonNone},
		{"...", ReasonNone},
		{"a..b/..c", ReasonNone},
		{"", ReasonBadPath},
		{"a\x00b", ReasonBadPath},
		{strings.Repeat("a", MaxPathLen+1), ReasonBadPath},
		{"/etc/passwd", ReasonAbsolute},
		{"..", ReasonDotDot},
		{"../x", ReasonDotDot},
		{"a/../../x", ReasonDotDot},
		{"a/..", ReasonDotDot},
	}
	for _, tt := range tests {
		r, err := CheckPath(tt.path)
		if r != tt.want || (err == nil) != (tt.want == ReasonNone) {
			t.Errorf("%.20q: reason %d err %v, want reason %d", tt.path, r, err, tt.want)
		}
	}
}

func TestStatRoundTrip(t *testing.T) {
	s := Stat{Size: 1 << 40, Perm: 0o4755, Type: TypeRegular, ModTime: 1700000000123456789, Ino: 99, Dev: 0x803,
		Nlink: 2, BlockSize: 4096, Blocks: 8, DirectAlign: 512, DirectMem: 4}
	b := roundTrip(t, s, StatSize, s.Encode, DecodeStat)
	if s.Time().UnixNano() != s.ModTime {
		t.Errorf("Time: %v", s.Time())
	}
	refusesMutations(t, b, 10, DecodeStat, ErrBadRecord,
		func(b []byte) { b[7] = 0x80 }, // negative size
		func(b []byte) { b[9] = 0x10 }, // mode bits past 07777
		func(b []byte) { b[12] = 9 },   // type
		func(b []byte) { b[14] = 1 },   // reserved
	)
}

func TestDirents(t *testing.T) {
	in := []Dirent{{1, TypeRegular, "a"}, {2, TypeDir, "sub"}, {3, TypeSymlink, strings.Repeat("x", MaxNameLen)}, {4, TypeOther, "fifo"}}
	b := make([]byte, 1024)
	off := 0
	for _, d := range in {
		n := AppendDirent(b[off:], d)
		if n == 0 || n%8 != 0 || n != DirentSize(d.Name) {
			t.Fatalf("append %q: %d", d.Name, n)
		}
		off += n
	}
	got, err := DecodeDirents(b[:off])
	if err != nil || len(got) != len(in) {
		t.Fatalf("decode: %v %v", got, err)
	}
	for i := range in {
		if got[i] != in[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], in[i])
		}
	}
	if n := AppendDirent(b[:8], Dirent{Name: "toolong"}); n != 0 {
		t.Errorf("a record that does not fit was written: %d", n)
	}
	if n := AppendDirent(b, Dirent{Name: ""}); n != 0 {
		t.Errorf("an empty name was written")
	}
	if DirentSize(strings.Repeat("x", MaxNameLen)) != MaxDirentSize {
		t.Errorf("MaxDirentSize %d", MaxDirentSize)
	}
	// Refusals.
	one := make([]byte, 16)
	AppendDirent(one, Dirent{Ino: 1, Type: TypeRegular, Name: "ab"})
	refusesMutations(t, one, 5, DecodeDirents, ErrBadRecord,
		func(b []byte) { b[12] = '/' },
		func(b []byte) { b[10] = 0 },               // empty name
		func(b []byte) { b[10] = 200 },             // longer than the buffer
		func(b []byte) { b[8] = 7 },                // type
		func(b []byte) { b[9] = 1 },                // reserved
		func(b []byte) { b[12], b[13] = '.', '.' }, // ".."
	)
}

func TestOpenInfo(t *testing.T) {
	i := OpenInfo{Type: TypeDir, DirectAlign: 4096}
	if got := DecodeOpenInfo(i.Encode()); got != i {
		t.Fatalf("%+v", got)
	}
}

func TestDiskErr(t *testing.T) {
	if DiskErr(5, 0) != nil {
		t.Fatal("a count is not an error")
	}
	if err := DiskErr(-int64(syscall.ENOENT), 0); err != syscall.ENOENT || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("bare errno: %v", err)
	}
	err := DiskErr(-int64(syscall.EINVAL), ReasonAux(ReasonDirectOffset, 512))
	var de *DiskError
	if !errors.As(err, &de) || !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "multiples of 512") {
		t.Fatalf("explained errno: %v", err)
	}
	if err := DiskErr(-int64(syscall.EXDEV), ReasonAux(ReasonEscape, 0)); !strings.Contains(err.Error(), "out of diskproc's root") {
		t.Fatalf("escape: %v", err)
	}
	if err := DiskErr(-int64(syscall.EIO), ReasonAux(Reason(999), 0)); !strings.Contains(err.Error(), "reason 999") {
		t.Fatalf("unknown reason: %v", err)
	}
	for r := Reason(1); r < reasonCount; r++ {
		if reasonText[r] == "" {
			t.Errorf("reason %d has no text", r)
		}
	}
}

func FuzzDecodeStat(f *testing.F) {
	b := make([]byte, StatSize)
	(&Stat{Size: 10, Perm: 0o644, Type: TypeRegular}).Encode(b)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeStat(b)
		if err != nil {
			return
		}
		out := make([]byte, StatSize)
		s.Encode(out)
		if again, err := DecodeStat(out); err != nil || again != s {
			t.Fatalf("re-encoding changed the record: %+v %v", again, err)
		}
	})
}

func FuzzDecodeDirents(f *testing.F) {
	b := make([]byte, 64)
	n := AppendDirent(b, Dirent{Ino: 7, Type: TypeDir, Name: "dir"})
	n += AppendDirent(b[n:], Dirent{Ino: 8, Type: TypeRegular, Name: "f"})
	f.Add(b[:n])
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := DecodeDirents(b)
		if err != nil {
			return
		}
		out := make([]byte, len(b))
		off := 0
		for _, d := range ds {
			k := AppendDirent(out[off:], d)
			if k == 0 {
				t.Fatalf("a decoded entry does not re-encode: %+v", d)
			}
			off += k
		}
		if off != len(b) {
			t.Fatalf("re-encoded %d bytes of %d", off, len(b))
		}
	})
}

func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{".", "a/b", "../x", "/abs", "a/../b", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := CheckPath(p)
		if (err == nil) != (r == ReasonNone) {
			t.Fatalf("%q: reason %d with err %v", p, r, err)
		}
		if err == nil && (p == "" || p[0] == '/' || strings.Contains("/"+p+"/", "/../")) {
			t.Fatalf("%q accepted", p)
		}
	})
}
