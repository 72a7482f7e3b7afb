package ring

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

// Region is one channel's shared memory: a header page, a submission ring,
// a completion ring and a pool of data buffers, in one sealed memfd mapped
// into both processes.
//
// The supervisor creates regions (Create) and keeps them open for as long as
// the instance lives; servers and apps receive the file descriptor and Open
// it. A Region's methods are safe for concurrent use; the rings and the pool
// it hands out are not (see Producer, Consumer, Pool and Loans).
type Region struct {
	file *os.File
	mem  mmap.MMap
	geo  Geometry
	lay  layout

	closed atomic.Bool
}

// requiredSeals are the seals a region must carry before we map it: with
// them, nobody (not even the creator) can shrink the file and turn our loads
// into SIGBUS, or grow it.
const requiredSeals = unix.F_SEAL_GROW | unix.F_SEAL_SHRINK

// Create makes a new region of geometry g in a memfd called name (the name
// shows in /proc/PID/fd and /proc/PID/maps, nothing more), seals it against
// resizing, maps it and writes its header. The epoch starts at zero: no
// server has attached yet.
func Create(name string, g Geometry) (*Region, error) {
	if err := g.Check(); err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("ring: memfd_create %q: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	size := g.Size()
	if err := unix.Ftruncate(fd, size); err != nil {
		f.Close()
		return nil, fmt.Errorf("ring: sizing region %q to %d bytes: %w", name, size, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, requiredSeals|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, fmt.Errorf("ring: sealing region %q: %w", name, err)
	}
	mem, err := mmap.MapRegion(f, int(size), mmap.RDWR, 0, 0)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ring: mapping region %q: %w", name, err)
	}
	encodeHeader(mem[:HeaderSize], g)
	return &Region{file: f, mem: mem, geo: g, lay: g.layout()}, nil
}

// Open maps a region received from a peer. It validates the seals, the file
// size and the header before mapping anything, so a region that lies gets an
// error that names what is wrong, never a fault. Open takes ownership of f:
// Close closes it, and so does a failed Open.
func Open(f *os.File) (*Region, error) {
	r, err := open(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ring: open region %s: %w", f.Name(), err)
	}
	return r, nil
}

func open(f *os.File) (*Region, error) {
	fd := int(f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot read seals (not a memfd?): %w", ErrNotSealed, err)
	}
	if seals&requiredSeals != requiredSeals {
		return nil, fmt.Errorf("%w: seals are %#x", ErrNotSealed, seals)
	}
	if st.Size < HeaderSize {
		return nil, fmt.Errorf("%w: region file is %d bytes, smaller than its header", ErrBadHeader, st.Size)
	}
	hdr := make([]byte, staticEnd)
	if _, err := unix.Pread(fd, hdr, 0); err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	g, err := ValidateHeader(hdr, st.Size)
	if err != nil {
		return nil, err
	}
	mem, err := mmap.MapRegion(f, int(st.Size), mmap.RDWR, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	// The seals forbid any change of size, and the header's static part is
	// only read from hdr above, so a peer rewriting it now changes nothing
	// we rely on.
	return &Region{file: f, mem: mem, geo: g, lay: g.layout()}, nil
}

// Close unmaps the region and closes its file. The memory lives on in other
// processes that still map it. Rings, pools and buffers obtained from r must
// not be used after Close.
func (r *Region) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	return errors.Join(r.mem.Unmap(), r.file.Close())
}

// File is the region's memfd, for handing to another process (as an
// inherited descriptor or over SCM_RIGHTS). It stays owned by r.
func (r *Region) File() *os.File { return r.file }

// Geometry is the region's validated geometry.
func (r *Region) Geometry() Geometry { return r.geo }

// Size is the region's size in bytes.
func (r *Region) Size() int64 { return int64(r.lay.total) }

// ServerEpoch reports the incarnation number of the server attached to the
// channel (0 before any server attached) and the submission position at
// which that incarnation started consuming: every entry the app pushed
// before that position was consumed by an earlier incarnation, so one whose
// completion never arrived must be resubmitted; entries from that position
// on belong to the current incarnation.
func (r *Region) ServerEpoch() (epoch, resume uint32) {
	s := word64(r.mem, offServerState).Load()
	return uint32(s >> 32), uint32(s)
}

// Server capabilities, in a word of the header (see ServerCaps).
const (
	// CapResume: the server's connections survive its death (netproc on
	// the usertcp backend with resume on): after a restart the app keeps
	// its sockets and replays what the dead incarnation took and never
	// answered, instead of failing it (see docs/restart.md).
	CapResume uint32 = 1 << iota
	// CapDown: the incarnation was ended by the supervisor and no next
	// one has started yet. EndIncarnation sets it and Server clears it.
	CapDown
)

// SetServerCaps publishes the capabilities the server's incarnation
// offers (CapDown is kept as it is).
func (r *Region) SetServerCaps(caps uint32) {
	w := word32(r.mem, offServerCaps)
	for {
		old := w.Load()
		if w.CompareAndSwap(old, caps&^CapDown|old&CapDown) {
			return
		}
	}
}

// ServerCaps reports the capabilities the server published. It comes from
// a peer: an app treats it as a hint, never as a reason to trust more.
func (r *Region) ServerCaps() uint32 { return word32(r.mem, offServerCaps).Load() }

// setDown sets or clears CapDown.
func (r *Region) setDown(down bool) {
	w := word32(r.mem, offServerCaps)
	for {
		old := w.Load()
		nw := old &^ CapDown
		if down {
			nw |= CapDown
		}
		if w.CompareAndSwap(old, nw) {
			return
		}
	}
}

// Counters are the channel's running figures, read from shared memory for
// status reports. They come from a peer and are informational only.
type Counters struct {
	SQDepth   uint32 // submissions waiting for the server
	CQDepth   uint32 // completions waiting for the app
	Submitted uint64 // entries the server has consumed
	Completed uint64 // completions the server has posted
}

// Counters reads the channel's figures. Depths are clamped to the ring
// sizes, since a peer may have scribbled on the counters.
func (r *Region) Counters() Counters {
	depth := func(tailOff, headOff int, capacity uint32) uint32 {
		d := word32(r.mem, tailOff).Load() - word32(r.mem, headOff).Load()
		return min(d, capacity)
	}
	return Counters{
		SQDepth:   depth(offSQTail, offSQHead, r.geo.SQEntries),
		CQDepth:   depth(offCQTail, offCQHead, r.geo.CQEntries),
		Submitted: word64(r.mem, offSubmitted).Load(),
		Completed: word64(r.mem, offCompleted).Load(),
	}
}

// SetAppPID records the attached app's process ID (diagnostics only).
func (r *Region) SetAppPID(pid int) { word32(r.mem, offAppPID).Store(uint32(pid)) }

// AppPID is the pid the app recorded, or 0.
func (r *Region) AppPID() int { return int(word32(r.mem, offAppPID).Load()) }
