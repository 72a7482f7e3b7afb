package diskproc_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/diskproc"
	"saturn/internal/disktest"
	"saturn/proto"
)

// eachBackend runs f on every backend that works here: both pass the same
// tests.
func eachBackend(t *testing.T, opts diskproc.Options, f func(t *testing.T, srv *disktest.Server)) {
	for _, b := range disktest.Backends(t) {
		t.Run(b, func(t *testing.T) {
			o := opts
			o.Backend = b
			f(t, disktest.Start(t, o))
		})
	}
}

func errOf(c proto.Completion) error { return proto.DiskErr(c.Result, c.Aux) }

func reasonOf(c proto.Completion) proto.Reason {
	var de *proto.DiskError
	if errors.As(errOf(c), &de) {
		return de.Reason
	}
	return proto.ReasonNone
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSandbox: "..", absolute paths and symbolic links that leave the root
// are refused with reasons that say so; links that stay inside work.
func TestSandbox(t *testing.T) {
	eachBackend(t, diskproc.Options{}, func(t *testing.T, srv *disktest.Server) {
		outside := t.TempDir()
		mustWrite(t, filepath.Join(outside, "secret"), "secret")
		mustWrite(t, filepath.Join(srv.Root, "in/file"), "inside")
		links := map[string]string{
			"abs-out":  filepath.Join(outside, "secret"),
			"rel-out":  "../" + filepath.Base(outside) + "/secret",
			"dir-out":  outside,
			"in-ok":    "in/file",
			"in/up-ok": "../in/file", // ".." inside a link target that stays beneath the root
			"etc":      "/etc",
		}
		for name, target := range links {
			if err := os.Symlink(target, filepath.Join(srv.Root, name)); err != nil {
				t.Fatal(err)
			}
		}
		if err := unix.Mkfifo(filepath.Join(srv.Root, "fifo"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := newRaw(t, srv)
		tests := []struct {
			path   string
			errno  syscall.Errno
			reason proto.Reason
		}{
			{"in/file", 0, 0},
			{"in-ok", 0, 0},
			{"in/up-ok", 0, 0},
			{".", 0, 0},
			{"..", syscall.EXDEV, proto.ReasonDotDot},
			{"../" + filepath.Base(outside) + "/secret", syscall.EXDEV, proto.ReasonDotDot},
			{"in/../in/file", syscall.EXDEV, proto.ReasonDotDot},
			{"/etc/passwd", syscall.EXDEV, proto.ReasonAbsolute},
			{"abs-out", syscall.EXDEV, proto.ReasonEscape},
			{"rel-out", syscall.EXDEV, proto.ReasonEscape},
			{"dir-out/secret", syscall.EXDEV, proto.ReasonEscape},
			{"etc/passwd", syscall.EXDEV, proto.ReasonEscape},
			{"fifo", syscall.EPERM, proto.ReasonNotRegular},
			{"missing", syscall.ENOENT, 0},
			{"in\x00/file", syscall.EINVAL, proto.ReasonBadPath},
		}
		for i, tt := range tests {
			c := r.open(tt.path, proto.OpenRead, uint64(100+i))
			if tt.errno == 0 {
				if c.Result <= 0 {
					t.Errorf("open %q: %v", tt.path, errOf(c))
				}
				continue
			}
			if !errors.Is(errOf(c), tt.errno) || reasonOf(c) != tt.reason {
				t.Errorf("open %q: %v (reason %d), want %v reason %d", tt.path, errOf(c), reasonOf(c), tt.errno, tt.reason)
			}
			if c.Buf != 0 {
				t.Errorf("open %q: buffer 0 not handed back (%d)", tt.path, c.Buf)
			}
		}
		// Stat by path obeys the same rules.
		copy(r.buf(1), "abs-out")
		c := r.do(proto.Submission{Op: proto.OpStat, Flags: proto.FlagPath, Buf: 1, Len: proto.StatSize, Aux: 7, UserData: 1})
		if reasonOf(c) != proto.ReasonEscape {
			t.Errorf("stat through an escaping link: %v", errOf(c))
		}
		// Nothing outside was touched by a create through a link.
		c = r.open("dir-out/created", proto.OpenWrite|proto.OpenCreate, 2)
		if reasonOf(c) != proto.ReasonEscape {
			t.Errorf("create through an escaping link: %v", errOf(c))
		}
		if _, err := os.Stat(filepath.Join(outside, "created")); err == nil {
			t.Error("a file was created outside the root")
		}
	})
}

// TestHandlesPerApp: a handle means nothing on another app's channel.
func TestHandlesPerApp(t *testing.T) {
	eachBackend(t, diskproc.Options{}, func(t *testing.T, srv *disktest.Server) {
		mustWrite(t, filepath.Join(srv.Root, "f"), "data")
		a, b := newRaw(t, srv), newRaw(t, srv)
		c := a.open("f", proto.OpenRead, 1)
		if c.Result <= 0 {
			t.Fatal(errOf(c))
		}
		h := uint64(c.Result)
		for _, s := range []proto.Submission{
			{Op: proto.OpRead, Handle: h, Buf: 2, Len: 4, UserData: 2},
			{Op: proto.OpStat, Handle: h, Buf: 3, Len: proto.StatSize, UserData: 3},
			{Op: proto.OpClose, Handle: h, Buf: proto.NoBuffer, UserData: 4},
		} {
			if c := b.do(s); !errors.Is(errOf(c), syscall.EBADF) || reasonOf(c) != proto.ReasonBadHandle {
				t.Errorf("%v of another app's handle: %v", s.Op, errOf(c))
			}
		}
		if c := a.do(proto.Submission{Op: proto.OpRead, Handle: h, Buf: 2, Len: 4, UserData: 5}); c.Result != 4 || string(a.buf(2)[:4]) != "data" {
			t.Fatalf("the owner's read: %v", errOf(c))
		}
	})
}

// TestLimits: past its open-file or in-flight limit an app gets EMFILE or
// EAGAIN, and another app is served all the while.
func TestLimits(t *testing.T) {
	eachBackend(t, diskproc.Options{MaxOpen: 3, MaxInflight: 4}, func(t *testing.T, srv *disktest.Server) {
		mustWrite(t, filepath.Join(srv.Root, "f"), "0123456789")
		a, b := newRaw(t, srv), newRaw(t, srv)
		var handles []uint64
		for i := range 3 {
			c := a.open("f", proto.OpenRead, uint64(i+1))
			if c.Result <= 0 {
				t.Fatal(errOf(c))
			}
			handles = append(handles, uint64(c.Result))
		}
		c := a.open("f", proto.OpenRead, 9)
		if !errors.Is(errOf(c), syscall.EMFILE) || reasonOf(c) != proto.ReasonTooManyOpen {
			t.Fatalf("a fourth open: %v", errOf(c))
		}
		// Sixteen reads in one batch: the first four are taken, the rest
		// refused at once with EAGAIN.
		var subs []proto.Submission
		for i := range 16 {
			subs = append(subs, proto.Submission{Op: proto.OpRead, Handle: handles[0], Buf: uint32(4 + i), Len: 10, UserData: uint64(100 + i)})
		}
		a.submit(subs...)
		again, ok := 0, 0
		for _, c := range a.reap(16) {
			switch {
			case c.Result == 10:
				ok++
			case errors.Is(errOf(c), syscall.EAGAIN) && reasonOf(c) == proto.ReasonTooManyInflight:
				again++
			default:
				t.Errorf("read: %v", errOf(c))
			}
		}
		if ok < 4 || again == 0 || ok+again != 16 {
			t.Errorf("%d reads done and %d refused, want at least 4 done and some refused", ok, again)
		}
		// The other app is untouched by a's limits.
		if c := b.open("f", proto.OpenRead, 1); c.Result <= 0 {
			t.Fatalf("another app's open: %v", errOf(c))
		}
		// Closing makes room again.
		a.do(proto.Submission{Op: proto.OpClose, Handle: handles[2], Buf: proto.NoBuffer, UserData: 50})
		if c := a.open("f", proto.OpenRead, 51); c.Result <= 0 {
			t.Fatalf("an open after a close: %v", errOf(c))
		}
	})
}

// TestHostileEntries: every malformed entry gets an error completion, a
// buffer the app lent comes back, and one it did not never does.
func TestHostileEntries(t *testing.T) {
	eachBackend(t, diskproc.Options{}, func(t *testing.T, srv *disktest.Server) {
		mustWrite(t, filepath.Join(srv.Root, "f"), "0123456789")
		os.Mkdir(filepath.Join(srv.Root, "d"), 0o755)
		r := newRaw(t, srv)
		rd := uint64(r.open("f", proto.OpenRead, 1).Result)
		dir := uint64(r.open("d", proto.OpenRead, 2).Result)
		if rd == 0 || dir == 0 {
			t.Fatal("opens failed")
		}
		nb := proto.NoBuffer
		count := disktest.Geometry.BufferCount
		size := disktest.Geometry.BufferSize
		tests := []struct {
			name   string
			sub    proto.Submission
			errno  syscall.Errno
			reason proto.Reason
			back   uint32 // the buffer the completion must hand back
		}{
			{"buffer index out of range", proto.Submission{Op: proto.OpRead, Handle: rd, Buf: count, Len: 4}, syscall.EFAULT, proto.ReasonBadBuffer, nb},
			{"huge buffer index", proto.Submission{Op: proto.OpRead, Handle: rd, Buf: nb - 1, Len: 4}, syscall.EFAULT, proto.ReasonBadBuffer, nb},
			{"length past the buffer", proto.Submission{Op: proto.OpRead, Handle: rd, Buf: 3, Len: size + 1}, syscall.EFAULT, proto.ReasonBadBuffer, 3},
			{"read without a buffer", proto.Submission{Op: proto.OpRead, Handle: rd, Buf: nb, Len: 4}, syscall.EFAULT, proto.ReasonNoBuffer, nb},
			{"unknown handle", proto.Submission{Op: proto.OpRead, Handle: 12345, Buf: 3, Len: 4}, syscall.EBADF, proto.ReasonBadHandle, 3},
			{"handle zero", proto.Submission{Op: proto.OpFsync, Buf: nb}, syscall.EBADF, proto.ReasonBadHandle, nb},
			{"write to a read-only file", proto.Submission{Op: proto.OpWrite, Handle: rd, Buf: 3, Len: 4}, syscall.EBADF, proto.ReasonNotWritable, 3},
			{"append to a file not opened to append", proto.Submission{Op: proto.OpWrite, Flags: proto.FlagAppend, Handle: rd, Buf: 3, Len: 4}, syscall.EBADF, proto.ReasonNotWritable, 3},
			{"path flag on a read", proto.Submission{Op: proto.OpRead, Flags: proto.FlagPath, Handle: rd, Buf: 3, Len: 4}, syscall.EINVAL, proto.ReasonBadFlags, 3},
			{"offset past the largest file", proto.Submission{Op: proto.OpRead, Handle: rd, Buf: 3, Len: 4, Offset: 1 << 63}, syscall.EINVAL, proto.ReasonBadOffset, 3},
			{"read of a directory", proto.Submission{Op: proto.OpRead, Handle: dir, Buf: 3, Len: 4}, syscall.EISDIR, 0, 3},
			{"readdir of a file", proto.Submission{Op: proto.OpReaddir, Handle: rd, Buf: 3, Len: 100}, syscall.ENOTDIR, 0, 3},
			{"readdir into too small a buffer", proto.Submission{Op: proto.OpReaddir, Handle: dir, Buf: 3, Len: 1}, 0, 0, 3}, // an empty directory: nothing to fit
			{"stat into too small a buffer", proto.Submission{Op: proto.OpStat, Handle: rd, Buf: 3, Len: 10}, syscall.EINVAL, proto.ReasonBufferSmall, 3},
			{"fsync with unknown flags", proto.Submission{Op: proto.OpFsync, Handle: rd, Buf: nb, Args: [3]uint64{6}}, syscall.EINVAL, proto.ReasonBadFlags, nb},
			{"open with unknown flags", proto.Submission{Op: proto.OpOpen, Buf: 3, Len: 1, Args: [3]uint64{1 << 20}}, syscall.EINVAL, proto.ReasonBadFlags, 3},
			{"open with no access mode", proto.Submission{Op: proto.OpOpen, Buf: 3, Len: 1}, syscall.EINVAL, proto.ReasonBadFlags, 3},
			{"open with a set-id mode", proto.Submission{Op: proto.OpOpen, Buf: 3, Len: 1, Args: [3]uint64{uint64(proto.OpenWrite | proto.OpenCreate), 0o4755}}, syscall.EINVAL, proto.ReasonBadFlags, 3},
			{"open with a path longer than its buffer", proto.Submission{Op: proto.OpOpen, Buf: 3, Len: 1, Aux: 2000, Args: [3]uint64{uint64(proto.OpenRead)}}, syscall.EINVAL, proto.ReasonBadPath, 3},
			{"open with an empty path", proto.Submission{Op: proto.OpOpen, Buf: 3, Len: 0, Args: [3]uint64{uint64(proto.OpenRead)}}, syscall.EINVAL, proto.ReasonBadPath, 3},
			{"close of an unknown handle", proto.Submission{Op: proto.OpClose, Handle: 77, Buf: nb}, syscall.EBADF, proto.ReasonBadHandle, nb},
			{"a network operation", proto.Submission{Op: proto.OpAccept, Handle: rd, Buf: 3, Len: 4}, syscall.EOPNOTSUPP, 0, 3},
			{"cancel", proto.Submission{Op: proto.OpCancel, Buf: nb, Args: [3]uint64{1}}, syscall.EALREADY, 0, nb},
		}
		for i, tt := range tests {
			tt.sub.UserData = uint64(1000 + i)
			c := r.do(tt.sub)
			if c.UserData != tt.sub.UserData {
				t.Errorf("%s: completion for user_data %d", tt.name, c.UserData)
			}
			if tt.errno == 0 {
				if c.Result < 0 {
					t.Errorf("%s: %v", tt.name, errOf(c))
				}
			} else if !errors.Is(errOf(c), tt.errno) || reasonOf(c) != tt.reason {
				t.Errorf("%s: %v (reason %d), want %v (reason %d)", tt.name, errOf(c), reasonOf(c), tt.errno, tt.reason)
			}
			if c.Buf != tt.back {
				t.Errorf("%s: completion hands back buffer %d, want %d", tt.name, c.Buf, tt.back)
			}
		}
		// An entry of garbage: an unknown opcode and reserved bits.
		slotBad := make([]byte, proto.SubmissionSize)
		for i := range slotBad {
			slotBad[i] = 0xee
		}
		n, _ := r.end.Submit.Reserve(1)
		if n != 1 {
			t.Fatal("ring full")
		}
		copy(r.end.Submit.Slot(0), slotBad)
		r.end.Submit.Publish(1)
		if c := r.reap(1)[0]; !errors.Is(errOf(c), syscall.EINVAL) {
			t.Errorf("garbage entry: %v", errOf(c))
		}
		// The same buffer named by two entries at once: the second is
		// refused and does not hand the buffer back (the first holds it).
		r.submit(proto.Submission{Op: proto.OpRead, Handle: rd, Buf: 5, Len: 10, UserData: 1}, proto.Submission{Op: proto.OpRead, Handle: rd, Buf: 5, Len: 10, UserData: 2})
		cs := r.reap(2)
		for _, c := range cs {
			switch c.UserData {
			case 1:
				if c.Result != 10 || c.Buf != 5 {
					t.Errorf("first read of buffer 5: %v buf %d", errOf(c), c.Buf)
				}
			case 2:
				if reasonOf(c) != proto.ReasonBadBuffer || c.Buf != nb {
					t.Errorf("second read of buffer 5: %v buf %d", errOf(c), c.Buf)
				}
			}
		}
		// Still serving.
		if c := r.do(proto.Submission{Op: proto.OpRead, Handle: rd, Buf: 6, Len: 10, UserData: 3}); c.Result != 10 {
			t.Fatalf("serving after hostile entries: %v", errOf(c))
		}
	})
}

// TestDirect: O_DIRECT reads and writes with aligned offsets and lengths
// work; unaligned ones are refused with the rule and the alignment.
func TestDirect(t *testing.T) {
	eachBackend(t, diskproc.Options{}, func(t *testing.T, srv *disktest.Server) {
		data := make([]byte, 64<<10)
		for i := range data {
			data[i] = byte(i * 7)
		}
		os.WriteFile(filepath.Join(srv.Root, "f"), data, 0o644)
		r := newRaw(t, srv)
		c := r.open("f", proto.OpenRead|proto.OpenWrite|proto.OpenDirect, 1)
		if reasonOf(c) == proto.ReasonDirectUnsupported {
			t.Skipf("the filesystem of %s does not support O_DIRECT", srv.Root)
		}
		if c.Result <= 0 {
			t.Fatal(errOf(c))
		}
		h := uint64(c.Result)
		align := proto.DecodeOpenInfo(c.Aux).DirectAlign
		if align == 0 || align > 4096 {
			t.Fatalf("O_DIRECT alignment %d", align)
		}
		c = r.do(proto.Submission{Op: proto.OpRead, Handle: h, Buf: 1, Len: 8192, Offset: 4096, UserData: 2})
		if c.Result != 8192 || string(r.buf(1)[:8192]) != string(data[4096:4096+8192]) {
			t.Fatalf("aligned direct read: %v", errOf(c))
		}
		if align > 1 {
			c = r.do(proto.Submission{Op: proto.OpRead, Handle: h, Buf: 1, Len: 4096, Offset: 1, UserData: 3})
			var de *proto.DiskError
			if !errors.As(errOf(c), &de) || de.Reason != proto.ReasonDirectOffset || de.Arg != align || !errors.Is(de, syscall.EINVAL) {
				t.Errorf("unaligned offset: %v", errOf(c))
			}
			c = r.do(proto.Submission{Op: proto.OpWrite, Handle: h, Buf: 1, Len: 100, UserData: 4})
			if reasonOf(c) != proto.ReasonDirectLength {
				t.Errorf("unaligned length: %v", errOf(c))
			}
		}
		copy(r.buf(2), "direct!!")
		c = r.do(proto.Submission{Op: proto.OpWrite, Handle: h, Buf: 2, Len: 4096, Offset: 0, UserData: 5})
		if c.Result != 4096 {
			t.Fatalf("aligned direct write: %v", errOf(c))
		}
		got, _ := os.ReadFile(filepath.Join(srv.Root, "f"))
		if string(got[:8]) != "direct!!" {
			t.Fatalf("direct write not on disk: %q", got[:8])
		}
	})
}

// TestRestartKeepsFiles: a new incarnation gives every open file its old
// handle; a replayed open gets the handle its first attempt made; a
// replayed close of a file the last incarnation closed succeeds; a file
// replaced meanwhile answers ESTALE; an exclusive create the dead
// incarnation may have done is not refused by its own replay.
func TestRestartKeepsFiles(t *testing.T) {
	eachBackend(t, diskproc.Options{}, func(t *testing.T, srv *disktest.Server) {
		mustWrite(t, filepath.Join(srv.Root, "keep"), "kept")
		mustWrite(t, filepath.Join(srv.Root, "replace"), "old")
		r := newRaw(t, srv)
		keep := uint64(r.open("keep", proto.OpenRead|proto.OpenWrite, 10).Result)
		repl := uint64(r.open("replace", proto.OpenRead, 11).Result)
		closed := uint64(r.open("keep", proto.OpenRead, 12).Result)
		created := r.open("created", proto.OpenWrite|proto.OpenCreate|proto.OpenExclusive, 13)
		if keep == 0 || repl == 0 || closed == 0 || created.Result <= 0 {
			t.Fatal("opens failed")
		}
		if c := r.do(proto.Submission{Op: proto.OpClose, Handle: closed, Buf: proto.NoBuffer, UserData: 14}); c.Result != 0 {
			t.Fatal(errOf(c))
		}
		// A file opened to truncate, then written: the rebuild must not
		// truncate it again (nor refuse the exclusive create's file).
		trunc := uint64(r.open("keep", proto.OpenWrite|proto.OpenTruncate, 18).Result)
		copy(r.buf(1), "kept")
		if c := r.do(proto.Submission{Op: proto.OpWrite, Handle: trunc, Buf: 1, Len: 4, UserData: 19}); c.Result != 4 {
			t.Fatal(errOf(c))
		}

		srv.Stop()
		// Replaced by a rename, so the new file cannot reuse the old inode.
		mustWrite(t, filepath.Join(srv.Root, "replace.new"), "new")
		os.Rename(filepath.Join(srv.Root, "replace.new"), filepath.Join(srv.Root, "replace"))
		mustWrite(t, filepath.Join(srv.Root, "excl"), "") // the dead incarnation's exclusive create happened...
		if err := diskproc.WriteIntent(srv.Persist(), r.c.ID, 15, "excl", proto.OpenWrite|proto.OpenCreate|proto.OpenExclusive, time.Now()); err != nil {
			t.Fatal(err) // ...but its completion never reached the app
		}
		srv.Resume()

		copy(r.buf(1), "0123")
		if c := r.do(proto.Submission{Op: proto.OpWrite, Handle: keep, Buf: 1, Len: 4, Offset: 4, UserData: 20}); c.Result != 4 {
			t.Fatalf("write on a kept handle: %v", errOf(c))
		}
		if got, _ := os.ReadFile(filepath.Join(srv.Root, "keep")); string(got) != "kept0123" {
			t.Fatalf("kept file holds %q", got)
		}
		if c := r.do(proto.Submission{Op: proto.OpWrite, Handle: uint64(created.Result), Buf: 1, Len: 4, UserData: 22}); c.Result != 4 {
			t.Errorf("write on the exclusive create's handle after the restart: %v", errOf(c))
		}
		if c := r.do(proto.Submission{Op: proto.OpWrite, Handle: trunc, Buf: 1, Len: 4, Offset: 8, UserData: 23}); c.Result != 4 {
			t.Errorf("write on the truncating open's handle after the restart: %v", errOf(c))
		}
		if c := r.do(proto.Submission{Op: proto.OpRead, Handle: repl, Buf: 1, Len: 4, UserData: 21}); !errors.Is(errOf(c), syscall.ESTALE) || reasonOf(c) != proto.ReasonStale {
			t.Errorf("read of a replaced file: %v", errOf(c))
		}
		if c := r.open("keep", proto.OpenRead|proto.OpenWrite, 10); uint64(c.Result) != keep {
			t.Errorf("replayed open: handle %d, want %d (%v)", c.Result, keep, errOf(c))
		}
		if c := r.do(proto.Submission{Op: proto.OpClose, Handle: closed, Buf: proto.NoBuffer, UserData: 14}); c.Result != 0 {
			t.Errorf("replayed close: %v", errOf(c))
		}
		if c := r.do(proto.Submission{Op: proto.OpClose, Handle: closed, Buf: proto.NoBuffer, UserData: 16}); !errors.Is(errOf(c), syscall.EBADF) {
			t.Errorf("a second close after the replayed one: %v", errOf(c))
		}
		if c := r.open("excl", proto.OpenWrite|proto.OpenCreate|proto.OpenExclusive, 15); c.Result <= 0 {
			t.Errorf("replayed exclusive create: %v", errOf(c))
		}
		if c := r.open("excl", proto.OpenWrite|proto.OpenCreate|proto.OpenExclusive, 17); !errors.Is(errOf(c), syscall.EEXIST) {
			t.Errorf("a new exclusive create of an existing file: %v", errOf(c))
		}
		// The app leaves: its records go, and a next incarnation has
		// nothing of it.
		srv.Drop(r.c)
		srv.Restart()
	})
}

// TestAutoSaysWhatItChose: status shows the backend "auto" picked, and why
// when it is not io_uring.
func TestAutoSaysWhatItChose(t *testing.T) {
	srv := disktest.Start(t, diskproc.Options{Backend: "auto"})
	info := srv.Srv.Info()
	b := info["backend"]
	if !strings.HasPrefix(b, srv.Srv.Backend()+" (auto") {
		t.Fatalf("backend %q does not say auto chose %s", b, srv.Srv.Backend())
	}
	if uerr := diskproc.ProbeUring(); uerr == nil && srv.Srv.Backend() != "uring" {
		t.Errorf("auto chose %s though io_uring works", srv.Srv.Backend())
	} else if uerr != nil && !strings.Contains(b, "io_uring") {
		t.Errorf("auto fell back without saying why: %q", b)
	}
	if info["root"] != srv.Root || info["max_open"] == "" {
		t.Errorf("info: %v", info)
	}
	if _, err := diskproc.New(diskproc.Options{Root: srv.Root, Backend: "bogus"}); err == nil {
		t.Error("a bogus backend was accepted")
	}
	if _, err := diskproc.New(diskproc.Options{Root: filepath.Join(srv.Root, "missing")}); err == nil {
		t.Error("a missing root was accepted")
	}
}
