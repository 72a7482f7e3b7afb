package serverkit

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"saturn/internal/testkit"
	"saturn/proto"
	"saturn/ring"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

var geometry = ring.Geometry{
	SQEntrySize: proto.SubmissionSize, SQEntries: 256,
	CQEntrySize: proto.CompletionSize, CQEntries: 8,
	BufferSize: 4096, BufferCount: 4,
}

// recorder is a Handler that keeps what it is told, and completes every
// entry at once with its Args[0] (or queues it as a wait, FlagSelect).
type recorder struct {
	mu      sync.Mutex
	subs    []proto.Submission
	added   []uint64
	dropped []uint64
	stopped []bool // Loop.Stopping at each Dropped
	rounds  int
	loop    *Loop
}

func (r *recorder) Added(ch *Channel) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.added = append(r.added, ch.Desc.ID)
	return nil
}

func (r *recorder) Dropped(ch *Channel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropped = append(r.dropped, ch.Desc.ID)
	r.stopped = append(r.stopped, r.loop.Stopping())
}

func (r *recorder) Submit(ch *Channel, sub *proto.Submission) {
	r.mu.Lock()
	r.subs = append(r.subs, *sub)
	r.mu.Unlock()
	c := proto.Completion{UserData: sub.UserData, Result: int64(sub.Args[0]), Buf: proto.NoBuffer}
	if sub.Flags&proto.FlagSelect != 0 {
		ch.CompleteWait(c)
		return
	}
	ch.Complete(c)
}

func (r *recorder) EndRound() {
	r.mu.Lock()
	r.rounds++
	r.mu.Unlock()
}

// app is the app's end of a channel, driven entry by entry.
type app struct {
	t      *testing.T
	desc   proto.ChannelDesc
	region *ring.Region
	end    *ring.AppEnd
	bell   *ring.EventDoorbell
	nextID uint64
}

// addChannel makes a channel as the supervisor does, opens the server's
// end with Open and the app's with ring.Open, and adds the server's end to
// l.
func addChannel(t *testing.T, l *Loop, id uint64) (*Channel, *app) {
	t.Helper()
	files := channelFiles(t, geometry)
	appRegion, appBell := dup(t, files[0]), dup(t, files[1])
	desc := proto.ChannelDesc{ID: id, App: "test", Server: "netproc", Bells: true}
	ch, err := Open(desc, files)
	if err != nil {
		t.Fatal(err)
	}
	ar, err := ring.Open(appRegion)
	if err != nil {
		t.Fatal(err)
	}
	bell, err := ring.EventDoorbellFromFile(appBell)
	if err != nil {
		t.Fatal(err)
	}
	end, err := ar.App(ring.Bells{Server: bell})
	if err != nil {
		t.Fatal(err)
	}
	a := &app{t: t, desc: desc, region: ar, end: end, bell: bell}
	t.Cleanup(func() { ar.Close(); bell.Close() })
	if err := l.AddChannel(ch); err != nil {
		t.Fatal(err)
	}
	return ch, a
}

// channelFiles makes a region of geometry g and a server doorbell as the
// supervisor does, and returns what it sends the server: the region's
// descriptor, then the doorbell's (duplicates; the caller owns them).
func channelFiles(t *testing.T, g ring.Geometry) []*os.File {
	t.Helper()
	r, err := ring.Create("serverkit-test", g)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sb, err := ring.NewEventDoorbell()
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	return []*os.File{dup(t, r.File()), dup(t, sb.File())}
}

func dup(t *testing.T, f *os.File) *os.File {
	t.Helper()
	d, err := ring.DupFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// submit publishes sub (or raw bytes, if given) with a fresh user_data.
func (a *app) submit(sub proto.Submission, raw ...byte) uint64 {
	a.t.Helper()
	a.nextID++
	sub.UserData = a.nextID
	if n, err := a.end.Submit.Reserve(1); err != nil || n != 1 {
		a.t.Fatalf("reserve: %d, %v", n, err)
	}
	slot := a.end.Submit.Slot(0)
	sub.Encode(slot)
	copy(slot, raw)
	if err := a.end.Submit.Publish(1); err != nil {
		a.t.Fatal(err)
	}
	return sub.UserData
}

// reap waits for n completions and returns them by user_data.
func (a *app) reap(n int) map[uint64]proto.Completion {
	a.t.Helper()
	got := map[uint64]proto.Completion{}
	testkit.Eventually(a.t, 5*time.Second, func() bool {
		k, err := a.end.Complete.Peek(a.end.Complete.Capacity())
		if err != nil {
			a.t.Fatal(err)
		}
		for i := range k {
			c, err := proto.DecodeCompletion(a.end.Complete.Slot(i))
			if err != nil {
				a.t.Fatal(err)
			}
			got[c.UserData] = c
		}
		a.end.Complete.Release(k)
		return len(got) >= n
	}, "%d completions", n)
	return got
}

// run starts l and returns a function that stops it and waits.
func run(t *testing.T, l *Loop) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newLoop(t *testing.T, server proto.Server) (*Loop, *recorder) {
	t.Helper()
	h := &recorder{}
	l, err := NewLoop(server, h, quiet)
	if err != nil {
		t.Fatal(err)
	}
	h.loop = l
	return l, h
}

// The loop answers nops, bad entries and other servers' operations itself,
// hands a buffer named by a refused entry back, and never echoes a bad one.
func TestLoopAnswersItself(t *testing.T) {
	l, h := newLoop(t, proto.ServerNet)
	_, a := addChannel(t, l, 1)
	run(t, l)
	buf, err := a.end.Pool.Alloc()
	if err != nil {
		t.Fatal(err)
	}
	a.end.Pool.Lend(buf)
	nop := a.submit(proto.Submission{Op: proto.OpNop, Buf: proto.NoBuffer})
	disk := a.submit(proto.Submission{Op: proto.OpRead, Buf: buf, Len: 10}) // diskproc's
	badOp := a.submit(proto.Submission{Buf: proto.NoBuffer}, 0xEE)
	badBuf := a.submit(proto.Submission{Op: proto.OpRead, Buf: 1000, Len: 10})
	got := a.reap(4)
	for _, tc := range []struct {
		name string
		id   uint64
		want syscall.Errno
		buf  uint32
	}{
		{"nop", nop, 0, proto.NoBuffer},
		{"another server's op", disk, syscall.EOPNOTSUPP, buf},
		{"unknown opcode", badOp, syscall.EINVAL, proto.NoBuffer},
		{"a buffer index past the pool", badBuf, syscall.EOPNOTSUPP, proto.NoBuffer},
	} {
		c := got[tc.id]
		var errno syscall.Errno
		if c.Result < 0 {
			errno = syscall.Errno(-c.Result)
		}
		if errno != tc.want || c.Buf != tc.buf {
			t.Errorf("%s: result %d (%v), buffer %d; want %v, buffer %d", tc.name, c.Result, errno, c.Buf, tc.want, tc.buf)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) != 0 {
		t.Errorf("the handler was given %d entries the loop answers itself", len(h.subs))
	}
}

// Entries the server serves go to the handler, decoded, in order; the round
// ends with EndRound; Added and Dropped bracket a channel's life, and
// Dropped at shutdown sees Stopping.
func TestLoopServesHandler(t *testing.T) {
	l, h := newLoop(t, proto.ServerNet)
	_, a1 := addChannel(t, l, 1)
	addChannel(t, l, 2)
	stop := run(t, l)
	ids := []uint64{
		a1.submit(proto.Submission{Op: proto.OpSend, Buf: proto.NoBuffer, Handle: 7, Args: [3]uint64{11}}),
		a1.submit(proto.Submission{Op: proto.OpClose, Buf: proto.NoBuffer, Handle: 7, Args: [3]uint64{12}}),
	}
	got := a1.reap(2)
	for i, id := range ids {
		if got[id].Result != int64(11+i) {
			t.Errorf("completion %d: %+v", i, got[id])
		}
	}
	l.Post(func() { l.DropChannel(1) })
	testkit.Eventually(t, 5*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.dropped) == 1
	}, "channel 1 dropped")
	stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) != 2 || h.subs[0].Op != proto.OpSend || h.subs[0].Handle != 7 || h.subs[1].Op != proto.OpClose {
		t.Errorf("the handler got %+v", h.subs)
	}
	if h.rounds == 0 {
		t.Error("EndRound never called")
	}
	if len(h.added) != 2 || len(h.dropped) != 2 || h.dropped[0] != 1 || h.dropped[1] != 2 {
		t.Errorf("added %v, dropped %v; want both added, 1 then 2 dropped", h.added, h.dropped)
	}
	if len(h.stopped) == 2 && (h.stopped[0] || !h.stopped[1]) {
		t.Errorf("Stopping at each Dropped: %v; want false (the app left), true (the server stops)", h.stopped)
	}
}

// One round takes at most PerRound entries of a channel before it serves
// the next: a busy app cannot starve another.
func TestLoopFairness(t *testing.T) {
	l, h := newLoop(t, proto.ServerNet)
	_, a := addChannel(t, l, 1)
	_, b := addChannel(t, l, 2)
	// Published before the loop runs, so that its first round finds both.
	const many = 3 * PerRound
	for range many {
		a.submit(proto.Submission{Op: proto.OpSend, Buf: proto.NoBuffer, Handle: 1})
	}
	b.submit(proto.Submission{Op: proto.OpSend, Buf: proto.NoBuffer, Handle: 2})
	run(t, l)
	testkit.Eventually(t, 5*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.subs) == many+1
	}, "every entry served")
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, s := range h.subs {
		if s.Handle == 2 {
			if i != PerRound {
				t.Errorf("the other app's entry was served %dth; want right after the busy app's first %d", i, PerRound)
			}
			return
		}
	}
	t.Error("the other app's entry was never served")
}

// A call's completion that finds the ring full waits in the backlog, a
// wait's in its own queue; once the app reaps, calls go first.
func TestLoopBacklogCallsBeforeWaits(t *testing.T) {
	l, _ := newLoop(t, proto.ServerNet)
	ch, a := addChannel(t, l, 1)
	run(t, l)
	for range geometry.CQEntries {
		a.submit(proto.Submission{Op: proto.OpNop, Buf: proto.NoBuffer})
	}
	queued := func() (calls, waits int) {
		done := make(chan struct{})
		l.Post(func() { calls, waits = ch.QueuedCalls(), ch.QueuedWaits(); close(done) })
		<-done
		return
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		n, _ := a.end.Complete.Peek(a.end.Complete.Capacity())
		return n == int(geometry.CQEntries)
	}, "the ring full of nops")
	wait := a.submit(proto.Submission{Op: proto.OpRecv, Flags: proto.FlagSelect, Buf: proto.NoBuffer, Handle: 1, Len: 1})
	testkit.Eventually(t, 5*time.Second, func() bool { _, w := queued(); return w == 1 }, "the wait queued")
	call := a.submit(proto.Submission{Op: proto.OpSend, Buf: proto.NoBuffer, Handle: 1})
	testkit.Eventually(t, 5*time.Second, func() bool { c, _ := queued(); return c == 1 }, "the call queued")
	var order []uint64
	testkit.Eventually(t, 5*time.Second, func() bool {
		n, _ := a.end.Complete.Peek(a.end.Complete.Capacity())
		for i := range n {
			c, _ := proto.DecodeCompletion(a.end.Complete.Slot(i))
			if c.UserData == wait || c.UserData == call {
				order = append(order, c.UserData)
			}
		}
		a.end.Complete.Release(n)
		return len(order) == 2
	}, "both completions")
	if order[0] != call || order[1] != wait {
		t.Errorf("published %v; want the call (%d) before the wait (%d)", order, call, wait)
	}
}

// Post runs tasks on the loop goroutine, in order; AddFD's callback runs
// when its descriptor is ready; after Run returns, Post drops its task.
func TestLoopPostAndFDs(t *testing.T) {
	l, _ := newLoop(t, proto.ServerNet)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	fired := make(chan uint32, 1)
	if err := l.AddFD(efd, unix.EPOLLIN|unix.EPOLLET, func(ev uint32) {
		var b [8]byte
		unix.Read(efd, b[:])
		fired <- ev
	}); err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	var got []int
	done := make(chan struct{})
	for i := range 3 {
		l.Post(func() { got = append(got, i) })
	}
	l.Post(func() { close(done) })
	<-done
	if len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Errorf("posted tasks ran as %v", got)
	}
	unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	select {
	case ev := <-fired:
		if ev&unix.EPOLLIN == 0 {
			t.Errorf("callback events %#x", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the descriptor's callback never ran")
	}
	stop()
	l.Post(func() { t.Error("a task posted after the loop stopped ran") })
	if !l.Stopping() {
		t.Error("Stopping is false after Run returned")
	}
}

// A channel whose ring is corrupt is dropped; the others go on.
func TestLoopDropsCorruptChannel(t *testing.T) {
	l, h := newLoop(t, proto.ServerNet)
	_, a := addChannel(t, l, 1)
	_, b := addChannel(t, l, 2)
	run(t, l)
	// The app claims more entries than the ring holds.
	a.end.Submit.Reserve(1)
	writeSQTail(t, a, uint32(10*geometry.SQEntries))
	a.bell.Ring()
	testkit.Eventually(t, 5*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.dropped) == 1 && h.dropped[0] == 1
	}, "the corrupt channel dropped")
	id := b.submit(proto.Submission{Op: proto.OpNop, Buf: proto.NoBuffer})
	if c := b.reap(1)[id]; c.Result != 0 {
		t.Errorf("the other channel's nop: %+v", c)
	}
}

// Open takes a channel's two descriptors and refuses anything else.
func TestOpenRefusesWrongDescriptors(t *testing.T) {
	r, err := ring.Create("serverkit-test", geometry)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	desc := proto.ChannelDesc{ID: 1, App: "test", Server: "netproc", Bells: true}
	if _, err := Open(desc, []*os.File{dup(t, r.File())}); err == nil {
		t.Error("a channel with one descriptor opened")
	}
	g := geometry
	g.SQEntrySize = 128
	if _, err := Open(desc, channelFiles(t, g)); err == nil {
		t.Error("a channel with entries of the wrong size opened")
	}
}

// writeSQTail writes the submission ring's tail in the region's header (at
// the offset package ring gives it), as a hostile app could.
func writeSQTail(t *testing.T, a *app, tail uint32) {
	t.Helper()
	const offSQTail = 256 // ring/header.go
	mem, err := unix.Mmap(int(a.region.File().Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	mem[offSQTail], mem[offSQTail+1], mem[offSQTail+2], mem[offSQTail+3] = byte(tail), byte(tail>>8), byte(tail>>16), byte(tail>>24)
}
