package ring

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var testGeometry = Geometry{SQEntrySize: 64, SQEntries: 256, CQEntrySize: 32, CQEntries: 512, BufferSize: 4096, BufferCount: 64}

// reopen maps r's memfd a second time through a duplicate descriptor, as a
// peer process would.
func reopen(t testing.TB, r *Region) *Region {
	t.Helper()
	fd, err := unix.Dup(int(r.File().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Open(os.NewFile(uintptr(fd), "dup"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r2.Close() })
	return r2
}

func newRegion(t testing.TB, g Geometry) *Region {
	t.Helper()
	r, err := Create("saturn-test", g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func TestCreateOpen(t *testing.T) {
	r := newRegion(t, testGeometry)
	r2 := reopen(t, r)
	if r2.Geometry() != testGeometry {
		t.Fatalf("geometry %+v, want %+v", r2.Geometry(), testGeometry)
	}
	if r2.Size() != testGeometry.Size() {
		t.Fatalf("size %d, want %d", r2.Size(), testGeometry.Size())
	}
	// Both mappings see the same memory.
	r.mem[r.lay.poolOffset] = 0xAB
	if r2.mem[r2.lay.poolOffset] != 0xAB {
		t.Fatal("second mapping does not share the first one's memory")
	}
	// The pool is page-aligned, so 4 KiB buffers suit O_DIRECT.
	if r.lay.poolOffset%4096 != 0 {
		t.Fatalf("pool offset %d not page-aligned", r.lay.poolOffset)
	}
}

func TestRegionIsSealed(t *testing.T) {
	r := newRegion(t, testGeometry)
	fd := int(r.File().Fd())
	if err := unix.Ftruncate(fd, 4096); err == nil {
		t.Fatal("shrinking a region succeeded")
	}
	if err := unix.Ftruncate(fd, r.Size()*2); err == nil {
		t.Fatal("growing a region succeeded")
	}
}

func TestOpenRefusesUnsealed(t *testing.T) {
	// A memfd with a valid header but no seals: a peer could shrink it.
	fd, err := unix.MemfdCreate("unsealed", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "unsealed")
	page := make([]byte, HeaderSize)
	encodeHeader(page, testGeometry)
	if err := unix.Ftruncate(fd, testGeometry.Size()); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Pwrite(fd, page, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(f); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("Open of unsealed memfd: %v, want ErrNotSealed", err)
	}

	// A regular file cannot be sealed at all.
	tf, err := os.CreateTemp(t.TempDir(), "region")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(tf); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("Open of a regular file: %v, want ErrNotSealed", err)
	}
}

// sealedWithHeader makes a sealed memfd of size bytes whose first page is
// page, to test Open against headers that lie.
func sealedWithHeader(t *testing.T, page []byte, size int64) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("lying", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Pwrite(fd, page, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, requiredSeals); err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), "lying")
}

func TestHeaderLies(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name    string
		mutate  func(page []byte)
		size    int64 // 0: the geometry's size
		wantErr error
		mention string // the error must name what is wrong
	}{
		{"magic", func(p []byte) { copy(p, "NOTSATRN") }, 0, ErrBadHeader, "magic"},
		{"version", func(p []byte) { le.PutUint32(p[offVersion:], 99) }, 0, ErrVersion, "version 99"},
		{"header size", func(p []byte) { le.PutUint32(p[offHeaderSize:], 128) }, 0, ErrBadHeader, "header size"},
		{"sq count not power of two", func(p []byte) { le.PutUint32(p[offSQEntries:], 100) }, 0, ErrBadHeader, "submission ring of 100"},
		{"cq count zero", func(p []byte) { le.PutUint32(p[offCQEntries:], 0) }, 0, ErrBadHeader, "completion ring of 0"},
		{"sq entry size odd", func(p []byte) { le.PutUint32(p[offSQEntrySize:], 63) }, 0, ErrBadHeader, "submission entry size 63"},
		{"huge entry count", func(p []byte) { le.PutUint32(p[offSQEntries:], 1<<31) }, 0, ErrBadHeader, "submission ring"},
		{"buffer size", func(p []byte) { le.PutUint32(p[offBufferSize:], 100) }, 0, ErrBadHeader, "buffer size 100"},
		{"buffer count", func(p []byte) { le.PutUint32(p[offBufferCount:], 1<<30) }, 0, ErrBadHeader, "buffer count"},
		{"sq offset lies", func(p []byte) { le.PutUint64(p[offSQOffset:], 0) }, 0, ErrBadHeader, "submission ring offset"},
		{"cq offset past end", func(p []byte) { le.PutUint64(p[offCQOffset:], 1<<40) }, 0, ErrBadHeader, "completion ring offset"},
		{"pool offset lies", func(p []byte) { le.PutUint64(p[offPoolOffset:], 8192) }, 0, ErrBadHeader, "buffer pool offset"},
		{"total lies", func(p []byte) { le.PutUint64(p[offTotalSize:], 1<<20) }, 0, ErrBadHeader, "total size"},
		{"file shorter than header says", func(p []byte) {}, testGeometry.Size() - 4096, ErrBadHeader, "region file is"},
		{"file longer than header says", func(p []byte) {}, testGeometry.Size() + 4096, ErrBadHeader, "region file is"},
		{"file smaller than a header", func(p []byte) {}, 64, ErrBadHeader, "smaller than its header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := make([]byte, HeaderSize)
			encodeHeader(page, testGeometry)
			tt.mutate(page)
			size := tt.size
			if size == 0 {
				size = testGeometry.Size()
			}
			if size < int64(len(page)) {
				page = page[:size]
			}
			_, err := Open(sealedWithHeader(t, page, size))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open: %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestGeometryCheck(t *testing.T) {
	bad := []Geometry{
		{},
		{SQEntrySize: 64, SQEntries: 3, CQEntrySize: 32, CQEntries: 4},
		{SQEntrySize: 64, SQEntries: 4, CQEntrySize: 32, CQEntries: MaxEntries * 2},
		{SQEntrySize: 64, SQEntries: 4, CQEntrySize: 32, CQEntries: 4, BufferCount: 1, BufferSize: 0},
		{SQEntrySize: 64, SQEntries: 4, CQEntrySize: 32, CQEntries: 4, BufferCount: MaxBufferCount, BufferSize: MaxBufferSize},
	}
	for _, g := range bad {
		if err := g.Check(); !errors.Is(err, ErrBadGeometry) {
			t.Errorf("Check(%+v) = %v, want ErrBadGeometry", g, err)
		}
	}
	if _, err := Create("bad", bad[1]); !errors.Is(err, ErrBadGeometry) {
		t.Errorf("Create with bad geometry: %v", err)
	}
	if err := testGeometry.Check(); err != nil {
		t.Errorf("Check(testGeometry) = %v", err)
	}
}

func TestServerEpoch(t *testing.T) {
	r := newRegion(t, testGeometry)
	if e, _ := r.ServerEpoch(); e != 0 {
		t.Fatalf("fresh region has epoch %d", e)
	}
	app, err := r.App(Bells{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := r.Server(Bells{})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Epoch != 1 || srv.Resume != 0 {
		t.Fatalf("first incarnation: epoch %d resume %d", srv.Epoch, srv.Resume)
	}
	// The app submits 5; the server consumes 3 and dies.
	n, _ := app.Submit.Reserve(5)
	if err := app.Submit.Publish(n); err != nil {
		t.Fatal(err)
	}
	if n, _ := srv.Submit.Peek(3); n != 3 {
		t.Fatalf("peek %d", n)
	}
	srv.Submit.Release(3)
	srv2, err := reopen(t, r).Server(Bells{})
	if err != nil {
		t.Fatal(err)
	}
	if srv2.Epoch != 2 || srv2.Resume != 3 {
		t.Fatalf("second incarnation: epoch %d resume %d, want 2 and 3", srv2.Epoch, srv2.Resume)
	}
	if e, res := r.ServerEpoch(); e != 2 || res != 3 {
		t.Fatalf("app sees epoch %d resume %d", e, res)
	}
	// The new incarnation continues with the two unconsumed entries.
	if n, _ := srv2.Submit.Peek(10); n != 2 {
		t.Fatalf("new incarnation sees %d entries, want 2", n)
	}
	c := r.Counters()
	if c.SQDepth != 2 || c.Submitted != 3 {
		t.Fatalf("counters %+v", c)
	}
}

func FuzzValidateHeader(f *testing.F) {
	page := make([]byte, staticEnd)
	encodeHeader(page, testGeometry)
	f.Add(page, testGeometry.Size())
	f.Add(page[:10], int64(100))
	f.Add(make([]byte, staticEnd), int64(4096))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		g, err := ValidateHeader(b, size)
		if err != nil {
			return
		}
		if err := g.Check(); err != nil {
			t.Fatalf("accepted geometry fails Check: %v", err)
		}
		if g.Size() != size {
			t.Fatalf("accepted header for %d bytes, geometry says %d", size, g.Size())
		}
		l := g.layout()
		if l.sqOffset < HeaderSize || l.cqOffset < l.sqOffset || l.poolOffset < l.cqOffset || l.total < l.poolOffset {
			t.Fatalf("accepted overlapping layout %+v", l)
		}
	})
}

func TestEndIncarnation(t *testing.T) {
	r := newRegion(t, testGeometry)
	app, _ := r.App(Bells{})
	srv, _ := r.Server(Bells{})
	n, _ := app.Submit.Reserve(4)
	app.Submit.Publish(n)
	srv.Submit.Peek(3)
	srv.Submit.Release(3) // the server takes three, then dies
	if err := r.EndIncarnation(); err != nil {
		t.Fatal(err)
	}
	if e, res := r.ServerEpoch(); e != 2 || res != 3 {
		t.Fatalf("after the death: epoch %d resume %d, want 2 and 3", e, res)
	}
	// The next incarnation resumes at the same place, one epoch on.
	srv2, err := r.Server(Bells{})
	if err != nil {
		t.Fatal(err)
	}
	if srv2.Epoch != 3 || srv2.Resume != 3 {
		t.Fatalf("next incarnation: epoch %d resume %d, want 3 and 3", srv2.Epoch, srv2.Resume)
	}
}
