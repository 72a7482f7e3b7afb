package appproc_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"

	"saturn/appproc"
	"saturn/diskproc"
	"saturn/internal/disktest"
	"saturn/proto"
)

// eachBackend runs f against an in-process diskproc on every backend that
// works here.
func eachBackend(t *testing.T, f func(t *testing.T, srv *disktest.Server, fsys *appproc.FS)) {
	for _, b := range disktest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			srv := disktest.Start(t, diskproc.Options{Backend: b})
			f(t, srv, srv.FS())
		})
	}
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFSConformance runs testing/fstest's suite. It makes thousands of
// small calls, so it runs on the backend "auto" picks only (the threads
// backend costs two more thread wake-ups per call, and this suite alone
// would take a quarter of a minute there on a loaded two-core machine);
// the other tests here run on both.
func TestFSConformance(t *testing.T) {
	srv := disktest.Start(t, diskproc.Options{Backend: "auto"})
	t.Logf("backend: %s", srv.Srv.Backend())
	func(t *testing.T, srv *disktest.Server, fsys *appproc.FS) {
		big := bytes.Repeat([]byte("0123456789abcdef"), 1100) // 17.6 KB: two buffers
		writeTree(t, srv.Root, map[string]string{
			"hello.txt":        "hello, world\n",
			"empty":            "",
			"dir/a":            "a",
			"dir/sub/b":        "bb",
			"dir/sub/deeper/c": "ccc",
			"big.bin":          string(big),
		})
		if err := fstest.TestFS(fsys, "hello.txt", "empty", "dir/a", "dir/sub/b", "dir/sub/deeper/c", "big.bin"); err != nil {
			t.Fatal(err)
		}
		got, err := fsys.ReadFile("big.bin")
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("ReadFile of %d bytes: %d bytes, %v", len(big), len(got), err)
		}
	}(t, srv, srv.FS())
}

// TestReadDirPaging lists a directory larger than one buffer, all at once
// and a few entries at a time.
func TestReadDirPaging(t *testing.T) {
	eachBackend(t, func(t *testing.T, srv *disktest.Server, fsys *appproc.FS) {
		const n = 200
		long := strings.Repeat("x", 100)
		for i := range n {
			writeTree(t, srv.Root, map[string]string{filepath.Join("many", fmt.Sprintf("%s-%03d", long, i)): ""})
		}
		list, err := fsys.ReadDir("many")
		if err != nil || len(list) != n {
			t.Fatalf("ReadDir of %d entries: %d, %v", n, len(list), err)
		}
		for i, e := range list {
			if e.Name() != fmt.Sprintf("%s-%03d", long, i) || e.IsDir() {
				t.Fatalf("entry %d: %v", i, e)
			}
		}
		d, _ := fsys.Open("many")
		defer d.Close()
		seen := map[string]bool{}
		for {
			part, err := d.(fs.ReadDirFile).ReadDir(7)
			for _, e := range part {
				seen[e.Name()] = true
			}
			if err == io.EOF {
				break
			}
			if err != nil || len(part) == 0 || len(part) > 7 {
				t.Fatalf("ReadDir(7): %d entries, %v", len(part), err)
			}
		}
		if len(seen) != n {
			t.Fatalf("paging saw %d distinct entries, want %d", len(seen), n)
		}
	})
}

func TestFSErrors(t *testing.T) {
	eachBackend(t, func(t *testing.T, srv *disktest.Server, fsys *appproc.FS) {
		writeTree(t, srv.Root, map[string]string{"f": "data", "d/x": "x"})
		_, err := fsys.Open("missing")
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Op != "open" || pe.Path != "missing" || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("open of a missing file: %v", err)
		}
		for _, bad := range []string{"../f", "/etc/passwd", "a/../f", ""} {
			if _, err := fsys.Open(bad); !errors.Is(err, fs.ErrInvalid) {
				t.Errorf("open %q: %v, want fs.ErrInvalid", bad, err)
			}
		}
		if _, err := fsys.OpenFile("f", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, fs.ErrExist) {
			t.Errorf("exclusive create of an existing file: %v", err)
		}
		f, err := fsys.Open("f")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.(*appproc.File).Write([]byte("x")); !errors.Is(err, syscall.EBADF) {
			t.Errorf("write on a read-only file: %v", err)
		}
		var de *proto.DiskError
		if _, err := f.(*appproc.File).Write([]byte("x")); !errors.As(err, &de) || de.Reason != proto.ReasonNotWritable {
			t.Errorf("write on a read-only file does not explain itself: %v", err)
		}
		if _, err := f.(fs.ReadDirFile).ReadDir(-1); !errors.Is(err, syscall.ENOTDIR) {
			t.Errorf("ReadDir of a file: %v", err)
		}
		f.Close()
		if err := f.Close(); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("second close: %v", err)
		}
		if _, err := f.Read(make([]byte, 4)); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("read after close: %v", err)
		}
		d, _ := fsys.Open("d")
		if _, err := d.Read(make([]byte, 4)); !errors.Is(err, syscall.EISDIR) {
			t.Errorf("read of a directory: %v", err)
		}
		d.Close()
		if _, err := fsys.OpenFile("d", os.O_WRONLY, 0); !errors.Is(err, syscall.EISDIR) {
			t.Errorf("a directory opened for writing: %v", err)
		}
	})
}

func TestFileWrite(t *testing.T) {
	eachBackend(t, func(t *testing.T, srv *disktest.Server, fsys *appproc.FS) {
		f, err := fsys.Create("out/new.bin")
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("create in a missing directory: %v", err)
		}
		f, err = fsys.Create("new.bin")
		if err != nil {
			t.Fatal(err)
		}
		var w io.Writer = f
		var wa io.WriterAt = f
		var s io.Seeker = f
		data := bytes.Repeat([]byte("saturn!"), 20000) // 140 KB: several buffers
		if n, err := w.Write(data); n != len(data) || err != nil {
			t.Fatalf("write: %d %v", n, err)
		}
		if _, err := wa.WriteAt([]byte("XYZ"), 7); err != nil {
			t.Fatal(err)
		}
		if pos, err := s.Seek(-3, io.SeekEnd); err != nil || pos != int64(len(data)-3) {
			t.Fatalf("seek: %d %v", pos, err)
		}
		tail := make([]byte, 10)
		if n, err := f.Read(tail); n != 3 || err != nil || string(tail[:3]) != "rn!" {
			t.Fatalf("read at the end: %d %v %q", n, err, tail[:n])
		}
		if n, err := f.Read(tail); n != 0 || err != io.EOF {
			t.Fatalf("read past the end: %d %v", n, err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		copy(data[7:], "XYZ")
		if got, err := os.ReadFile(filepath.Join(srv.Root, "new.bin")); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("the file on disk differs (%d bytes, %v)", len(got), err)
		}
		// Append.
		a, err := fsys.OpenFile("log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		a.Write([]byte("one\n"))
		a.Write([]byte("two\n"))
		if _, err := a.WriteAt([]byte("x"), 0); err == nil {
			t.Error("WriteAt on an appending file succeeded")
		}
		a.Close()
		if got, _ := fsys.ReadFile("log"); string(got) != "one\ntwo\n" {
			t.Fatalf("appended %q", got)
		}
		if fi, _ := fsys.Stat("log"); fi.Mode().Perm() != 0o600 {
			t.Errorf("created with mode %v, want 0600", fi.Mode())
		}
		if err := fsys.WriteFile("w", []byte("written"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, _ := fsys.ReadFile("w"); string(got) != "written" {
			t.Fatalf("WriteFile: %q", got)
		}
	})
}
