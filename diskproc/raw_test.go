package diskproc_test

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/internal/disktest"
	"saturn/internal/testkit"
	"saturn/proto"
	"saturn/ring"
)

// rawApp drives a channel by hand: entries written field by field, as a
// buggy or hostile app could write them.
type rawApp struct {
	t   testing.TB
	c   *disktest.Chan
	end *ring.AppEnd
	mem []byte // the region, mapped again: buffers without ring.Pool's bookkeeping
}

func newRaw(t testing.TB, srv *disktest.Server) *rawApp {
	t.Helper()
	return newRawWith(t, srv, nil)
}

// newRawWith is newRaw for an app with grants.
func newRawWith(t testing.TB, srv *disktest.Server, grants *proto.ChannelGrants) *rawApp {
	t.Helper()
	c := srv.RawChannelWith(disktest.Geometry, grants)
	end, err := c.Region.App(c.Bells())
	if err != nil {
		t.Fatal(err)
	}
	return &rawApp{t: t, c: c, end: end}
}

// submit publishes entries as they are, in one batch.
func (r *rawApp) submit(subs ...proto.Submission) {
	r.t.Helper()
	testkit.Eventually(r.t, 10*time.Second, func() bool {
		n, err := r.end.Submit.Reserve(len(subs))
		if err != nil {
			r.t.Fatal(err)
		}
		for i := range n {
			subs[i].Encode(r.end.Submit.Slot(i))
		}
		r.end.Submit.Publish(n)
		subs = subs[n:]
		return len(subs) == 0
	}, "room in the submission ring")
}

// reap waits for n completions.
func (r *rawApp) reap(n int) []proto.Completion {
	r.t.Helper()
	var out []proto.Completion
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n {
		k, err := r.end.Complete.Wait(ring.WaitPolicy{Spin: 0}, deadline)
		if err != nil {
			r.t.Fatalf("waiting for %d completions, have %d: %v", n, len(out), err)
		}
		for i := range k {
			c, _ := proto.DecodeCompletion(r.end.Complete.Slot(i))
			out = append(out, c)
		}
		r.end.Complete.Release(k)
	}
	return out
}

// do submits one entry and returns its completion.
func (r *rawApp) do(s proto.Submission) proto.Completion {
	r.t.Helper()
	r.submit(s)
	return r.reap(1)[0]
}

// buf is the bytes of buffer i, which the test treats as its own (the pool
// bookkeeping of ring.Pool is bypassed on purpose).
func (r *rawApp) buf(i uint32) []byte {
	g := disktest.Geometry
	if r.mem == nil {
		fd, err := ring.RawFD(r.c.Region.File())
		if err != nil {
			r.t.Fatal(err)
		}
		r.mem, err = unix.Mmap(fd, 0, int(g.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			r.t.Fatal(err)
		}
		r.t.Cleanup(func() { unix.Munmap(r.mem) })
	}
	// The pool ends the region (its size is a multiple of the page size).
	pool := int(g.Size()) - int(g.BufferCount)*int(g.BufferSize)
	return r.mem[pool+int(i)*int(g.BufferSize) : pool+int(i+1)*int(g.BufferSize)]
}

// open opens path with flags through buffer 0 and returns the handle.
func (r *rawApp) open(path string, flags proto.OpenFlag, ud uint64) proto.Completion {
	r.t.Helper()
	copy(r.buf(0), path)
	return r.do(proto.Submission{Op: proto.OpOpen, Buf: 0, Len: uint32(len(path)), Args: [3]uint64{uint64(flags), 0o644}, UserData: ud})
}
