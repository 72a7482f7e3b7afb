package netproc_test

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/netproc"
	"saturn/netproc/kernel"
	"saturn/netproc/netproctest"
	"saturn/proto"
)

// provide lends netproc a buffer for FlagSelect waits; it has no
// completion of its own.
func (a *rawApp) provide() uint32 {
	a.t.Helper()
	b := a.buf(nil)
	a.submit(proto.Submission{Op: proto.OpProvide, Buf: b})
	return b
}

// TestSelectWaits: an accept, a recv and a connect submitted with
// FlagSelect name no buffer and wait holding none; their output goes into
// a buffer the app provided, which the completion names, and while none is
// provided they wait, ready, and lose nothing.
func TestSelectWaits(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{})
	a := newRawApp(t, srv, "select")
	ln, bound, _ := a.listen("127.0.0.1:0", 0)
	client, err := net.Dial("tcp", bound.String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	// A connection is queued, but no buffer is provided: the accept
	// waits for one.
	acc := a.submit(proto.Submission{Op: proto.OpAccept, Handle: ln, Flags: proto.FlagSelect, Len: proto.AddrPairSize})
	if c, ok := a.waitOK(acc, 100*time.Millisecond); ok {
		t.Fatalf("accept completed with no buffer provided: %+v", c)
	}
	b1 := a.provide()
	c := a.wait(acc, 5*time.Second)
	if c.Result <= 0 || c.Buf != b1 {
		t.Fatalf("accept: result %d (%v) in buffer %d, want a handle in the provided buffer %d", c.Result, errOf(c), c.Buf, b1)
	}
	local, peer, err := proto.DecodeAddrPair(a.release(c.Buf))
	if err != nil || local != bound || peer.String() != client.LocalAddr().String() {
		t.Fatalf("accept's addresses: %v %v %v", local, peer, err)
	}
	conn := uint64(c.Result)

	// A recv waits with no data and no buffer; data comes while none is
	// provided: it waits on; a buffer comes: it completes with the data.
	recv := a.submit(proto.Submission{Op: proto.OpRecv, Handle: conn, Flags: proto.FlagSelect, Len: 100})
	client.Write([]byte("selected"))
	if c, ok := a.waitOK(recv, 100*time.Millisecond); ok {
		t.Fatalf("recv completed with no buffer provided: %+v", c)
	}
	b2 := a.provide()
	c = a.wait(recv, 5*time.Second)
	if c.Buf != b2 || c.Result != 8 {
		t.Fatalf("recv: result %d (%v) in buffer %d, want 8 bytes in %d", c.Result, errOf(c), c.Buf, b2)
	}
	if got := a.release(c.Buf)[:8]; string(got) != "selected" {
		t.Fatalf("recv got %q", got)
	}

	// Provided first, used when the data comes; at most Len bytes.
	b3 := a.provide()
	recv = a.submit(proto.Submission{Op: proto.OpRecv, Handle: conn, Flags: proto.FlagSelect, Len: 4})
	if _, ok := a.waitOK(recv, 50*time.Millisecond); ok {
		t.Fatal("recv completed with no data")
	}
	client.Write([]byte("abcdefgh"))
	c = a.wait(recv, 5*time.Second)
	if c.Buf != b3 || c.Result != 4 || !bytes.Equal(a.release(c.Buf)[:4], []byte("abcd")) {
		t.Fatalf("recv of at most 4: result %d in buffer %d", c.Result, c.Buf)
	}

	// A connect carries its address in the entry and gets its address
	// pair in a provided buffer.
	off, a1, a2, err := proto.InlineSockAddr(bound)
	if err != nil {
		t.Fatal(err)
	}
	b4 := a.provide()
	c, _ = a.call(proto.Submission{Op: proto.OpConnect, Flags: proto.FlagSelect, Len: proto.AddrPairSize, Offset: off, Args: [3]uint64{uint64(5 * time.Second), a1, a2}})
	if c.Result <= 0 || c.Buf != b4 {
		t.Fatalf("connect: result %d (%v) in buffer %d, want %d", c.Result, errOf(c), c.Buf, b4)
	}

	// What cannot choose a buffer is refused, and a buffer it named comes
	// back.
	for _, bad := range []struct {
		what string
		sub  proto.Submission
	}{
		{"send with FlagSelect", proto.Submission{Op: proto.OpSend, Handle: conn, Flags: proto.FlagSelect, Len: 4}},
		{"recv with FlagSelect and a buffer", proto.Submission{Op: proto.OpRecv, Handle: conn, Flags: proto.FlagSelect, Buf: a.buf(nil), Len: 4}},
		{"recv with FlagSelect past a buffer", proto.Submission{Op: proto.OpRecv, Handle: conn, Flags: proto.FlagSelect, Len: netproctest.Geometry.BufferSize + 1}},
		{"accept with FlagSelect and no room for addresses", proto.Submission{Op: proto.OpAccept, Handle: ln, Flags: proto.FlagSelect, Len: 8}},
		{"poll with FlagSelect", proto.Submission{Op: proto.OpRecv, Handle: conn, Flags: proto.FlagSelect, Len: 4, Args: [3]uint64{uint64(proto.RecvPoll)}}},
	} {
		c, _ := a.call(bad.sub)
		wantErr(t, bad.what, c, syscall.EINVAL)
		if bad.sub.Buf != 0 && c.Buf != bad.sub.Buf {
			t.Errorf("%s: its buffer did not come back", bad.what)
		}
	}
}

// TestStarvedSockets: sockets that found no provided buffer wait for one,
// and each buffer provided serves exactly one of them, with its own bytes.
func TestStarvedSockets(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{})
	a := newRawApp(t, srv, "starved")
	ln, bound, _ := a.listen("127.0.0.1:0", 0)
	const n = 5
	var conns []uint64
	var clients []net.Conn
	for range n {
		cl, err := net.Dial("tcp", bound.String())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		clients = append(clients, cl)
		c, _ := a.call(proto.Submission{Op: proto.OpAccept, Handle: ln})
		conns = append(conns, uint64(c.Result))
	}
	recvs := map[uint64]byte{}
	for i, conn := range conns {
		recvs[a.submit(proto.Submission{Op: proto.OpRecv, Handle: conn, Flags: proto.FlagSelect, Len: 16})] = byte('a' + i)
		clients[i].Write([]byte{byte('a' + i)})
	}
	for range n {
		b := a.provide()
		var got []uint64
		deadline := time.Now().Add(5 * time.Second)
		for len(got) == 0 && time.Now().Before(deadline) {
			for id := range recvs {
				if c, ok := a.waitOK(id, time.Millisecond); ok {
					if c.Buf != b || c.Result != 1 || a.release(c.Buf)[0] != recvs[id] {
						t.Fatalf("starved recv: result %d in buffer %d (provided %d)", c.Result, c.Buf, b)
					}
					got = append(got, id)
				}
			}
		}
		if len(got) != 1 {
			t.Fatalf("one buffer provided completed %d recvs", len(got))
		}
		delete(recvs, got[0])
	}
}

// TestWaitsAfterCalls: when the completion ring is full, a call's
// completion is published before the waits' that were ready earlier, so
// that waits (which hold no slot) never take a call's room.
func TestWaitsAfterCalls(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{})
	g := netproctest.Geometry
	g.CQEntries = 8
	desc, files := srv.Channel(t, "full", g)
	a := openRaw(t, desc, files)
	_, conn, cl := a.connected()
	recv := a.submit(proto.Submission{Op: proto.OpRecv, Handle: conn, Flags: proto.FlagSelect, Len: 16})
	a.provide()
	// Fill the completion ring with nops, unreaped.
	for range g.CQEntries {
		a.submit(proto.Submission{Op: proto.OpNop})
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		n, _ := a.end.Complete.Peek(a.end.Complete.Capacity())
		return n == int(g.CQEntries)
	}, "the nops' completions to fill the ring")
	cl.Write([]byte("late")) // the recv completes, and finds no room
	testkit.Eventually(t, 5*time.Second, func() bool {
		_, waits := a.queued(srv)
		return waits == 1
	}, "the recv's completion queued in netproc")
	nop := a.submit(proto.Submission{Op: proto.OpNop}) // a call, after it
	testkit.Eventually(t, 5*time.Second, func() bool {
		calls, _ := a.queued(srv)
		return calls == 1
	}, "the nop's completion queued in netproc")
	// Reap the nops, one ring at a time, and note the order of the rest.
	var order []uint64
	testkit.Until(5*time.Second, func() bool {
		n, _ := a.end.Complete.Peek(a.end.Complete.Capacity())
		for i := range n {
			c, _ := proto.DecodeCompletion(a.end.Complete.Slot(i))
			if c.UserData == recv || c.UserData == nop {
				order = append(order, c.UserData)
			}
		}
		a.end.Complete.Release(n)
		return len(order) >= 2
	})
	if len(order) != 2 || order[0] != nop || order[1] != recv {
		t.Fatalf("completions after the ring emptied: %v; want the call (%d), then the wait (%d)", order, nop, recv)
	}
}

// TestMemoryLimit: a new connection past the app's memory limit is
// refused with ENOBUFS, queued connections are kept, and netproc says
// which limit, once.
func TestMemoryLimit(t *testing.T) {
	var logged testkit.SyncBuffer
	cost := int64(6144) // the kernel backend's stated cost of a socket
	srv := netproctest.Start(t, netproc.Options{
		Limits: netproc.Limits{Memory: 3 * cost},
		Log:    slog.New(slog.NewTextHandler(&logged, nil)),
	})
	a := newRawApp(t, srv, "fat")
	ln, bound, _ := a.listen("127.0.0.1:0", 0) // one socket
	for i := range 3 {
		cl, err := net.Dial("tcp", bound.String())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		c, _ := a.call(proto.Submission{Op: proto.OpAccept, Handle: ln})
		if i < 2 && c.Result <= 0 {
			t.Fatalf("accept %d within the limit: %v", i, errOf(c))
		}
		if i == 2 {
			wantErr(t, "accept past the memory limit", c, syscall.ENOBUFS)
		}
	}
	c, _ := a.call(proto.Submission{Op: proto.OpAccept, Handle: ln})
	wantErr(t, "accept past the memory limit again", c, syscall.ENOBUFS)
	if n := strings.Count(logged.String(), "limit=memory"); n != 1 {
		t.Errorf("the memory limit was logged %d times, want once:\n%s", n, logged.String())
	}
	if !strings.Contains(logged.String(), "max_memory") {
		t.Errorf("the log does not name the config key:\n%s", logged.String())
	}
}

var _ = netip.AddrPort{}

// TestListenGrants: an app with grants listens only where they let it:
// never on a port below 1024 that no grant names (EACCES, as the kernel
// answers a process without CAP_NET_BIND_SERVICE), and netproc says so.
func TestListenGrants(t *testing.T) {
	var logged testkit.SyncBuffer
	srv := netproctest.Start(t, netproc.Options{Log: slog.New(slog.NewTextHandler(&logged, nil))})
	open := func(grants *proto.ChannelGrants) *rawApp {
		desc, files := srv.ChannelFor(t, proto.ChannelDesc{App: "granted", Grants: grants}, netproctest.Geometry)
		return openRaw(t, desc, files)
	}
	plain, loopOnly := open(&proto.ChannelGrants{}), open(&proto.ChannelGrants{Listen: []string{"127.0.0.1:*"}})
	for _, tt := range []struct {
		who  *rawApp
		addr string
		want syscall.Errno
	}{
		{plain, "127.0.0.1:0", 0},
		{plain, "127.0.0.1:80", syscall.EACCES},
		{plain, "127.0.0.1:1023", syscall.EACCES},
		{loopOnly, "127.0.0.1:0", 0},
		{loopOnly, "0.0.0.0:0", syscall.EACCES},
		{loopOnly, "127.0.0.1:443", syscall.EACCES},
	} {
		_, _, c := tt.who.listen(tt.addr, 0)
		if c.Err() != nil && tt.want == 0 || tt.want != 0 && c.Err() != tt.want {
			t.Errorf("listen on %s: %v, want %v", tt.addr, c.Err(), tt.want)
		}
	}
	if !strings.Contains(logged.String(), "may not listen there") {
		t.Errorf("the refusal was not logged:\n%s", logged.String())
	}
}

// capped is the kernel backend with a capacity of a test's choosing.
type capped struct {
	*kernel.Backend
	n int
}

func (c capped) Capacity() int { return c.n }

// TestSocketShares: the backend's sockets are shared out so that one app
// cannot take them all: past what is shared, a greedy app gets EMFILE
// (and netproc says why), and another app still gets its guaranteed
// share.
func TestSocketShares(t *testing.T) {
	var logged testkit.SyncBuffer
	// Two apps may attach, each guaranteed 64 of 200: 72 are shared.
	srv := netproctest.Start(t, netproc.Options{Backend: capped{kernel.New(), 200}, MaxApps: 2,
		Log: slog.New(slog.NewTextHandler(&logged, nil))})
	greedy, modest := newRawApp(t, srv, "greedy"), newRawApp(t, srv, "modest")
	n := 0
	for ; n < 300; n++ {
		if _, _, c := greedy.listen("127.0.0.1:0", 0); c.Result < 0 {
			wantErr(t, "a listener past the greedy app's share", c, syscall.EMFILE)
			break
		}
	}
	if n != 136 {
		t.Errorf("the greedy app got %d sockets of 200, want 136 (its 64 and the 72 shared)", n)
	}
	if !strings.Contains(logged.String(), "netproc's sockets are all taken") {
		t.Errorf("the refusal was not logged:\n%s", logged.String())
	}
	for i := range 64 {
		if _, _, c := modest.listen("127.0.0.1:0", 0); c.Result < 0 {
			t.Fatalf("the modest app's socket %d of its guaranteed 64: %v", i+1, errOf(c))
		}
	}
	if _, _, c := modest.listen("127.0.0.1:0", 0); c.Result >= 0 {
		t.Error("the modest app got a 65th socket: the capacity is passed")
	}
}
