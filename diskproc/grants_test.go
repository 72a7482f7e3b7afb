package diskproc_test

import (
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
