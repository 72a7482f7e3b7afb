package kernel

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/netproc/backend"
	"saturn/proto"
)

// request is the i-th of the test's requests, of varying length.
func request(i int) []byte {
	return fmt.Appendf(nil, "GET /%d HTTP/1.1\r\nHost: x\r\n%s\r\n", i, bytes.Repeat([]byte("a"), i%37))
}

// sendRequest writes the i-th request from the client's end (cfd) and
// waits until the server's end (sfd) has received all the client sent.
func sendRequest(t *testing.T, cfd, sfd int, i int) {
	t.Helper()
	if _, err := unix.Write(cfd, request(i)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err1 := unix.GetsockoptTCPInfo(cfd, unix.IPPROTO_TCP, unix.TCP_INFO)
		s, err2 := unix.GetsockoptTCPInfo(sfd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if s.Bytes_received >= c.Bytes_sent {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %d: the server has %d of %d bytes", i, s.Bytes_received, c.Bytes_sent)
		}
		runtime.Gosched()
	}
}

// receive is the app's receive at off through s: it must find exactly
// the i-th request.
func receive(t *testing.T, s *socket, off uint64, i int) uint64 {
	t.Helper()
	want := request(i)
	buf := make([]byte, 4096)
	n, err := s.ReadAt(buf, off)
	if err != nil || !bytes.Equal(buf[:n], want) {
		t.Fatalf("receive %d at %d: %q, %v; want %q", i, off, buf[:max(n, 0)], err, want)
	}
	return off + uint64(n)
}

// exchange is one request: the client sends request i, the handler
// releases what the app had (off) as the receive arrives, and the receive
// at off must find exactly request i. It returns the app's new offset.
func exchange(t *testing.T, cfd int, s *socket, off uint64, i int) uint64 {
	t.Helper()
	sendRequest(t, cfd, s.fd, i)
	s.Release(off)
	return receive(t, s, off, i)
}

// exchanges is requests 0 to n-1 through s, each as exchange does, from
// offset 0. It returns the app's offset after them.
func exchanges(t *testing.T, cfd int, s *socket, n int) uint64 {
	t.Helper()
	off := uint64(0)
	for i := range n {
		off = exchange(t, cfd, s, off, i)
	}
	return off
}

// inKernel is what the kernel says has left s's socket.
func inKernel(t *testing.T, s *socket) uint64 {
	t.Helper()
	n, ok := kernelConsumed(s.fd, &record{consumed: s.consumed})
	if !ok {
		t.Fatal("kernelConsumed")
	}
	return n
}

// TestReceiveHolds: a connection's receives each find exactly their bytes
// while the bytes the app has leave the socket in batches, never more
// than holdReceives receives or holdBytes bytes behind it, and a close
// lets all of them go (a FIN, not a reset).
func TestReceiveHolds(t *testing.T) {
	cfd, sfd := tcpPair(t)
	s := &socket{b: &Backend{}, fd: sfd, rec: -1, kind: kindAccepted}
	off := uint64(0)
	discards := 0
	last := uint64(0)
	// (Until the app's next release would hold, for the close below.)
	for i := 0; i < 100 || s.held == holdReceives; i++ {
		off = exchange(t, cfd, s, off, i)
		k := inKernel(t, s)
		if k != s.consumed {
			t.Fatalf("receive %d: the kernel let %d bytes go, the socket counts %d", i, k, s.consumed)
		}
		if k != last {
			discards++
			last = k
		}
		if i >= 2 && (s.held > holdReceives || s.released-s.consumed > holdBytes) {
			t.Fatalf("receive %d: %d receives, %d bytes held", i, s.held, s.released-s.consumed)
		}
	}
	if s.peek != peekOn {
		t.Fatalf("peeks never moved to the peek offset (mode %d)", s.peek)
	}
	if discards > 100/holdReceives+3 {
		t.Errorf("%d discards for 100 receives, want about %d", discards, 100/holdReceives+1)
	}
	s.Release(off)
	if s.released == s.consumed {
		t.Fatal("nothing held before the close: the test shows nothing")
	}
	s.b.env = &fakeEnv{watched: map[int]bool{}}
	dup, _ := unix.Dup(sfd)
	s.fd = dup
	s.Close()
	if k := inKernel(t, &socket{fd: sfd}); k != off {
		t.Errorf("after the close the kernel let %d bytes go, want all %d", k, off)
	}
	// What the app had left the socket, so the close sent a FIN: the
	// client reads the end of the stream, not a reset.
	unix.Shutdown(sfd, unix.SHUT_WR)
	if n, err := unix.Read(cfd, make([]byte, 10)); n != 0 || err != nil {
		t.Errorf("the client read %d, %v; want the end of the stream", n, err)
	}
}

// TestReceiveClaims: an app's offset before what it showed, or past what
// it was given, is EINVAL, held bytes or not; a receive it gave up on is
// found again.
func TestReceiveClaims(t *testing.T) {
	cfd, sfd := tcpPair(t)
	s := &socket{b: &Backend{}, fd: sfd, rec: -1, kind: kindAccepted}
	off := exchanges(t, cfd, s, 5)
	if s.released == s.consumed {
		t.Fatal("nothing held: the test shows nothing")
	}
	if _, err := s.ReadAt(make([]byte, 10), s.released-1); err != syscall.EINVAL {
		t.Errorf("an offset before the released one: %v, want EINVAL", err)
	}
	// The app gave up on its receive of request 4: its offset stays, and
	// the peek goes back to the bytes.
	at4 := off - uint64(len(request(4)))
	receive(t, s, at4, 4)
	sendRequest(t, cfd, sfd, 5)
	off = receive(t, s, off, 5)
	if _, err := s.ReadAt(make([]byte, 10), off+1); err != syscall.EINVAL {
		t.Errorf("an offset past what was received: %v, want EINVAL", err)
	}
}

// TestReceiveSmallBuffer: in a receive buffer that held bytes could fill
// (SO_RCVBUF set small), nothing is held.
func TestReceiveSmallBuffer(t *testing.T) {
	cfd, sfd := tcpPair(t)
	s := &socket{b: &Backend{}, fd: sfd, rec: -1, kind: kindAccepted}
	off := exchanges(t, cfd, s, 4)
	if err := s.SetOption(proto.OptRecvBuffer, 4096); err != nil {
		t.Fatal(err)
	}
	if k := inKernel(t, s); k != s.released {
		t.Fatalf("after SO_RCVBUF: %d bytes let go, %d released", k, s.released)
	}
	for i := 4; i < 20; i++ {
		sendRequest(t, cfd, sfd, i)
		s.Release(off)
		if k := inKernel(t, s); k != off {
			t.Fatalf("receive %d: %d bytes let go, want %d (nothing held)", i, k, off)
		}
		off = receive(t, s, off, i)
	}
}

// TestReceiveDeathLosesNothing kills netproc (drops its socket without a
// word) while it holds received bytes the app has and bytes it peeked
// for a receive whose answer died with it; the next incarnation, taking
// the socket over from the store and its record, answers the replayed
// receive with exactly those bytes, and the next with the next. The dead
// incarnation's peek offset, which stays with the socket, must not move
// the next one's peeks.
func TestReceiveDeathLosesNothing(t *testing.T) {
	for _, held := range []int{0, 3, holdReceives} {
		t.Run(fmt.Sprint("held", held), func(t *testing.T) {
			persist := memfd(t, tableHeader+16*recordSize)
			tab, err := openTable(persist, 0)
			if err != nil {
				t.Fatal(err)
			}
			cfd, sfd := tcpPair(t)
			r := record{kind: kindAccepted, owner: 5, handle: 51}
			if !tab.alloc(&r) {
				t.Fatal("alloc")
			}
			s := &socket{b: &Backend{tab: tab}, fd: sfd, rec: r.slot, kind: kindAccepted}
			off := uint64(0)
			i := 0
			// Receives until the socket holds `held` of them (it starts
			// holding at the third).
			for ; i < 2 || s.held < held; i++ {
				off = exchange(t, cfd, s, off, i)
				if i > 40 {
					t.Fatalf("the socket holds %d receives, never %d", s.held, held)
				}
			}
			// The receive of request i is peeked, and its answer dies
			// with netproc; so does the app's release of request i-1.
			sendRequest(t, cfd, sfd, i)
			buf := make([]byte, 4096)
			if n, err := s.ReadAt(buf, off); err != nil || n == 0 {
				t.Fatalf("the dead incarnation's last peek: %d, %v", n, err)
			}
			tab.close()

			dup, _ := unix.Dup(sfd)
			link, _ := fakeSupervisor(t, []uint64{r.key()}, []int{dup})
			pfd, _ := unix.Dup(int(persist.Fd()))
			b := NewWith(Config{Persist: os.NewFile(uintptr(pfd), "persist"), Store: link})
			if err := b.Start(&fakeEnv{watched: map[int]bool{}}); err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			got := b.Resume(5, func(uint64) backend.Notify { return func(backend.Events) {} })
			if len(got) != 1 {
				t.Fatalf("%d sockets resumed, want 1", len(got))
			}
			next := got[0].Conn.(*socket)
			off = receive(t, next, off, i) // the replayed receive
			sendRequest(t, cfd, sfd, i+1)
			next.Release(off)
			off = receive(t, next, off, i+1)
			// And on, through the next incarnation's own holding.
			for j := i + 2; j < i+30; j++ {
				sendRequest(t, cfd, sfd, j)
				next.Release(off)
				off = receive(t, next, off, j)
			}
		})
	}
}

// TestReceiveBulkNoStall streams through a socket the way the handler
// receives (Release as a receive arrives, ReadAt, and a wait for the next
// epoll edge once a peek drains the queue): held bytes must never shut the
// window on a peer that waits for it to open.
func TestReceiveBulkNoStall(t *testing.T) {
	for _, bufSize := range []int{100, 1000, 4096, 5000, 16384} {
		for _, mode := range []struct {
			name string
			peek peekMode
		}{{"head", peekNever}, {"offset", peekHead}} {
			t.Run(fmt.Sprint(bufSize, "/", mode.name), func(t *testing.T) {
				cfd, sfd := tcpPair(t)
				unix.SetNonblock(sfd, true)
				ep, _ := unix.EpollCreate1(0)
				defer unix.Close(ep)
				unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, sfd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(sfd)})
				const total = 8 << 20
				go func() {
					chunk := make([]byte, 64<<10+7)
					for sent := 0; sent < total; {
						n, err := unix.Write(cfd, chunk[:min(len(chunk), total-sent)])
						if err != nil {
							return
						}
						sent += n
					}
				}()
				s := &socket{b: &Backend{}, fd: sfd, rec: -1, kind: kindAccepted, peek: mode.peek}
				buf := make([]byte, bufSize)
				off := uint64(0)
				readable := true
				evs := make([]unix.EpollEvent, 1)
				for off < total {
					s.Release(off)
					if !readable {
						n, _ := unix.EpollWait(ep, evs, 3000)
						if n == 0 {
							v, _ := unix.IoctlGetInt(sfd, unix.SIOCINQ)
							t.Fatalf("stalled at %d: %d held, %d peeked past, SIOCINQ %d", off, s.released-s.consumed, s.peekAt-off, v)
						}
						readable = true
					}
					n, err := s.ReadAt(buf, off)
					if err == unix.EAGAIN {
						readable = false
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					if n < len(buf) {
						readable = false
					}
					off += uint64(n)
				}
			})
		}
	}
}

// BenchmarkReceive is a keep-alive connection's receive as the handler
// makes it (Release as the receive arrives, then ReadAt) of a 100-byte
// request the client wrote just before, with peeks at the head of the
// queue (a discard every receive) and at the peek offset (a discard every
// holdReceives+1).
func BenchmarkReceive(b *testing.B) {
	for _, mode := range []struct {
		name string
		peek peekMode
	}{{"head", peekNever}, {"offset", peekHead}} {
		b.Run(mode.name, func(b *testing.B) {
			cfd, sfd := tcpPair(b)
			s := &socket{b: &Backend{}, fd: sfd, rec: -1, kind: kindAccepted, peek: mode.peek}
			req := bytes.Repeat([]byte("x"), 100)
			buf := make([]byte, 4096)
			off := uint64(0)
			for b.Loop() {
				unix.Write(cfd, req)
				s.Release(off)
				n, err := s.ReadAt(buf, off)
				if err != nil || n != len(req) {
					b.Fatalf("receive at %d: %d, %v", off, n, err)
				}
				off += uint64(n)
			}
		})
	}
}

// TestReceiveLeave: a socket left to the next incarnation (netproc
// stopping for an upgrade) has its peek offset turned off, for a next
// build that would not know to: an older one peeks from the head, where
// its record's count says the app's bytes begin.
func TestReceiveLeave(t *testing.T) {
	tab, err := openTable(nil, tableHeader+4*recordSize)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.close()
	cfd, sfd := tcpPair(t)
	r := record{kind: kindAccepted, owner: 5, handle: 51}
	if !tab.alloc(&r) {
		t.Fatal("alloc")
	}
	s := &socket{b: &Backend{tab: tab, env: &fakeEnv{watched: map[int]bool{}}}, fd: sfd, rec: r.slot, kind: kindAccepted}
	exchanges(t, cfd, s, 4)
	if s.peek != peekOn || s.released == s.consumed {
		t.Fatalf("peek mode %d, %d bytes held: the test shows nothing", s.peek, s.released-s.consumed)
	}
	s.Leave()
	if v, err := unix.GetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_PEEK_OFF); err != nil || v != -1 {
		t.Errorf("after Leave the peek offset is %d (%v), want -1 (off)", v, err)
	}
	if k := inKernel(t, s); k != s.consumed || tab.u64(r.slot, rConsumed).Load() != s.consumed {
		t.Errorf("after Leave: the kernel let %d bytes go, the record says %d, the socket %d", k, tab.u64(r.slot, rConsumed).Load(), s.consumed)
	}
}
