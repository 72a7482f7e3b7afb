package diskproc

import (
	"fmt"
	"log/slog"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"saturn/diskproc/uring"
	"saturn/internal/serverkit"
	"saturn/proto"
)

// uringBackend carries reads, writes and fsyncs out through io_uring, and
// metadata through a small worker pool.
//
// Each loop round's data ops become submission entries, handed to the
// kernel in one io_uring_enter at the end of the round (flush), and the
// completions the kernel posted meanwhile (reads from the page cache
// complete inside that very call) are reaped right after it, so that they
// are published in the same round. Completions that come later (from the
// disk) signal an eventfd registered with the ring, which the loop watches
// with its channels' doorbells.
//
// Entries point straight into the channels' shared buffers. Each channel's
// pool is one registered buffer (OpReadFixed/OpWriteFixed), so the kernel
// does not look up and pin its pages on every request, and each open file
// a registered file (IOSQE_FIXED_FILE), so it does not take a reference to
// the file on every request. Either registration may fail (an old kernel, a
// memlock limit): then that channel or file goes the plain way.
type uringBackend struct {
	ring *uring.Ring
	efd  int
	meta *workers
	loop *serverkit.Loop
	fin  func(*op)
	log  *slog.Logger

	ops     []*op    // by user_data: ops in the kernel's hands
	freeOps []uint32 // free user_data values
	backlog []*op    // ops waiting for room in the rings
	inRing  int
	maxRing int // never more in flight than the completion ring holds

	fixedBufs, fixedFiles bool
	// pinned is the memory registered buffers pin now, at most maxPinned
	// (Options.MaxPinned); pinWarned says the cap was logged.
	pinned, maxPinned int64
	pinWarned         bool
	freeBufSlots      []int
	freeFileSlots     []int
}

// Sizes of the registered tables.
const (
	uringBufferSlots = 1024 // channels
	uringFileSlots   = 4096 // open files
)

func newUringBackend(root int, entries uint32, metaWorkers int, log *slog.Logger) (*uringBackend, error) {
	r, err := uring.New(entries)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("diskproc: eventfd: %w", err)
	}
	// Only completions that come later need to wake the loop: those of
	// reads the page cache served inline are reaped right after the
	// submit (flush), and signalling them would cost a wake-up of the
	// loop's epoll and a read of the eventfd per round for nothing.
	if err := r.RegisterEventfdAsync(efd); err != nil {
		if err := r.RegisterEventfd(efd); err != nil {
			r.Close()
			unix.Close(efd)
			return nil, err
		}
	}
	meta, err := newWorkers(root, metaWorkers)
	if err != nil {
		r.Close()
		unix.Close(efd)
		return nil, err
	}
	b := &uringBackend{ring: r, efd: efd, meta: meta, log: log, maxRing: r.CQSize()}
	if err := r.RegisterSparseBuffers(uringBufferSlots); err != nil {
		log.Warn("io_uring: no registered buffers; using plain reads and writes", "err", err)
	} else {
		b.fixedBufs, b.freeBufSlots = true, freeSlots(uringBufferSlots)
	}
	if err := r.RegisterSparseFiles(uringFileSlots); err != nil {
		log.Warn("io_uring: no registered files; using plain descriptors", "err", err)
	} else {
		b.fixedFiles, b.freeFileSlots = true, freeSlots(uringFileSlots)
	}
	return b, nil
}

// freeSlots is a free list of the registered slots 0 to n-1, taken from
// its end: the lowest first.
func freeSlots(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = n - 1 - i
	}
	return s
}

func (b *uringBackend) name() string { return "uring" }

func (b *uringBackend) bind(loop *serverkit.Loop, done func(*op)) error {
	b.loop, b.fin = loop, done
	if err := b.meta.bind(loop, done); err != nil {
		return err
	}
	return loop.AddFD(b.efd, unix.EPOLLIN, func(uint32) {
		var buf [8]byte
		unix.Read(b.efd, buf[:])
		b.reap()
		if len(b.backlog) > 0 {
			b.flush()
		}
	})
}

func (b *uringBackend) start(o *op) {
	if !o.kind.isData() {
		b.meta.start(o)
		return
	}
	b.backlog = append(b.backlog, o)
}

func (b *uringBackend) flush() {
	b.meta.flush()
	queued := 0
	for queued < len(b.backlog) && b.inRing < b.maxRing {
		sqe := b.ring.GetSQE()
		if sqe == nil {
			break
		}
		b.prep(sqe, b.backlog[queued])
		b.backlog[queued] = nil
		queued++
		b.inRing++
	}
	b.backlog = b.backlog[queued:]
	if len(b.backlog) == 0 {
		b.backlog = nil
	}
	if b.ring.Pending() > 0 {
		if _, err := b.ring.Submit(); err != nil {
			// EBUSY or EAGAIN: the kernel is short of room or memory; the
			// entries stay in the ring and go with the next flush.
			b.log.Warn("io_uring submit", "err", err)
		}
	}
	b.reap()
}

// prep fills sqe for o.
func (b *uringBackend) prep(sqe *uring.SQE, o *op) {
	var ud uint32
	if n := len(b.freeOps); n > 0 {
		ud = b.freeOps[n-1]
		b.freeOps = b.freeOps[:n-1]
		b.ops[ud] = o
	} else {
		ud = uint32(len(b.ops))
		b.ops = append(b.ops, o)
	}
	sqe.UserData = uint64(ud)
	f := o.file
	sqe.FD = int32(f.fd)
	if f.fixed >= 0 {
		sqe.FD = int32(f.fixed)
		sqe.Flags |= uring.SQEFixedFile
	}
	switch o.kind {
	case opFsync:
		sqe.Opcode = uring.OpFsync
		if o.datasync {
			sqe.OpFlags = uring.FsyncData
		}
		return
	case opRead:
		sqe.Opcode = uring.OpRead
	case opWrite:
		sqe.Opcode = uring.OpWrite
	}
	sqe.Addr = uint64(uintptr(unsafe.Pointer(&o.buf[0])))
	sqe.Len = uint32(len(o.buf))
	sqe.Off = uint64(o.off) // -1, for an append, means "at the file's position"
	if o.app.bufSlot >= 0 {
		if o.kind == opWrite {
			sqe.Opcode = uring.OpWriteFixed
		} else {
			sqe.Opcode = uring.OpReadFixed
		}
		sqe.BufIndex = uint16(o.app.bufSlot)
	}
}

func (b *uringBackend) reap() {
	b.ring.Reap(func(c *uring.CQE) {
		ud := uint32(c.UserData)
		if int(ud) >= len(b.ops) || b.ops[ud] == nil {
			b.log.Error("io_uring completion for no op", "user_data", c.UserData)
			return
		}
		o := b.ops[ud]
		b.ops[ud] = nil
		b.freeOps = append(b.freeOps, ud)
		b.inRing--
		if c.Res < 0 {
			o.err = errnoOf(syscall.Errno(-c.Res), o.flags)
		} else {
			o.res = int64(c.Res)
		}
		b.fin(o)
	})
}

func (b *uringBackend) addChannel(a *appState) {
	if !b.fixedBufs || len(b.freeBufSlots) == 0 {
		return
	}
	mem := a.ch.End.Loans.Memory()
	if len(mem) == 0 {
		return
	}
	if b.pinned+int64(len(mem)) > b.maxPinned {
		// Registered buffers are pinned in memory: past the cap a channel
		// goes the plain way (a read into an unregistered buffer), so
		// that attaching apps cannot pin the machine's memory.
		if !b.pinWarned {
			b.pinWarned = true
			b.log.Warn("io_uring: the pinned-memory cap is reached; further channels' buffers are not registered",
				"pinned", b.pinned, "max_pinned", b.maxPinned, "channel", a.id)
		}
		return
	}
	slot := b.freeBufSlots[len(b.freeBufSlots)-1]
	if err := b.ring.SetBuffer(uint32(slot), mem); err != nil {
		b.log.Warn("io_uring: cannot register a channel's buffers; it goes the plain way", "channel", a.id, "err", err)
		return
	}
	b.freeBufSlots = b.freeBufSlots[:len(b.freeBufSlots)-1]
	a.bufSlot = slot
	a.pinned = int64(len(mem))
	b.pinned += a.pinned
}

func (b *uringBackend) dropChannel(a *appState) {
	if a.bufSlot < 0 {
		return
	}
	if err := b.ring.SetBuffer(uint32(a.bufSlot), nil); err != nil {
		b.log.Warn("io_uring: cannot clear a buffer slot; it is lost", "slot", a.bufSlot, "err", err)
	} else {
		b.freeBufSlots = append(b.freeBufSlots, a.bufSlot)
		b.pinned -= a.pinned
	}
	a.bufSlot, a.pinned = -1, 0
}

func (b *uringBackend) addFile(f *file) {
	f.fixed = -1
	if !b.fixedFiles || len(b.freeFileSlots) == 0 || f.typ != proto.TypeRegular {
		return
	}
	slot := b.freeFileSlots[len(b.freeFileSlots)-1]
	if err := b.ring.SetFile(uint32(slot), f.fd); err != nil {
		return
	}
	b.freeFileSlots = b.freeFileSlots[:len(b.freeFileSlots)-1]
	f.fixed = slot
}

func (b *uringBackend) removeFile(f *file) {
	if f.fixed < 0 {
		return
	}
	if err := b.ring.SetFile(uint32(f.fixed), -1); err == nil {
		b.freeFileSlots = append(b.freeFileSlots, f.fixed)
	}
	f.fixed = -1
}

func (b *uringBackend) poll(timeoutMS int) {
	if len(b.backlog) > 0 || b.ring.Pending() > 0 {
		b.flush()
	}
	fds := []unix.PollFd{{Fd: int32(b.efd), Events: unix.POLLIN}, {Fd: int32(b.meta.efd), Events: unix.POLLIN}}
	unix.Poll(fds, timeoutMS)
	var buf [8]byte
	unix.Read(b.efd, buf[:])
	b.reap()
	b.meta.reap()
}

func (b *uringBackend) close() error {
	err := b.meta.close()
	if b.loop != nil {
		b.loop.DelFD(b.efd)
	}
	unix.Close(b.efd)
	if cerr := b.ring.Close(); err == nil {
		err = cerr
	}
	return err
}
