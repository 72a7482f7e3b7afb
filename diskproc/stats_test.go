package diskproc_test

import (
	"path/filepath"
	"strconv"
	"testing"

	"saturn/diskproc"
	"saturn/internal/disktest"
	"saturn/proto"
)

// TestCounters: diskproc's disk.* counters in Info count what it served,
// as whole numbers under dotted names (which status shows as counters).
func TestCounters(t *testing.T) {
	eachBackend(t, diskproc.Options{}, func(t *testing.T, srv *disktest.Server) {
		mustWrite(t, filepath.Join(srv.Root, "f"), "0123456789")
		a := newRaw(t, srv)
		c := a.open("f", proto.OpenRead, 1)
		if c.Result <= 0 {
			t.Fatal(errOf(c))
		}
		h := uint64(c.Result)
		for i := range 3 {
			if c := a.do(proto.Submission{Op: proto.OpRead, Handle: h, Buf: 2, Len: 10, UserData: uint64(10 + i)}); c.Result != 10 {
				t.Fatalf("read: %v", errOf(c))
			}
		}
		if c := a.open("missing", proto.OpenRead, 20); c.Result >= 0 {
			t.Fatalf("open of a missing file: %d", c.Result)
		}
		if c := a.do(proto.Submission{Op: proto.OpRead, Handle: h + 1000, Buf: 3, Len: 10, UserData: 21}); c.Result >= 0 {
			t.Fatalf("read of a bad handle: %d", c.Result)
		}
		info := srv.Srv.Info()
		for k, want := range map[string]uint64{
			"disk.opens": 2, "disk.reads": 3, "disk.read_bytes": 30, "disk.errors": 1, "disk.refused": 1,
			"disk.writes": 0, "disk.write_bytes": 0,
		} {
			got, err := strconv.ParseUint(info[k], 10, 64)
			if err != nil || got != want {
				t.Errorf("%s = %q, want %d", k, info[k], want)
			}
		}
	})
}
