package diskproc_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"saturn/diskproc"
	"saturn/internal/disktest"
	"saturn/proto"
)

// TestWriteGrants: an app with grants reads anywhere beneath the root but
// writes, creates and truncates only beneath the folders it was granted;
// a symbolic link in a granted folder cannot lead a write out of it; an
// app granted nothing only reads; and a restart of diskproc keeps a file
// open for writing only under a grant.
func TestWriteGrants(t *testing.T) {
	eachBackend(t, diskproc.Options{}, func(t *testing.T, srv *disktest.Server) {
		mustWrite(t, filepath.Join(srv.Root, "site/index.html"), "<h1>someone else's</h1>")
		mustWrite(t, filepath.Join(srv.Root, "uploads/.keep"), "")
		if err := os.Symlink("../site/index.html", filepath.Join(srv.Root, "uploads/sneaky")); err != nil {
			t.Fatal(err)
		}
		writer := newRawWith(t, srv, &proto.ChannelGrants{DiskWrite: []string{"uploads"}})
		reader := newRawWith(t, srv, &proto.ChannelGrants{})
		create := proto.OpenWrite | proto.OpenCreate | proto.OpenTruncate
		for _, tt := range []struct {
			who    *rawApp
			name   string
			path   string
			flags  proto.OpenFlag
			errno  syscall.Errno
			reason proto.Reason
		}{
			{writer, "writer reads another's file", "site/index.html", proto.OpenRead, 0, 0},
			{writer, "writer creates in its folder", "uploads/new.txt", create, 0, 0},
			{writer, "writer rewrites another's file", "site/index.html", proto.OpenWrite | proto.OpenTruncate, syscall.EACCES, proto.ReasonNotGranted},
			{writer, "writer creates outside its folder", "site/evil.html", create, syscall.EACCES, proto.ReasonNotGranted},
			{writer, "writer writes through a link out of its folder", "uploads/sneaky", proto.OpenWrite, syscall.EXDEV, proto.ReasonEscape},
			{writer, "writer names a folder beside its own", "uploads-not/x", create, syscall.EACCES, proto.ReasonNotGranted},
			{reader, "reader reads", "site/index.html", proto.OpenRead, 0, 0},
			{reader, "reader writes", "uploads/x", create, syscall.EACCES, proto.ReasonNotGranted},
		} {
			c := tt.who.open(tt.path, tt.flags, 1)
			switch {
			case tt.errno == 0 && c.Result <= 0:
				t.Errorf("%s: %v", tt.name, errOf(c))
			case tt.errno != 0 && (c.Result >= 0 || syscall.Errno(-c.Result) != tt.errno || reasonOf(c) != tt.reason):
				t.Errorf("%s: result %d (%v), want %v (%v)", tt.name, c.Result, errOf(c), tt.errno, tt.reason)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(srv.Root, "site/index.html")); string(b) != "<h1>someone else's</h1>" {
			t.Errorf("another app's file was changed: %q", b)
		}
	})
}

// TestFileShares: diskproc's open files are shared out so that apps each
// within their own limit cannot take them all: past what is shared, a
// greedy app gets EMFILE (ReasonShares), and another app still opens its
// guaranteed share.
func TestFileShares(t *testing.T) {
	// A table of 200 files; two apps, each guaranteed 32: 136 are shared.
	const slots = 200
	opts := diskproc.Options{MaxApps: 2, PersistSize: 4096 + slots*(128+proto.MaxPathLen+1)}
	eachBackend(t, opts, func(t *testing.T, srv *disktest.Server) {
		mustWrite(t, filepath.Join(srv.Root, "f"), "x")
		greedy, modest := newRaw(t, srv), newRaw(t, srv)
		n := 0
		for ; n < 300; n++ {
			c := greedy.open("f", proto.OpenRead, uint64(n+1))
			if c.Result < 0 {
				if syscall.Errno(-c.Result) != syscall.EMFILE || reasonOf(c) != proto.ReasonShares {
					t.Fatalf("open past the greedy app's share: %v (%v)", errOf(c), reasonOf(c))
				}
				break
			}
		}
		if n != 168 {
			t.Errorf("the greedy app opened %d of %d, want 168 (its 32 and the 136 shared)", n, slots)
		}
		for i := range 32 {
			if c := modest.open("f", proto.OpenRead, uint64(i+1)); c.Result < 0 {
				t.Fatalf("the modest app's file %d of its guaranteed 32: %v", i+1, errOf(c))
			}
		}
		if c := modest.open("f", proto.OpenRead, 99); c.Result >= 0 {
			t.Error("the modest app opened a 33rd file: the capacity is passed")
		}
	})
}

// TestPinnedCap: past the cap on pinned memory a channel's buffers are
// not registered with io_uring, and it is served all the same.
func TestPinnedCap(t *testing.T) {
	eachBackend(t, diskproc.Options{MaxPinned: 1}, func(t *testing.T, srv *disktest.Server) {
		mustWrite(t, filepath.Join(srv.Root, "f"), "served without pinning")
		for range 3 {
			b, err := fs.ReadFile(srv.FS(), "f")
			if err != nil || string(b) != "served without pinning" {
				t.Fatalf("read %q, %v", b, err)
			}
		}
	})
}
