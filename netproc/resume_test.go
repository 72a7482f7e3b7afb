package netproc_test

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"saturn/netproc"
	"saturn/netproc/backend"
	"saturn/netproc/netproctest"
	"saturn/proto"
)

// streamBackend is a backend whose connections "survive" (Resumer) and
// whose one connection keeps what it is sent; everything runs on the loop.
type streamBackend struct {
	conn *streamConn
}

func (b *streamBackend) Name() string            { return "stream" }
func (b *streamBackend) Start(backend.Env) error { return nil }
func (b *streamBackend) Info() map[string]string { return nil }
func (b *streamBackend) Close() error            { return nil }
func (b *streamBackend) Resuming() bool          { return true }
func (b *streamBackend) Resume(uint64, func(uint64) backend.Notify) []backend.Resumed {
	return nil
}
func (b *streamBackend) Listen(netip.AddrPort, backend.ListenOptions, backend.Notify) (backend.Listener, error) {
	return nil, syscall.EOPNOTSUPP
}
func (b *streamBackend) Connect(addr netip.AddrPort, notify backend.Notify) (backend.Conn, error) {
	b.conn = &streamConn{peer: addr}
	notify(backend.Writable)
	return b.conn, nil
}

var (
	_ backend.Resumer    = (*streamBackend)(nil)
	_ backend.StreamConn = (*streamConn)(nil)
)

type streamConn struct {
	peer          netip.AddrPort
	sent          []byte
	owner, handle uint64
	closed, shut  bool
}

func (c *streamConn) LocalAddr() (netip.AddrPort, error) {
	return netip.MustParseAddrPort("127.0.0.1:1"), nil
}
func (c *streamConn) PeerAddr() (netip.AddrPort, error)    { return c.peer, nil }
func (c *streamConn) SetOption(proto.SockOpt, int64) error { return nil }
func (c *streamConn) Close() error                         { c.closed = true; return nil }
func (c *streamConn) ConnectResult() error                 { return nil }
func (c *streamConn) Read([]byte) (int, error)             { return 0, syscall.EAGAIN }
func (c *streamConn) Shutdown(int) error                   { c.shut = true; return nil }
func (c *streamConn) Write(b []byte) (int, error)          { c.sent = append(c.sent, b...); return len(b), nil }
func (c *streamConn) SetOwner(owner, handle uint64)        { c.owner, c.handle = owner, handle }
func (c *streamConn) Sent(uint64) uint64                   { return uint64(len(c.sent)) }
func (c *streamConn) ReadAt([]byte, uint64) (int, error)   { return 0, syscall.EAGAIN }
func (c *streamConn) Release(uint64)                       {}
func (c *streamConn) Closing(uint64)                       {}

// TestStreamReplay: with a backend that resumes connections, sends carry
// their stream offsets (proto.FlagStream) and the handler takes each byte
// exactly once: a send ahead of the stream waits for the one before it (a
// replay arrives behind the entries the dead incarnation never took), a
// replayed send's bytes already taken are skipped, and a close that
// promises more bytes than are in waits for them, keeping the handle.
func TestStreamReplay(t *testing.T) {
	be := &streamBackend{}
	srv := netproctest.Start(t, netproc.Options{Backend: be})
	a := newRawApp(t, srv, "app")
	if caps := a.region.ServerCaps(); caps&1 == 0 {
		t.Fatalf("region caps %#x: netproc does not say it resumes", caps)
	}
	h, conn := streamConnect(t, srv, a, be)
	sent := func() string {
		var s string
		srv.Do(func() { s = string(conn.sent) })
		return s
	}
	send := func(off uint64, data string) uint64 {
		return a.submit(proto.Submission{Op: proto.OpSend, Flags: proto.FlagStream, Offset: off, Handle: h, Buf: a.buf([]byte(data)), Len: uint32(len(data))})
	}

	later := send(4, "efgh")
	if _, ok := a.waitOK(later, 50*time.Millisecond); ok {
		t.Fatal("a send ahead of the stream completed")
	}
	first := send(0, "abcd")
	for _, id := range []uint64{first, later} {
		if c := a.wait(id, 5*time.Second); c.Result != 4 {
			t.Fatalf("send: %d %v", c.Result, errOf(c))
		}
	}
	if c := a.wait(send(2, "cdefghij"), 5*time.Second); c.Result != 8 {
		t.Fatalf("overlapping replay: %d %v", c.Result, errOf(c))
	}
	if got := sent(); got != "abcdefghij" {
		t.Fatalf("the connection got %q", got)
	}
	var owner, handle uint64
	srv.Do(func() { owner, handle = conn.owner, conn.handle })
	if owner == 0 || handle != h {
		t.Errorf("owner %d, handle %#x; want the channel's, %#x", owner, handle, h)
	}

	// Close promising 14 bytes: it answers at once, and the socket stays
	// for the replay of the send before it.
	if c, _ := a.call(proto.Submission{Op: proto.OpClose, Flags: proto.FlagStream, Handle: h, Args: [3]uint64{14}}); c.Result != 0 {
		t.Fatalf("close: %v", errOf(c))
	}
	var closed bool
	srv.Do(func() { closed = conn.closed })
	if closed {
		t.Fatal("closed before the bytes it promised were in")
	}
	if c := a.wait(send(10, "klmn"), 5*time.Second); c.Result != 4 {
		t.Fatalf("send after the close: %d %v", c.Result, errOf(c))
	}
	srv.Do(func() { closed = conn.closed })
	if got := sent(); got != "abcdefghijklmn" || !closed {
		t.Fatalf("the connection got %q, closed %v; want all 14 bytes, then closed", got, closed)
	}
	c, _ := a.call(proto.Submission{Op: proto.OpSend, Flags: proto.FlagStream, Offset: 14, Handle: h, Buf: a.buf([]byte("x")), Len: 1})
	wantErr(t, "send after the close completed", c, syscall.EBADF)
}

// TestStreamShutdownReplay: a shutdown with its stream end waits for the
// sends before it that are still to be replayed, as a close does.
func TestStreamShutdownReplay(t *testing.T) {
	be := &streamBackend{}
	srv := netproctest.Start(t, netproc.Options{Backend: be})
	a := newRawApp(t, srv, "app")
	h, conn := streamConnect(t, srv, a, be)
	shut := a.submit(proto.Submission{Op: proto.OpShutdown, Flags: proto.FlagStream, Offset: 3, Handle: h, Args: [3]uint64{proto.ShutWrite}})
	if _, ok := a.waitOK(shut, 50*time.Millisecond); ok {
		t.Fatal("the shutdown went before the bytes it follows")
	}
	send := a.submit(proto.Submission{Op: proto.OpSend, Flags: proto.FlagStream, Offset: 0, Handle: h, Buf: a.buf([]byte("abc")), Len: 3})
	for _, id := range []uint64{send, shut} {
		if c := a.wait(id, 5*time.Second); c.Result < 0 {
			t.Fatalf("%v", errOf(c))
		}
	}
	var sent string
	var done bool
	srv.Do(func() { sent, done = string(conn.sent), conn.shut })
	if sent != "abc" || !done {
		t.Fatalf("the connection got %q, shut down %v", sent, done)
	}
}

// streamConnect connects a to a peer of the stream backend be, and returns
// the handle and the backend's connection.
func streamConnect(t *testing.T, srv *netproctest.Server, a *rawApp, be *streamBackend) (uint64, *streamConn) {
	t.Helper()
	var sa [proto.SockAddrSize]byte
	proto.EncodeSockAddr(sa[:], netip.MustParseAddrPort("127.0.0.1:9"))
	c, _ := a.call(proto.Submission{Op: proto.OpConnect, Buf: a.buf(sa[:]), Len: proto.SockAddrSize})
	if c.Result <= 0 {
		t.Fatalf("connect: %v", errOf(c))
	}
	var conn *streamConn
	srv.Do(func() { conn = be.conn })
	return uint64(c.Result), conn
}

// replayBackend is a backend whose earlier incarnation "left" one
// listener, one connection it had accepted and one still connecting, each
// with the user_data of the app's call that made it (backend.Resumed's
// Call), as usertcp's table does.
type replayBackend struct {
	streamBackend
	ln         *stubListener
	accepted   *streamConn
	connecting *connectingConn
}

const (
	replayLn, replayAccepted, replayConnecting = 0x1_0000_0000_0101, 0x1_0000_0000_0102, 0x1_0000_0000_0103
	callListen, callAccept, callConnect        = 101, 102, 103
)

func (b *replayBackend) Resume(_ uint64, notify func(uint64) backend.Notify) []backend.Resumed {
	b.connecting.notify = notify(replayConnecting)
	notify(replayLn)
	notify(replayAccepted)
	return []backend.Resumed{
		{Handle: replayLn, Listener: b.ln, Call: callListen},
		{Handle: replayAccepted, Conn: b.accepted, Call: callAccept},
		{Handle: replayConnecting, Conn: b.connecting, Call: callConnect},
	}
}

type stubListener struct{ addr netip.AddrPort }

func (l *stubListener) LocalAddr() (netip.AddrPort, error)   { return l.addr, nil }
func (l *stubListener) SetOption(proto.SockOpt, int64) error { return nil }
func (l *stubListener) Close() error                         { return nil }
func (l *stubListener) Accept(backend.Notify) (backend.Conn, netip.AddrPort, error) {
	return nil, netip.AddrPort{}, syscall.EAGAIN
}

// connectingConn is a streamConn whose connect has not finished until done.
type connectingConn struct {
	streamConn
	done   bool
	notify backend.Notify
}

func (c *connectingConn) ConnectResult() error {
	if !c.done {
		return syscall.EINPROGRESS
	}
	return nil
}

// TestReplayedCalls: a listen, an accept and a connect that the dead
// incarnation took and made a socket for, replayed by the app under the
// same user_data, are answered with that socket: the listen with the
// listener, the accept with the connection it had accepted (not the next
// one in the queue), the connect once its handshake ends. An accept of
// another call waits for a connection of its own.
func TestReplayedCalls(t *testing.T) {
	peer := netip.MustParseAddrPort("127.0.0.1:9")
	be := &replayBackend{ln: &stubListener{addr: netip.MustParseAddrPort("127.0.0.1:7000")},
		accepted: &streamConn{peer: peer}, connecting: &connectingConn{streamConn: streamConn{peer: peer}}}
	srv := netproctest.Start(t, netproc.Options{Backend: be})
	a := newRawApp(t, srv, "app")

	var sa [proto.SockAddrSize]byte
	proto.EncodeSockAddr(sa[:], be.ln.addr)
	a.nextID = callListen - 1
	if c := a.wait(a.submit(proto.Submission{Op: proto.OpListen, Buf: a.buf(sa[:]), Len: proto.SockAddrSize}), 5*time.Second); c.Result != replayLn {
		t.Fatalf("replayed listen: %#x %v, want the listener %#x", c.Result, errOf(c), replayLn)
	}
	if c := a.wait(a.submit(proto.Submission{Op: proto.OpAccept, Handle: replayLn}), 5*time.Second); c.Result != replayAccepted {
		t.Fatalf("replayed accept: %#x %v, want the connection %#x", c.Result, errOf(c), replayAccepted)
	}
	proto.EncodeSockAddr(sa[:], peer)
	connect := a.submit(proto.Submission{Op: proto.OpConnect, Buf: a.buf(sa[:]), Len: proto.SockAddrSize})
	other := a.submit(proto.Submission{Op: proto.OpAccept, Handle: replayLn})
	if c, ok := a.waitOK(connect, 50*time.Millisecond); ok {
		t.Fatalf("the replayed connect ended before its handshake: %#x %v", c.Result, errOf(c))
	}
	srv.Do(func() {
		be.connecting.done = true
		be.connecting.notify(backend.Writable)
	})
	if c := a.wait(connect, 5*time.Second); c.Result != replayConnecting {
		t.Fatalf("replayed connect: %#x %v, want the connection %#x", c.Result, errOf(c), replayConnecting)
	}
	if c, ok := a.waitOK(other, 50*time.Millisecond); ok {
		t.Fatalf("an accept of another call got %#x %v; want it waiting", c.Result, errOf(c))
	}
}
