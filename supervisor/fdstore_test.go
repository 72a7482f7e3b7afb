package supervisor

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/internal/testkit"
	"saturn/proto"
)

// storeClient is a server's end of a store link, for the test.
type storeClient struct {
	t  *testing.T
	fd int
}

func (c storeClient) send(op proto.StoreOp, keys []uint64, fds ...int) {
	c.t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(c.fd, proto.AppendStoreMsg(nil, op, keys), oob, nil, 0); err != nil {
		c.t.Fatal(err)
	}
}

// back reads the hand-back up to StoreEnd: the keys, and whether each
// descriptor is the pipe the test put under it.
func (c storeClient) back() map[uint64]int {
	c.t.Helper()
	got := map[uint64]int{}
	buf := make([]byte, proto.StoreMaxMsg)
	oob := make([]byte, unix.CmsgSpace(4*proto.StoreMaxFDs))
	for {
		n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			c.t.Fatal(err)
		}
		fds, err := proto.StoreFDs(oob[:oobn])
		if err != nil {
			c.t.Fatal(err)
		}
		op, keys, err := proto.DecodeStoreMsg(buf[:n], len(fds), nil)
		if err != nil {
			c.t.Fatal(err)
		}
		if op == proto.StoreEnd {
			return got
		}
		for i, k := range keys {
			got[k] = fds[i]
		}
	}
}

func pipeFDs(t *testing.T, n int) (r, w []int) {
	t.Helper()
	for range n {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		r, w = append(r, p[0]), append(w, p[1])
	}
	return r, w
}

// closedByAll reports whether every descriptor to a pipe's read end is
// closed: its write end then fails with EPIPE.
func closedByAll(w int) bool {
	_, err := unix.Write(w, []byte{1})
	return err == unix.EPIPE
}

// TestFDStore: what an incarnation puts is handed back to the next one,
// whatever the dead one still had queued on its link; a drop closes; a
// malformed message is dropped with its descriptors; closeAll closes
// everything.
func TestFDStore(t *testing.T) {
	st := newFDStore("netproc", slog.New(slog.DiscardHandler))
	f1, err := st.link()
	if err != nil {
		t.Fatal(err)
	}
	c1 := storeClient{t, int(f1.Fd())}
	if got := c1.back(); len(got) != 0 {
		t.Fatalf("a new store handed back %v", got)
	}
	r, w := pipeFDs(t, 4)
	c1.send(proto.StorePut, []uint64{1, 2, 3}, r[0], r[1], r[2])
	c1.send(proto.StoreDrop, []uint64{2})
	c1.send(proto.StorePut, []uint64{9, 10}, r[3]) // one descriptor short
	for _, fd := range r {
		unix.Close(fd) // the store's are the only ones left
	}
	f1.Close() // the incarnation dies with its messages still queued
	testkit.Eventually(t, 5*time.Second, func() bool { return closedByAll(w[1]) }, "the dropped descriptor is still open")
	testkit.Eventually(t, 5*time.Second, func() bool { return closedByAll(w[3]) }, "the malformed put's descriptor is still open")

	f2, err := st.link()
	if err != nil {
		t.Fatal(err)
	}
	c2 := storeClient{t, int(f2.Fd())}
	got := c2.back()
	keys := slices.Sorted(func(yield func(uint64) bool) {
		for k := range got {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []uint64{1, 3}) || st.count() != 2 {
		t.Fatalf("handed back %v (holding %d), want [1 3]", keys, st.count())
	}
	unix.Write(w[0], []byte("x"))
	if b := make([]byte, 1); func() bool { n, _ := unix.Read(got[1], b); return n != 1 || b[0] != 'x' }() {
		t.Error("key 1 came back as another descriptor")
	}
	for _, fd := range got {
		unix.Close(fd)
	}
	if closedByAll(w[0]) || closedByAll(w[2]) {
		t.Fatal("the store let go of what it holds")
	}
	st.closeAll()
	if !closedByAll(w[0]) || !closedByAll(w[2]) || st.count() != 0 {
		t.Error("closeAll left descriptors open")
	}
	f2.Close()
	select {
	case <-st.last:
	case <-time.After(5 * time.Second):
		t.Fatal("the link's goroutine outlived the link")
	}
	for _, fd := range w {
		unix.Close(fd)
	}
}
