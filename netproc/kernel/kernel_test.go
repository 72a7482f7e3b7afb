package kernel_test

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"saturn/internal/testkit"
	"saturn/netproc/backend"
	"saturn/netproc/kernel"
	"saturn/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a backend.Env driven by the test: an epoll set that poll waits on
// and dispatches, in place of netproc's loop.
type env struct {
	t    *testing.T
	epfd int
	cbs  map[int]func(uint32)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(epfd) })
	return &env{t: t, epfd: epfd, cbs: map[int]func(uint32){}}
}

func (e *env) AddFD(fd int, events uint32, cb func(uint32)) error {
	e.cbs[fd] = cb
	return unix.EpollCtl(e.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
}

func (e *env) ModFD(fd int, events uint32) error {
	return unix.EpollCtl(e.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
}

func (e *env) DelFD(fd int) error {
	delete(e.cbs, fd)
	return unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

func (e *env) AfterFunc(d time.Duration, f func()) backend.Timer {
	e.t.Fatal("the kernel backend arms no timers")
	return nil
}
func (e *env) Post(f func())        { e.t.Fatal("the kernel backend posts nothing") }
func (e *env) Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// poll dispatches what epoll has now (waiting up to 10 ms).
func (e *env) poll() {
	events := make([]unix.EpollEvent, 16)
	n, _ := unix.EpollWait(e.epfd, events, 10)
	for _, ev := range events[:max(n, 0)] {
		if cb := e.cbs[int(ev.Fd)]; cb != nil {
			cb(ev.Events)
		}
	}
}

// edges collects what a socket notified.
type edges struct{ got backend.Events }

func (s *edges) notify(e backend.Events) { s.got |= e }

// await polls until s has seen want, and clears it.
func (e *env) await(s *edges, want backend.Events, what string) {
	e.t.Helper()
	testkit.Eventually(e.t, 5*time.Second, func() bool { e.poll(); return s.got&want == want }, "%s", what)
	s.got &^= want
}

func start(t *testing.T) (*kernel.Backend, *env) {
	t.Helper()
	b, e := kernel.New(), newEnv(t)
	if err := b.Start(e); err != nil {
		t.Fatal(err)
	}
	return b, e
}

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

// A listener and a connection, end to end over loopback: readiness edges,
// EAGAIN when there is nothing, bytes both ways, a half close seen as the
// end of the stream and Hangup, closing.
func TestConnectAcceptTransfer(t *testing.T) {
	b, e := start(t)
	var lnEdges, cEdges, sEdges edges
	ln, err := b.Listen(loopback, backend.ListenOptions{}, lnEdges.notify)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr, err := ln.LocalAddr()
	if err != nil || addr.Port() == 0 || !addr.Addr().IsLoopback() {
		t.Fatalf("listener bound to %v, %v", addr, err)
	}
	if _, _, err := ln.Accept(sEdges.notify); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("Accept with nothing queued: %v, want EAGAIN", err)
	}

	c, err := b.Connect(addr, cEdges.notify)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e.await(&cEdges, backend.Writable, "the connect to finish")
	if err := c.ConnectResult(); err != nil {
		t.Fatalf("ConnectResult: %v", err)
	}
	e.await(&lnEdges, backend.Readable, "the listener to have a connection")
	s, peer, err := ln.Accept(sEdges.notify)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local, _ := c.LocalAddr()
	if peer != local {
		t.Errorf("accepted from %v; the client is %v", peer, local)
	}
	if p, err := c.PeerAddr(); err != nil || p != addr {
		t.Errorf("client's peer %v, %v; want %v", p, err, addr)
	}

	buf := make([]byte, 64)
	if _, err := s.Read(buf); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("Read with nothing sent: %v, want EAGAIN", err)
	}
	if n, err := c.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	e.await(&sEdges, backend.Readable, "the bytes to arrive")
	if n, err := s.Read(buf); n != 5 || err != nil || string(buf[:5]) != "hello" {
		t.Fatalf("Read: %d %q, %v", n, buf[:n], err)
	}

	if err := c.Shutdown(proto.ShutWrite); err != nil {
		t.Fatal(err)
	}
	e.await(&sEdges, backend.Hangup|backend.Readable, "the peer's half close")
	if n, err := s.Read(buf); n != 0 || err != nil {
		t.Fatalf("Read after the peer's shutdown: %d, %v; want the end of the stream", n, err)
	}
	// The other direction still works.
	if n, err := s.Write([]byte("bye")); n != 3 || err != nil {
		t.Fatalf("Write back: %d, %v", n, err)
	}
	e.await(&cEdges, backend.Readable, "the reply")
	if n, err := c.Read(buf); n != 3 || err != nil {
		t.Fatalf("Read the reply: %d, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

// A connect nobody answers fails with the kernel's errno through
// ConnectResult; a write to a peer that reset is EPIPE or ECONNRESET, never
// a signal.
func TestConnectRefusedAndBrokenPipe(t *testing.T) {
	b, e := start(t)
	free := netip.MustParseAddrPort(testkit.FreeLoopback(t))
	var cEdges edges
	c, err := b.Connect(free, cEdges.notify)
	if err != nil {
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatal(err)
		}
	} else {
		defer c.Close()
		e.await(&cEdges, backend.Writable, "the connect to fail")
		if err := c.ConnectResult(); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("ConnectResult: %v, want ECONNREFUSED", err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c2, err := b.Connect(netip.MustParseAddrPort(ln.Addr().String()), cEdges.notify)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	peer.(*net.TCPConn).SetLinger(0)
	peer.Close() // a reset
	e.await(&cEdges, backend.Failed, "the reset")
	var werr error
	for range 3 { // the first write may still be taken before the reset is seen
		if _, werr = c2.Write([]byte("x")); werr != nil {
			break
		}
	}
	if !errors.Is(werr, syscall.EPIPE) && !errors.Is(werr, syscall.ECONNRESET) {
		t.Fatalf("Write to a reset peer: %v, want EPIPE or ECONNRESET", werr)
	}
}

// Listen's options: a busy address is EADDRINUSE, unless every listener
// asks for ReusePort; options are set or refused by number.
func TestListenOptionsAndSocketOptions(t *testing.T) {
	b, _ := start(t)
	var ed edges
	ln, err := b.Listen(loopback, backend.ListenOptions{ReusePort: true, Backlog: 8}, ed.notify)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr, _ := ln.LocalAddr()
	if _, err := b.Listen(addr, backend.ListenOptions{}, ed.notify); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("a second listen without ReusePort: %v, want EADDRINUSE", err)
	}
	ln2, err := b.Listen(addr, backend.ListenOptions{ReusePort: true}, ed.notify)
	if err != nil {
		t.Fatalf("a second listen with ReusePort: %v", err)
	}
	ln2.Close()
	for _, tc := range []struct {
		opt  proto.SockOpt
		v    int64
		want error
	}{
		{proto.OptKeepAlive, 1, nil},
		{proto.OptKeepAliveIdle, 30, nil},
		{proto.OptRecvBuffer, 1 << 16, nil},
		{proto.OptLinger, -1, nil},
		{proto.OptLinger, 5, nil},
		{proto.SockOpt(99), 1, syscall.ENOPROTOOPT},
		{proto.OptKeepAliveIdle, 1 << 40, syscall.EINVAL},
	} {
		if err := ln.SetOption(tc.opt, tc.v); !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
			t.Errorf("SetOption(%d, %d): %v, want %v", tc.opt, tc.v, err, tc.want)
		}
	}
}

func TestBackendFacts(t *testing.T) {
	b := kernel.New()
	if b.Name() != "kernel" || b.Info() != nil {
		t.Errorf("Name %q, Info %v", b.Name(), b.Info())
	}
	if c := b.Capacity(); c < 64 {
		t.Errorf("Capacity %d: at least 64", c)
	}
	if b.Costs().Socket <= 0 {
		t.Error("a socket costs nothing?")
	}
}
