package kernel

import (
	"log/slog"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/netproc/backend"
	"saturn/proto"
)

// fakeEnv is a backend.Env that records what the backend asks of it.
type fakeEnv struct {
	watched map[int]bool
	timers  []func()
}

type fakeTimer struct{}

func (fakeTimer) Stop() bool { return true }

func (e *fakeEnv) AddFD(fd int, events uint32, cb func(uint32)) error {
	e.watched[fd] = true
	return nil
}
func (e *fakeEnv) ModFD(fd int, events uint32) error { return nil }
func (e *fakeEnv) DelFD(fd int) error                { delete(e.watched, fd); return nil }
func (e *fakeEnv) AfterFunc(d time.Duration, f func()) backend.Timer {
	e.timers = append(e.timers, f)
	return fakeTimer{}
}
func (e *fakeEnv) Post(f func())        { f() }
func (e *fakeEnv) Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// tcpPair is a connection over loopback: the dialed end's and the accepted
// end's descriptors (duplicates the test owns).
func tcpPair(t testing.TB) (dialed, accepted int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	dup := func(c net.Conn) int {
		f, err := c.(*net.TCPConn).File()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		fd, err := unix.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	return dup(c), dup(s)
}

func settled(t *testing.T, what string, f func() (uint64, bool), want uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got, ok := f()
		if ok && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the kernel's counts say %d (%v), want %d", what, got, ok, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKernelCounts checks the arithmetic settle relies on against this
// kernel: bytes taken and bytes let go, for both ends, before and after
// each side's FIN.
func TestKernelCounts(t *testing.T) {
	cfd, sfd := tcpPair(t)
	cr, sr := &record{kind: kindDialed}, &record{kind: kindAccepted}
	unix.Write(cfd, make([]byte, 3000))
	unix.Write(sfd, make([]byte, 700))
	settled(t, "dialed, sent", func() (uint64, bool) { return kernelSent(cfd, cr) }, 3000)
	settled(t, "accepted, sent", func() (uint64, bool) { return kernelSent(sfd, sr) }, 700)
	settled(t, "accepted, consumed", func() (uint64, bool) { return kernelConsumed(sfd, sr) }, 0)
	unix.Read(sfd, make([]byte, 1000))
	unix.Recvfrom(sfd, make([]byte, 500), unix.MSG_PEEK)
	settled(t, "accepted, consumed after a read and a peek", func() (uint64, bool) { return kernelConsumed(sfd, sr) }, 1000)
	unix.Read(cfd, make([]byte, 700))
	unix.Shutdown(cfd, unix.SHUT_WR)
	cr.flags |= flagShutWrite
	settled(t, "dialed, sent after its FIN", func() (uint64, bool) { return kernelSent(cfd, cr) }, 3000)
	settled(t, "accepted, consumed after the peer's FIN", func() (uint64, bool) { return kernelConsumed(sfd, sr) }, 1000)
	unix.Read(sfd, make([]byte, 4000))
	unix.Shutdown(sfd, unix.SHUT_WR)
	sr.flags |= flagShutWrite
	settled(t, "accepted, sent after both FINs", func() (uint64, bool) { return kernelSent(sfd, sr) }, 700)
	settled(t, "accepted, consumed after both FINs", func() (uint64, bool) { return kernelConsumed(sfd, sr) }, 3000)
	settled(t, "dialed, consumed after both FINs", func() (uint64, bool) { return kernelConsumed(cfd, cr) }, 700)
}

// TestTableHostile: a record that fails any check is freed when the table
// is loaded; a header of another layout or backend is discarded whole.
func TestTableHostile(t *testing.T) {
	tab, err := openTable(nil, tableHeader+16*recordSize)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.close()
	good := record{kind: kindAccepted, owner: 7, handle: 9, sent: 100}
	if !tab.alloc(&good) {
		t.Fatal("alloc")
	}
	corrupt := map[string]func(i int){
		"kind":           func(i int) { tab.u32(i, rKind).Store(9) },
		"flags":          func(i int) { tab.u32(i, rFlags).Store(1 << 20) },
		"no owner":       func(i int) { tab.u64(i, rOwner).Store(0) },
		"handle bit 63":  func(i int) { tab.u64(i, rHandle).Store(1 << 63) },
		"huge sent":      func(i int) { tab.u64(i, rSent).Store(1 << 63) },
		"state":          func(i int) { tab.u32(i, rState).Store(77) },
		"listener bytes": func(i int) { tab.u32(i, rKind).Store(kindListener); tab.u64(i, rSent).Store(1) },
	}
	for name, f := range corrupt {
		r := record{kind: kindAccepted, owner: 1, handle: 2}
		if !tab.alloc(&r) {
			t.Fatal("alloc", name)
		}
		f(r.slot)
	}
	live := tab.load()
	if len(live) != 1 || live[good.slot].sent != 100 || live[good.slot].key() != good.key() {
		t.Fatalf("after load: %+v; want only the good record", live)
	}
	if len(tab.free) != len(corrupt) {
		t.Errorf("%d records free, want %d", len(tab.free), len(corrupt))
	}
	// A reused record gets a new generation: a key of its earlier use
	// names nothing.
	tab.release(good.slot)
	again := record{kind: kindAccepted, owner: 1, handle: 3}
	tab.alloc(&again)
	if again.slot == good.slot && again.key() == good.key() {
		t.Error("a reused record kept its key")
	}

	f := memfd(t, 1<<20)
	f.WriteAt([]byte("SATTCP01"), 0) // usertcp's table
	other, err := openTable(f, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.close()
	if other.discard == "" || len(other.load()) != 0 {
		t.Error("another backend's table was not discarded")
	}
}

func memfd(t *testing.T, size int64) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "memfd")
	t.Cleanup(func() { f.Close() })
	f.Truncate(size)
	return f
}

// fakeSupervisor hands back fds under keys on the far end of a store link
// (and closes its own), then collects what the backend sends.
func fakeSupervisor(t *testing.T, keys []uint64, fds []int) (*os.File, <-chan []uint64) {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	drops := make(chan []uint64, 1)
	go func() {
		defer unix.Close(pair[0])
		if len(keys) > 0 {
			unix.Sendmsg(pair[0], proto.AppendStoreMsg(nil, proto.StoreBack, keys), unix.UnixRights(fds...), nil, 0)
		}
		for _, fd := range fds {
			unix.Close(fd) // in flight: the link holds them
		}
		unix.Sendmsg(pair[0], proto.AppendStoreMsg(nil, proto.StoreEnd, nil), nil, nil, 0)
		var got []uint64
		buf := make([]byte, proto.StoreMaxMsg)
		oob := make([]byte, unix.CmsgSpace(4*proto.StoreMaxFDs))
		for {
			n, oobn, _, _, err := unix.Recvmsg(pair[0], buf, oob, 0)
			if err != nil || n == 0 {
				break
			}
			fds, _ := proto.StoreFDs(oob[:oobn])
			for _, fd := range fds {
				unix.Close(fd)
			}
			if op, k, err := proto.DecodeStoreMsg(buf[:n], len(fds), nil); err == nil && op == proto.StoreDrop {
				got = append(got, k...)
			}
		}
		drops <- got
	}()
	return os.NewFile(uintptr(pair[1]), "link"), drops
}

// TestAdopt: the next incarnation takes over what the store hands back
// only where descriptor and record agree; a torn write is settled from
// the kernel's counts, or refused if they do not fit; everything else is
// closed and dropped, and records without a descriptor freed.
func TestAdopt(t *testing.T) {
	persist := memfd(t, tableHeader+64*recordSize)
	tab, err := openTable(persist, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // netproc's listeners are plain TCP
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lf, _ := ln.(*net.TCPListener).File()
	defer lf.Close()
	_, conn := tcpPair(t)
	_, torn := tcpPair(t)
	_, lying := tcpPair(t)
	_, stale := tcpPair(t)
	unix.Write(torn, make([]byte, 1000))
	unix.Write(lying, make([]byte, 1000))

	mk := func(r record) record {
		if !tab.alloc(&r) {
			t.Fatal("alloc")
		}
		return r
	}
	rl := mk(record{kind: kindListener, owner: 5, handle: 50, call: 77, backlog: 16})
	rc := mk(record{kind: kindAccepted, owner: 5, handle: 51, sent: 10, consumed: 3, closeAt: 0})
	rt := mk(record{kind: kindAccepted, owner: 5, handle: 52})
	tab.u64(rt.slot, rWriting).Store(1000) // died in the write: the kernel took all of it
	ry := mk(record{kind: kindAccepted, owner: 5, handle: 53})
	tab.u64(ry.slot, rWriting).Store(10)                       // the kernel took more than the write could have
	rk := mk(record{kind: kindListener, owner: 5, handle: 54}) // a connection under a listener's record
	rs := mk(record{kind: kindAccepted, owner: 6, handle: 55})
	rn := mk(record{kind: kindAccepted, owner: 6, handle: 56}) // no descriptor came back
	tab.close()

	dup := func(fd int) int { d, _ := unix.Dup(fd); return d }
	keys := []uint64{rl.key(), rc.key(), rt.key(), ry.key(), rk.key(), rs.key() + 1<<32}
	fds := []int{dup(int(lf.Fd())), dup(conn), dup(torn), dup(lying), dup(conn), dup(stale)}
	link, drops := fakeSupervisor(t, keys, fds)
	env := &fakeEnv{watched: map[int]bool{}}
	pfd, _ := unix.Dup(int(persist.Fd()))
	b := NewWith(Config{Persist: os.NewFile(uintptr(pfd), "persist"), Store: link})
	if err := b.Start(env); err != nil {
		t.Fatal(err)
	}
	if !b.Resuming() {
		t.Fatal("not resuming")
	}
	got := b.Resume(5, func(h uint64) backend.Notify { return func(backend.Events) {} })
	var handles []uint64
	for _, r := range got {
		handles = append(handles, r.Handle)
		switch r.Handle {
		case 50:
			if r.Listener == nil || r.Call != 77 || r.Options.Backlog != 16 {
				t.Errorf("the listener came back as %+v", r)
			}
		case 51:
			if sc := r.Conn.(backend.StreamConn); sc.Sent(0) != 10 {
				t.Errorf("the connection's sent count is %d, want 10", sc.Sent(0))
			}
		case 52:
			if sc := r.Conn.(backend.StreamConn); sc.Sent(0) != 1000 {
				t.Errorf("the torn write settled at %d, want 1000", sc.Sent(0))
			}
		}
	}
	slices.Sort(handles)
	if !slices.Equal(handles, []uint64{50, 51, 52}) {
		t.Errorf("resumed handles %v, want [50 51 52]", handles)
	}
	if len(env.watched) != 3 {
		t.Errorf("%d descriptors watched, want 3", len(env.watched))
	}
	if others := b.Resume(6, func(uint64) backend.Notify { return nil }); len(others) != 0 {
		t.Errorf("owner 6 got %d sockets; its records had no descriptor that fit", len(others))
	}
	b.Close()
	link.Close()
	d := <-drops
	slices.Sort(d)
	want := []uint64{ry.key(), rk.key(), rs.key() + 1<<32}
	slices.Sort(want)
	if !slices.Equal(d, want) {
		t.Errorf("dropped %v, want %v", d, want)
	}
	tab2, _ := openTable(persist, 0)
	defer tab2.close()
	if live := tab2.load(); len(live) != 3 || live[rn.slot].owner != 0 {
		t.Errorf("%d records live after the take-over, want 3 (listener, connection, settled)", len(live))
	}
}
