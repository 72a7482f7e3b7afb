package netproc_test

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/netproc"
	"saturn/netproc/netproctest"
	"saturn/proto"
)

func errOf(c proto.Completion) error { return c.Err() }

func wantErr(t *testing.T, what string, c proto.Completion, want syscall.Errno) {
	t.Helper()
	if c.Err() != want {
		t.Errorf("%s: result %d (%v), want %v", what, c.Result, c.Err(), want)
	}
}

// TestServeConnection listens, accepts a connection from Go's net, echoes
// through netproc, and checks the addresses netproc reports.
func TestServeConnection(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{})
	a := newRawApp(t, srv, "echo")
	ln, bound, c := a.listen("127.0.0.1:0", 0)
	if c.Result < 0 {
		t.Fatalf("listen: %v", errOf(c))
	}
	if !bound.Addr().IsLoopback() || bound.Port() == 0 {
		t.Fatalf("bound to %v", bound)
	}
	client, err := net.Dial("tcp", bound.String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	c, pair := a.call(proto.Submission{Op: proto.OpAccept, Handle: ln, Buf: a.buf(nil), Len: proto.AddrPairSize})
	if c.Result <= 0 {
		t.Fatalf("accept: %v", errOf(c))
	}
	conn := uint64(c.Result)
	local, peer, err := proto.DecodeAddrPair(pair)
	if err != nil || local != bound || peer.String() != client.LocalAddr().String() {
		t.Fatalf("accept says local %v peer %v (%v); want %v and %v", local, peer, err, bound, client.LocalAddr())
	}

	// A recv waits for data; the client's write completes it.
	recv := a.submit(proto.Submission{Op: proto.OpRecv, Handle: conn, Buf: a.buf(nil), Len: 100})
	if _, ok := a.waitOK(recv, 50*time.Millisecond); ok {
		t.Fatal("recv completed with no data sent")
	}
	client.Write([]byte("hello, netproc"))
	c = a.wait(recv, 5*time.Second)
	if got := a.release(c.Buf)[:max(c.Result, 0)]; string(got) != "hello, netproc" {
		t.Fatalf("recv: %d %q", c.Result, got)
	}
	c, _ = a.call(proto.Submission{Op: proto.OpSend, Handle: conn, Buf: a.buf([]byte("back at you")), Len: 11})
	if c.Result != 11 {
		t.Fatalf("send: %d %v", c.Result, errOf(c))
	}
	got := make([]byte, 11)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "back at you" {
		t.Fatalf("client read %q %v", got, err)
	}
	c, data := a.call(proto.Submission{Op: proto.OpGetpeername, Handle: conn, Buf: a.buf(nil), Len: proto.SockAddrSize})
	if p, _ := proto.DecodeSockAddr(data); c.Result != proto.SockAddrSize || p != peer {
		t.Fatalf("getpeername: %d %v", c.Result, p)
	}
	// Shut down our side: the client sees the end of the stream, and our
	// recv sees its end after it closes.
	if c, _ := a.call(proto.Submission{Op: proto.OpShutdown, Handle: conn, Args: [3]uint64{proto.ShutWrite}}); c.Result != 0 {
		t.Fatalf("shutdown: %v", errOf(c))
	}
	if n, err := client.Read(got); n != 0 || err != io.EOF {
		t.Fatalf("client after shutdown: %d %v", n, err)
	}
	client.Close()
	c, _ = a.call(proto.Submission{Op: proto.OpRecv, Handle: conn, Buf: a.buf(nil), Len: 100})
	if c.Result != 0 {
		t.Fatalf("recv after the peer closed: %d %v", c.Result, errOf(c))
	}
	for _, h := range []uint64{conn, ln} {
		if c, _ := a.call(proto.Submission{Op: proto.OpClose, Handle: h}); c.Result != 0 {
			t.Fatalf("close: %v", errOf(c))
		}
	}
	c, _ = a.call(proto.Submission{Op: proto.OpRecv, Handle: conn, Buf: a.buf(nil), Len: 100})
	wantErr(t, "recv after close", c, syscall.EBADF)
}

// TestConnect dials out through netproc, to IPv4 and (where the host has
// it) IPv6, and checks options, names and a refused connect.
func TestConnect(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{})
	a := newRawApp(t, srv, "dialer")
	for _, network := range []string{"tcp4", "tcp6"} {
		host := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
		peer, err := net.Listen(network, host)
		if err != nil {
			t.Logf("%s: no listener (%v): skipped", network, err)
			continue
		}
		defer peer.Close()
		to := peer.Addr().String()
		c, pair := a.call(proto.Submission{Op: proto.OpConnect, Buf: a.buf(sockAddr(t, to)), Len: proto.AddrPairSize, Args: [3]uint64{uint64(5 * time.Second)}})
		if c.Result <= 0 {
			t.Fatalf("%s connect: %v", network, errOf(c))
		}
		conn := uint64(c.Result)
		local, remote, _ := proto.DecodeAddrPair(pair)
		if remote.String() != to || !local.IsValid() {
			t.Fatalf("%s connect reports %v → %v", network, local, remote)
		}
		server, err := peer.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if server.RemoteAddr().String() != local.String() {
			t.Errorf("%s: the peer sees %v, netproc says %v", network, server.RemoteAddr(), local)
		}
		for _, opt := range []struct {
			o proto.SockOpt
			v int64
		}{{proto.OptNoDelay, 0}, {proto.OptKeepAlive, 1}, {proto.OptKeepAliveIdle, 30}, {proto.OptRecvBuffer, 1 << 16}, {proto.OptLinger, -1}} {
			if c, _ := a.call(proto.Submission{Op: proto.OpSetsockopt, Handle: conn, Args: [3]uint64{uint64(opt.o), uint64(opt.v)}}); c.Result != 0 {
				t.Errorf("setsockopt %v=%d: %v", opt.o, opt.v, errOf(c))
			}
		}
		a.call(proto.Submission{Op: proto.OpSend, Handle: conn, Buf: a.buf([]byte("ping")), Len: 4})
		buf := make([]byte, 4)
		if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("%s: the peer read %q %v", network, buf, err)
		}
		server.Close()
		a.call(proto.Submission{Op: proto.OpClose, Handle: conn})
	}
	// A port nobody listens on refuses.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	c, _ := a.call(proto.Submission{Op: proto.OpConnect, Buf: a.buf(sockAddr(t, closed)), Len: proto.SockAddrSize})
	wantErr(t, "connect to a closed port", c, syscall.ECONNREFUSED)
	// The harness keeps apps on loopback.
	c, _ = a.call(proto.Submission{Op: proto.OpConnect, Buf: a.buf(sockAddr(t, "192.0.2.1:80")), Len: proto.SockAddrSize})
	wantErr(t, "connect off loopback", c, syscall.EACCES)
}

// TestDualStack: a wildcard IPv6 listener without ListenV6Only takes IPv4
// clients too, and reports them as IPv4.
func TestDualStack(t *testing.T) {
	probe, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 on this host: %v", err)
	}
	probe.Close()
	srv := netproctest.Start(t, netproc.Options{})
	a := newRawApp(t, srv, "dual")
	ln, bound, c := a.listen("[::]:0", 0)
	if c.Result < 0 {
		t.Fatalf("listen: %v", errOf(c))
	}
	for _, host := range []string{"127.0.0.1", "::1"} {
		client, err := net.Dial("tcp", net.JoinHostPort(host, itoa(bound.Port())))
		if err != nil {
			t.Fatalf("dial %s: %v", host, err)
		}
		c, pair := a.call(proto.Submission{Op: proto.OpAccept, Handle: ln, Buf: a.buf(nil), Len: proto.AddrPairSize})
		_, peer, _ := proto.DecodeAddrPair(pair)
		if c.Result <= 0 || peer.Addr() != netip.MustParseAddr(host) {
			t.Errorf("accept from %s: %v, peer %v", host, errOf(c), peer)
		}
		client.Close()
	}
	// With ListenV6Only, IPv4 is refused.
	_, bound6, c := a.listen("[::]:0", proto.ListenV6Only)
	if c.Result < 0 {
		t.Fatalf("listen v6only: %v", errOf(c))
	}
	if cl, err := net.Dial("tcp4", "127.0.0.1:"+itoa(bound6.Port())); err == nil {
		cl.Close()
		t.Error("a v6-only listener accepted IPv4")
	}
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

// TestBadEntries: every malformed or foreign entry gets an error
// completion, and the channel keeps working.
func TestBadEntries(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{})
	a := newRawApp(t, srv, "hostile")
	other := newRawApp(t, srv, "victim")
	ln, _, _ := a.listen("127.0.0.1:0", 0)
	victimLn, _, _ := other.listen("127.0.0.1:0", 0)
	bs := uint32(netproctest.Geometry.BufferSize)
	cases := []struct {
		name string
		sub  func() proto.Submission
		want syscall.Errno
	}{
		{"unknown handle", func() proto.Submission { return proto.Submission{Op: proto.OpAccept, Handle: 12345} }, syscall.EBADF},
		{"another app's handle", func() proto.Submission { return proto.Submission{Op: proto.OpAccept, Handle: victimLn} }, syscall.EBADF},
		{"handle of an earlier netproc", func() proto.Submission {
			return proto.Submission{Op: proto.OpClose, Handle: ln &^ (1<<63 - 1<<48)} // epoch 0 is before any
		}, syscall.EBADF},
		{"buffer index out of range", func() proto.Submission {
			return proto.Submission{Op: proto.OpListen, Buf: 9999, Len: proto.SockAddrSize}
		}, syscall.EFAULT},
		{"length past the buffer", func() proto.Submission {
			return proto.Submission{Op: proto.OpListen, Buf: a.buf(sockAddr(t, "127.0.0.1:0")), Len: bs + 1}
		}, syscall.EFAULT},
		{"listen without an address", func() proto.Submission { return proto.Submission{Op: proto.OpListen, Buf: proto.NoBuffer} }, syscall.EINVAL},
		{"listen on garbage", func() proto.Submission {
			return proto.Submission{Op: proto.OpListen, Buf: a.buf([]byte{9, 9, 9}), Len: proto.SockAddrSize}
		}, syscall.EINVAL},
		{"listen with unknown flags", func() proto.Submission {
			return proto.Submission{Op: proto.OpListen, Buf: a.buf(sockAddr(t, "127.0.0.1:0")), Len: proto.SockAddrSize, Args: [3]uint64{0, 1 << 40}}
		}, syscall.EINVAL},
		{"listen with a huge backlog", func() proto.Submission {
			return proto.Submission{Op: proto.OpListen, Buf: a.buf(sockAddr(t, "127.0.0.1:0")), Len: proto.SockAddrSize, Args: [3]uint64{1 << 40}}
		}, syscall.EINVAL},
		{"connect to port 0", func() proto.Submission {
			return proto.Submission{Op: proto.OpConnect, Buf: a.buf(sockAddr(t, "127.0.0.1:0")), Len: proto.SockAddrSize}
		}, syscall.EINVAL},
		{"recv on a listener", func() proto.Submission {
			return proto.Submission{Op: proto.OpRecv, Handle: ln, Buf: a.buf(nil), Len: 10}
		}, syscall.ENOTCONN},
		{"recv without a buffer", func() proto.Submission { return proto.Submission{Op: proto.OpRecv, Handle: ln, Buf: proto.NoBuffer} }, syscall.ENOTCONN},
		{"send on a listener", func() proto.Submission {
			return proto.Submission{Op: proto.OpSend, Handle: ln, Buf: a.buf([]byte("x")), Len: 1}
		}, syscall.ENOTCONN},
		{"getpeername of a listener", func() proto.Submission {
			return proto.Submission{Op: proto.OpGetpeername, Handle: ln, Buf: a.buf(nil), Len: proto.SockAddrSize}
		}, syscall.ENOTCONN},
		{"getsockname into a short buffer", func() proto.Submission {
			return proto.Submission{Op: proto.OpGetsockname, Handle: ln, Buf: a.buf(nil), Len: 3}
		}, syscall.EINVAL},
		{"unknown socket option", func() proto.Submission {
			return proto.Submission{Op: proto.OpSetsockopt, Handle: ln, Args: [3]uint64{999, 1}}
		}, syscall.ENOPROTOOPT},
		{"socket buffer past the limit", func() proto.Submission {
			return proto.Submission{Op: proto.OpSetsockopt, Handle: ln, Args: [3]uint64{uint64(proto.OptRecvBuffer), 1 << 40}}
		}, syscall.ENOBUFS},
		{"negative option", func() proto.Submission {
			return proto.Submission{Op: proto.OpSetsockopt, Handle: ln, Args: [3]uint64{uint64(proto.OptKeepAliveIdle), ^uint64(0)}}
		}, syscall.EINVAL},
		{"shutdown of a listener", func() proto.Submission {
			return proto.Submission{Op: proto.OpShutdown, Handle: ln, Args: [3]uint64{7}}
		}, syscall.ENOTCONN},
		{"cancel of nothing", func() proto.Submission { return proto.Submission{Op: proto.OpCancel, Args: [3]uint64{424242}} }, syscall.ENOENT},
		{"a disk operation", func() proto.Submission { return proto.Submission{Op: proto.OpFsync, Handle: ln} }, syscall.EOPNOTSUPP},
		{"listen off loopback", func() proto.Submission {
			return proto.Submission{Op: proto.OpListen, Buf: a.buf(sockAddr(t, "192.0.2.1:0")), Len: proto.SockAddrSize}
		}, syscall.EACCES},
	}
	for _, tc := range cases {
		c, _ := a.call(tc.sub())
		wantErr(t, tc.name, c, tc.want)
	}
	// Bytes that are not an entry at all: the loop answers EINVAL.
	a.nextID++
	n, _ := a.end.Submit.Reserve(1)
	if n != 1 {
		t.Fatal("ring full")
	}
	slot := a.end.Submit.Slot(0)
	for i := range slot {
		slot[i] = 0xff
	}
	a.end.Submit.Publish(1)
	c := a.wait(^uint64(0), 5*time.Second)
	wantErr(t, "garbage entry", c, syscall.EINVAL)
	// Every buffer came back, and both apps still work.
	if free := a.end.Pool.FreeCount(); free != a.end.Pool.Len()-1 { // buffer 0 is rawApp's
		t.Errorf("%d of %d buffers free after the bad entries", free, a.end.Pool.Len())
	}
	for _, x := range []*rawApp{a, other} {
		if c, _ := x.call(proto.Submission{Op: proto.OpNop, Buf: proto.NoBuffer}); c.Result != 0 {
			t.Fatalf("nop after bad entries: %v", errOf(c))
		}
	}
	if _, _, c := other.listen("127.0.0.1:0", 0); c.Result < 0 {
		t.Fatalf("the other app cannot listen: %v", errOf(c))
	}
}

// TestLimits: past each limit an operation fails with its errno, and
// nothing else changes.
func TestLimits(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{Limits: netproc.Limits{Sockets: 3, Pending: 4, Buffers: 2}})
	a := newRawApp(t, srv, "greedy")
	ln, bound, _ := a.listen("127.0.0.1:0", 0)
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	var conns []uint64
	for range 2 {
		cl, err := net.Dial("tcp", bound.String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cl)
		c, _ := a.call(proto.Submission{Op: proto.OpAccept, Handle: ln})
		if c.Result <= 0 {
			t.Fatalf("accept: %v", errOf(c))
		}
		conns = append(conns, uint64(c.Result))
	}
	// Three sockets: a fourth is refused, and its connection stays queued.
	cl, _ := net.Dial("tcp", bound.String())
	clients = append(clients, cl)
	c, _ := a.call(proto.Submission{Op: proto.OpAccept, Handle: ln})
	wantErr(t, "accept past the socket limit", c, syscall.EMFILE)
	_, _, c = a.listen("127.0.0.1:0", 0)
	wantErr(t, "listen past the socket limit", c, syscall.EMFILE)

	// Two waiting recvs hold two buffers: a third with a buffer is
	// refused, one that polls is not; a fifth waiting op is refused.
	var waiting []uint64
	for _, conn := range conns {
		waiting = append(waiting, a.submit(proto.Submission{Op: proto.OpRecv, Handle: conn, Buf: a.buf(nil), Len: 10}))
	}
	c, _ = a.call(proto.Submission{Op: proto.OpRecv, Handle: conns[0], Buf: a.buf(nil), Len: 10})
	wantErr(t, "recv past the buffer limit", c, syscall.ENOBUFS)
	waiting = append(waiting, a.submit(proto.Submission{Op: proto.OpRecv, Handle: conns[0], Buf: proto.NoBuffer, Args: [3]uint64{uint64(proto.RecvPoll)}}))
	waiting = append(waiting, a.submit(proto.Submission{Op: proto.OpRecv, Handle: conns[1], Buf: proto.NoBuffer, Args: [3]uint64{uint64(proto.RecvPoll)}}))
	c, _ = a.call(proto.Submission{Op: proto.OpRecv, Handle: conns[1], Buf: proto.NoBuffer, Args: [3]uint64{uint64(proto.RecvPoll)}})
	wantErr(t, "a fifth waiting operation", c, syscall.ENOBUFS)
	// Cancelling one frees its place.
	if c, _ := a.call(proto.Submission{Op: proto.OpCancel, Args: [3]uint64{waiting[0]}}); c.Result != 0 {
		t.Fatalf("cancel: %v", errOf(c))
	}
	if c := a.wait(waiting[0], time.Second); c.Err() != syscall.ECANCELED {
		t.Fatalf("cancelled recv: %v", errOf(c))
	}
	// Data completes the rest, in order: on the first connection the poll;
	// on the second the buffered recv takes the data, and the poll behind
	// it waits for more.
	clients[0].Write([]byte("x"))
	clients[1].Write([]byte("y"))
	for _, id := range waiting[1:3] {
		if c := a.wait(id, 5*time.Second); c.Result < 0 {
			t.Fatalf("waiting recv: %v", errOf(c))
		}
	}
	if _, ok := a.waitOK(waiting[3], 50*time.Millisecond); ok {
		t.Fatal("a poll completed on a drained socket")
	}
	clients[1].Write([]byte("z"))
	if c := a.wait(waiting[3], 5*time.Second); c.Result != 0 {
		t.Fatalf("poll: %d %v", c.Result, errOf(c))
	}
}

// TestConnectTimeoutAndCancel connects to a listener whose backlog is full,
// so that the SYN goes unanswered: a timeout ends it with ETIMEDOUT, a
// cancel with ECANCELED.
func TestConnectTimeoutAndCancel(t *testing.T) {
	full := testkit.FullListener(t)
	srv := netproctest.Start(t, netproc.Options{})
	a := newRawApp(t, srv, "impatient")
	start := time.Now()
	c, _ := a.call(proto.Submission{Op: proto.OpConnect, Buf: a.buf(sockAddr(t, full)), Len: proto.SockAddrSize, Args: [3]uint64{uint64(100 * time.Millisecond)}})
	wantErr(t, "connect with a timeout", c, syscall.ETIMEDOUT)
	if d := time.Since(start); d < 90*time.Millisecond || d > 10*time.Second { // the upper bound: a timeout that fires at all, on a loaded machine
		t.Errorf("timed out after %v, asked for 100ms", d)
	}
	id := a.submit(proto.Submission{Op: proto.OpConnect, Buf: a.buf(sockAddr(t, full)), Len: proto.SockAddrSize})
	waitWaiting(t, srv, "impatient", 1) // the connect, to be cancelled
	if c, _ := a.call(proto.Submission{Op: proto.OpCancel, Args: [3]uint64{id}}); c.Result != 0 {
		t.Fatalf("cancel: %v", errOf(c))
	}
	c = a.wait(id, time.Second)
	wantErr(t, "cancelled connect", c, syscall.ECANCELED)
	a.release(c.Buf)
	var socks int
	srv.Do(func() { socks = srv.Handler.Sockets("impatient") })
	if socks != 0 {
		t.Errorf("%d sockets left after failed connects", socks)
	}
}

// TestDropClosesSockets: when an app goes away its connections close at
// once (the peer sees the end of the stream), and its waiting operations
// are simply dropped.
func TestDropClosesSockets(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{Linger: -1})
	a := newRawApp(t, srv, "mortal")
	_, conn, client := a.connected()
	a.submit(proto.Submission{Op: proto.OpRecv, Handle: conn, Buf: a.buf(nil), Len: 10})
	start := time.Now()
	srv.Drop(a.desc.ID)
	client.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the peer of a dropped app's connection read %d, %v", n, err)
	}
	t.Logf("the peer saw the end %v after the drop", time.Since(start))
	// Without linger the listener is gone too.
	if cl, err := net.Dial("tcp", client.RemoteAddr().String()); err == nil {
		cl.Close()
		t.Fatal("the dropped app's listener still accepts")
	}
}

// TestListenerOutlivesApp: a dropped app's listener keeps queueing; the
// app's next incarnation adopts it and accepts what queued; nobody else
// can take the port meanwhile; unclaimed, it closes after the linger.
func TestListenerOutlivesApp(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{Linger: 300 * time.Millisecond})
	first := newRawApp(t, srv, "phoenix")
	firstLn, bound, _ := first.listen("127.0.0.1:0", 0)
	addr := bound.String()
	first.submit(proto.Submission{Op: proto.OpAccept, Handle: firstLn})
	waitWaiting(t, srv, "phoenix", 1) // the accept, waiting when the app goes
	srv.Drop(first.desc.ID)

	client, err := net.Dial("tcp", addr) // queued while no incarnation runs
	if err != nil {
		t.Fatalf("dial while the app is gone: %v", err)
	}
	defer client.Close()
	client.Write([]byte("queued"))

	thief := newRawApp(t, srv, "thief")
	if _, _, c := thief.listen(addr, 0); c.Err() != syscall.EADDRINUSE {
		t.Fatalf("another app listening on the kept address: %v", errOf(c))
	}
	// Under the gone app's name but as another user: not its listener,
	// nor the connection queued on it.
	desc, files := srv.ChannelAs(t, "phoenix", 61999, netproctest.Geometry)
	impostor := openRaw(t, desc, files)
	if _, _, c := impostor.listen(addr, 0); c.Err() != syscall.EADDRINUSE {
		t.Fatalf("an impostor under the app's name, as another user: %v (aux %d), want EADDRINUSE", errOf(c), c.Aux)
	}
	second := newRawApp(t, srv, "phoenix")
	second.adoptQueued(bound, "queued")

	// Gone again and not back in time: the port is released.
	srv.Drop(second.desc.ID)
	testkit.Eventually(t, 5*time.Second, func() bool {
		kept := 0
		srv.Do(func() { kept = srv.Handler.Kept() })
		return kept == 0
	}, "the listener kept for the app to close after the linger (300ms)")
	if _, _, c := thief.listen(addr, 0); c.Result < 0 {
		t.Fatalf("the port is still held after the linger: %v", errOf(c))
	}
}

// TestCloseAfterSends: sends queued behind a full socket still go out
// after OpShutdown and OpClose, in order, as with a kernel socket; the
// close completes at once.
func TestCloseAfterSends(t *testing.T) {
	srv := netproctest.Start(t, netproc.Options{})
	a := newRawApp(t, srv, "sender")
	_, conn, client := a.connected()
	a.call(proto.Submission{Op: proto.OpSetsockopt, Handle: conn, Args: [3]uint64{uint64(proto.OptSendBuffer), 4096}})
	// Queue more than the socket holds while the client does not read.
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	var sends []uint64
	for range 16 {
		sends = append(sends, a.submit(proto.Submission{Op: proto.OpSend, Handle: conn, Buf: a.buf(chunk), Len: uint32(len(chunk))}))
	}
	shut := a.submit(proto.Submission{Op: proto.OpShutdown, Handle: conn, Args: [3]uint64{proto.ShutWrite}})
	if _, ok := a.waitOK(shut, 50*time.Millisecond); ok {
		t.Fatal("the shutdown overtook the queued sends")
	}
	if c, _ := a.call(proto.Submission{Op: proto.OpClose, Handle: conn}); c.Result != 0 {
		t.Fatalf("close: %v", errOf(c))
	}
	var socks int
	srv.Do(func() { socks = srv.Handler.Sockets("sender") })
	if socks != 2 { // the listener, and the closed socket still sending
		t.Errorf("%d sockets counted while the closed one sends", socks)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil || len(got) != 16*len(chunk) {
		t.Fatalf("the peer read %d bytes (%v), want %d then the end", len(got), err, 16*len(chunk))
	}
	for _, id := range append(sends, shut) {
		if c := a.wait(id, 5*time.Second); c.Result < 0 {
			t.Fatalf("queued op %d: %v", id, errOf(c))
		}
	}
	testkit.Until(5*time.Second, func() bool {
		srv.Do(func() { socks = srv.Handler.Sockets("sender") })
		return socks == 1
	})
	if socks != 1 {
		t.Errorf("the closed socket is still held after sending all")
	}
}

// waitWaiting waits until the app called name has n operations waiting in
// netproc.
func waitWaiting(t *testing.T, srv *netproctest.Server, name string, n int) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, func() bool {
		var ops int
		srv.Do(func() { ops, _ = srv.Handler.Waiting(name) })
		return ops == n
	}, "%d operations of %s waiting in netproc", n, name)
}
