package netproc_test

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/netproc/netproctest"
	"saturn/proto"
	"saturn/ring"
)

// rawApp drives a channel to netproc at the level of ring entries, as a
// hostile or buggy app could: no appproc in between.
type rawApp struct {
	t      testing.TB
	desc   proto.ChannelDesc
	region *ring.Region
	end    *ring.AppEnd
	bells  []*ring.EventDoorbell
	nextID uint64
	early  map[uint64]proto.Completion // completions that arrived while waiting for others
}

func newRawApp(t testing.TB, srv *netproctest.Server, name string) *rawApp {
	t.Helper()
	desc, files := srv.Channel(t, name, netproctest.Geometry)
	return openRaw(t, desc, files)
}

func openRaw(t testing.TB, desc proto.ChannelDesc, files []*os.File) *rawApp {
	t.Helper()
	r, err := ring.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ring.EventDoorbellFromFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	end, err := r.App(ring.Bells{Server: sb})
	if err != nil {
		t.Fatal(err)
	}
	a := &rawApp{t: t, desc: desc, region: r, end: end, bells: []*ring.EventDoorbell{sb}, early: map[uint64]proto.Completion{}}
	t.Cleanup(a.close)
	return a
}

func (a *rawApp) close() {
	a.region.Close()
	for _, b := range a.bells {
		b.Close()
	}
}

// reserve waits for a free submission slot, reaping completions meanwhile.
func (a *rawApp) reserve() {
	a.t.Helper()
	testkit.Eventually(a.t, 10*time.Second, func() bool {
		n, err := a.end.Submit.Reserve(1)
		if err != nil {
			a.t.Fatal(err)
		}
		if n == 0 {
			a.drainInto()
		}
		return n == 1
	}, "a free submission slot")
}

// queued counts the completions netproc holds for the app's channel
// because its completion ring is full: calls', and waits'.
func (a *rawApp) queued(srv *netproctest.Server) (calls, waits int) {
	srv.Do(func() {
		for _, ch := range srv.Loop.Channels() {
			if ch.Desc.ID == a.desc.ID {
				calls, waits = ch.QueuedCalls(), ch.QueuedWaits()
			}
		}
	})
	return calls, waits
}

// submit publishes sub with a fresh user_data (returned), lending the
// buffer it names first if that is one of ours.
func (a *rawApp) submit(sub proto.Submission) uint64 {
	a.t.Helper()
	a.nextID++
	sub.UserData = a.nextID
	if sub.Buf == 0 {
		sub.Buf = proto.NoBuffer
	}
	if sub.Buf != proto.NoBuffer && int(sub.Buf) < a.end.Pool.Len() {
		a.end.Pool.Lend(sub.Buf) // may fail for a hostile entry; netproc must cope
	}
	a.reserve()
	sub.Encode(a.end.Submit.Slot(0))
	a.end.Submit.Publish(1)
	return sub.UserData
}

// connected listens on loopback, connects to it with the kernel's TCP, and
// accepts: the listener's handle, the connection's, and the client's end
// (closed when the test ends).
func (a *rawApp) connected() (ln, conn uint64, client net.Conn) {
	a.t.Helper()
	ln, bound, c := a.listen("127.0.0.1:0", 0)
	if c.Result < 0 {
		a.t.Fatalf("listen: %v", errOf(c))
	}
	client, err := net.Dial("tcp", bound.String())
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(func() { client.Close() })
	c, _ = a.call(proto.Submission{Op: proto.OpAccept, Handle: ln})
	if c.Result <= 0 {
		a.t.Fatalf("accept: %v", errOf(c))
	}
	return ln, uint64(c.Result), client
}

// drainInto moves every ready completion into early, and frees the
// buffers they hand back.
func (a *rawApp) drainInto() { a.drain(false) }

// drainIntoKeeping is drainInto but leaves the buffers allocated, so that
// the caller can read what netproc wrote into them (bufData).
func (a *rawApp) drainIntoKeeping() { a.drain(true) }

func (a *rawApp) drain(keep bool) {
	n, err := a.end.Complete.Peek(a.end.Complete.Capacity())
	if err != nil {
		a.t.Fatal(err)
	}
	for i := range n {
		c, _ := proto.DecodeCompletion(a.end.Complete.Slot(i))
		a.early[c.UserData] = c
		if c.Buf != proto.NoBuffer {
			if _, err := a.end.Pool.Reclaim(c.Buf, 0); err == nil && !keep {
				a.end.Pool.Free(c.Buf)
			}
		}
	}
	a.end.Complete.Release(n)
}

// wait returns the completion of id, or fails the test after timeout.
func (a *rawApp) wait(id uint64, timeout time.Duration) proto.Completion {
	a.t.Helper()
	c, ok := a.waitOK(id, timeout)
	if !ok {
		a.t.Fatalf("no completion for %d within %v", id, timeout)
	}
	return c
}

func (a *rawApp) waitOK(id uint64, timeout time.Duration) (proto.Completion, bool) {
	deadline := time.Now().Add(timeout)
	for {
		if c, ok := a.early[id]; ok {
			delete(a.early, id)
			return c, true
		}
		if _, err := a.end.Complete.Wait(ring.WaitPolicy{Spin: 20 * time.Microsecond}, deadline); err != nil {
			return proto.Completion{}, false
		}
		a.drainIntoKeeping()
	}
}

// buf allocates a buffer holding in (or empty), for a submission. It never
// returns buffer 0, which rawApp keeps for itself, so that a Submission
// literal that leaves Buf zero names no buffer (see submit).
func (a *rawApp) buf(in []byte) uint32 {
	a.t.Helper()
	b, err := a.end.Pool.Alloc()
	if err == nil && b == 0 {
		b, err = a.end.Pool.Alloc()
	}
	if err != nil {
		a.t.Fatal(err)
	}
	copy(a.end.Pool.Bytes(b), in)
	return b
}

// release frees a buffer a completion handed back.
func (a *rawApp) release(b uint32) []byte {
	data := append([]byte(nil), a.end.Pool.Bytes(b)...)
	a.end.Pool.Free(b)
	return data
}

// call submits sub and waits for its completion, copying out the buffer.
func (a *rawApp) call(sub proto.Submission) (proto.Completion, []byte) {
	a.t.Helper()
	c := a.wait(a.submit(sub), 5*time.Second)
	var data []byte
	if c.Buf != proto.NoBuffer {
		data = a.release(c.Buf)
	}
	return c, data
}

func sockAddr(t testing.TB, s string) []byte {
	t.Helper()
	b := make([]byte, proto.SockAddrSize)
	if err := proto.EncodeSockAddr(b, netip.MustParseAddrPort(s)); err != nil {
		t.Fatal(err)
	}
	return b
}

// listen opens a listener on addr and returns its handle and bound address.
func (a *rawApp) listen(addr string, flags proto.ListenFlag) (uint64, netip.AddrPort, proto.Completion) {
	a.t.Helper()
	c, data := a.call(proto.Submission{Op: proto.OpListen, Buf: a.buf(sockAddr(a.t, addr)), Len: proto.SockAddrSize, Args: [3]uint64{0, uint64(flags)}})
	if c.Result < 0 {
		return 0, netip.AddrPort{}, c
	}
	bound, err := proto.DecodeSockAddr(data)
	if err != nil {
		a.t.Fatal(err)
	}
	return uint64(c.Result), bound, c
}

// adoptQueued listens at bound, where an earlier incarnation of a's app
// left its listener: the listen must adopt it, and the first connection
// accepted on it must bring msg, which a client sent while no incarnation
// ran.
func (a *rawApp) adoptQueued(bound netip.AddrPort, msg string) {
	a.t.Helper()
	ln, again, c := a.listen(bound.String(), 0)
	if c.Result < 0 || c.Aux != proto.ListenAdopted || again != bound {
		a.t.Fatalf("next incarnation's listen: %v, aux %d at %v, want the kept listener at %v", errOf(c), c.Aux, again, bound)
	}
	c, _ = a.call(proto.Submission{Op: proto.OpAccept, Handle: ln})
	if c.Result <= 0 {
		a.t.Fatalf("accept of the queued client: %v", errOf(c))
	}
	c, data := a.call(proto.Submission{Op: proto.OpRecv, Handle: uint64(c.Result), Buf: a.buf(nil), Len: 100})
	if got := data[:max(c.Result, 0)]; string(got) != msg {
		a.t.Fatalf("recv: %d %q, want %q", c.Result, got, msg)
	}
}
