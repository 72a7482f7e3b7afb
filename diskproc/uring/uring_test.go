package uring

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func newRing(t *testing.T) *Ring {
	t.Helper()
	r, err := New(8)
	if err != nil {
		t.Skipf("io_uring not usable here: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// newEventfd is a non-blocking eventfd, closed when the test ends.
func newEventfd(t *testing.T) int {
	t.Helper()
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(efd) })
	return efd
}

func addr(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&b[0]))) }

// TestReadWriteFixed writes and reads back through plain, fixed-buffer and
// fixed-file entries, submitted as one batch, and checks that the eventfd
// fires.
func TestReadWriteFixed(t *testing.T) {
	r := newRing(t)
	efd := newEventfd(t)
	if err := r.RegisterEventfd(efd); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	// Buffers outside the Go heap, as saturn's shared buffers are.
	mem, err := unix.Mmap(-1, 0, 3*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	copy(mem, "plain write.")
	copy(mem[4096:], "fixed write!")
	if err := r.RegisterSparseBuffers(4); err != nil {
		t.Fatal(err)
	}
	if err := r.SetBuffer(2, mem); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterSparseFiles(4); err != nil {
		t.Fatal(err)
	}
	if err := r.SetFile(1, fd); err != nil {
		t.Fatal(err)
	}
	w1 := r.GetSQE()
	*w1 = SQE{Opcode: OpWrite, FD: int32(fd), Addr: addr(mem), Len: 12, Off: 0, UserData: 1}
	w2 := r.GetSQE()
	*w2 = SQE{Opcode: OpWriteFixed, Flags: SQEFixedFile, FD: 1, Addr: addr(mem[4096:]), Len: 12, Off: 12, BufIndex: 2, UserData: 2}
	if n, err := r.Submit(); err != nil || n != 2 {
		t.Fatalf("submit: %d %v", n, err)
	}
	results := map[uint64]int32{}
	for len(results) < 2 {
		if err := r.Wait(); err != nil {
			t.Fatal(err)
		}
		r.Reap(func(c *CQE) { results[c.UserData] = c.Res })
	}
	if results[1] != 12 || results[2] != 12 {
		t.Fatalf("writes: %v", results)
	}
	rd := r.GetSQE()
	*rd = SQE{Opcode: OpReadFixed, FD: int32(fd), Addr: addr(mem[8192:]), Len: 24, BufIndex: 2, UserData: 3}
	r.Submit()
	var res int32
	for got := false; !got; {
		r.Wait()
		r.Reap(func(c *CQE) { res, got = c.Res, true })
	}
	if res != 24 || string(mem[8192:8192+24]) != "plain write.fixed write!" {
		t.Fatalf("read %d: %q", res, mem[8192:8192+24])
	}
	var cnt [8]byte
	if n, err := unix.Read(efd, cnt[:]); err != nil || n != 8 || cnt[0] == 0 {
		t.Fatalf("the eventfd did not fire: %d %v", n, err)
	}
	// A cleared slot refuses fixed entries.
	if err := r.SetBuffer(2, nil); err != nil {
		t.Fatal(err)
	}
	bad := r.GetSQE()
	*bad = SQE{Opcode: OpReadFixed, FD: int32(fd), Addr: addr(mem), Len: 4, BufIndex: 2, UserData: 4}
	r.Submit()
	for got := false; !got; {
		r.Wait()
		r.Reap(func(c *CQE) { res, got = c.Res, true })
	}
	if res >= 0 {
		t.Fatalf("a read through a cleared buffer slot succeeded: %d", res)
	}
}

func TestFullRing(t *testing.T) {
	r := newRing(t)
	n := 0
	for r.GetSQE() != nil {
		n++
	}
	if n != r.SQSize() || r.Pending() != n {
		t.Fatalf("filled %d of %d (pending %d)", n, r.SQSize(), r.Pending())
	}
	if k, err := r.Submit(); err != nil || k != n {
		t.Fatalf("submit of %d nops: %d %v", n, k, err)
	}
	got := 0
	for got < n {
		r.Wait()
		got += r.Reap(func(*CQE) {})
	}
	if r.GetSQE() == nil {
		t.Fatal("the ring is still full after every entry was consumed")
	}
}

// TestEventfdAsync checks that an eventfd registered with
// RegisterEventfdAsync stays quiet for a completion posted during the
// submit (a nop) and is signalled for one posted later (an fsync, which
// io_uring always hands to its workers).
func TestEventfdAsync(t *testing.T) {
	r := newRing(t)
	efd := newEventfd(t)
	if err := r.RegisterEventfdAsync(efd); err != nil {
		t.Skipf("no IORING_REGISTER_EVENTFD_ASYNC here: %v", err)
	}
	*r.GetSQE() = SQE{Opcode: OpNop, UserData: 1}
	if n, err := r.Submit(); err != nil || n != 1 {
		t.Fatalf("submit: %d %v", n, err)
	}
	if got := r.Reap(func(*CQE) {}); got != 1 {
		t.Fatalf("the nop did not complete inline: %d completions", got)
	}
	var buf [8]byte
	if _, err := unix.Read(efd, buf[:]); err != unix.EAGAIN {
		t.Fatalf("eventfd after an inline completion: %v, want EAGAIN (not signalled)", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	*r.GetSQE() = SQE{Opcode: OpFsync, FD: int32(f.Fd()), UserData: 2}
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	r.Reap(func(*CQE) {})
	fds := []unix.PollFd{{Fd: int32(efd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 5000); err != nil || n != 1 {
		t.Fatalf("eventfd after an fsync's completion: poll %d %v, want signalled", n, err)
	}
}
