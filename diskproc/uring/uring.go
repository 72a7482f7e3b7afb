// Package uring is a minimal io_uring written over golang.org/x/sys: ring
// setup, the three mappings (submission ring, completion ring, submission
// entries), batched submit and reap, an eventfd for completions, and
// registered (fixed) buffers and files in sparse tables that grow and
// shrink one slot at a time.
//
// A Ring is not safe for concurrent use: one goroutine, preferably locked
// to its OS thread (task work for completions is queued to the thread that
// submitted), owns it.
//
// # Memory the kernel reads
//
// A submission entry holds raw addresses. The caller guarantees that every
// address it puts into an entry stays valid and reachable until the entry's
// completion is reaped: saturn only ever points entries at the channels'
// shared buffers, which are mapped for the server's whole life, never at Go
// heap memory.
package uring

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Opcodes and flags of the kernel ABI (include/uapi/linux/io_uring.h) that
// this package uses.
const (
	OpNop        = 0
	OpFsync      = 3
	OpReadFixed  = 4
	OpWriteFixed = 5
	OpRead       = 22
	OpWrite      = 23

	SQEFixedFile = 1 << 0 // FD is an index into the registered files
	FsyncData    = 1 << 0 // OpFsync: fdatasync

	setupClamp     = 1 << 4
	setupSubmitAll = 1 << 7

	featSingleMmap = 1 << 0
	featNoDrop     = 1 << 1

	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000

	enterGetEvents = 1 << 0

	registerEventfd       = 4
	registerEventfdAsync  = 7
	registerFiles2        = 13
	registerFilesUpdate2  = 14
	registerBuffers2      = 15
	registerBuffersUpdate = 16
	rsrcRegisterSparse    = 1 << 0
)

// SQE is a submission entry, laid out as struct io_uring_sqe.
type SQE struct {
	Opcode      uint8
	Flags       uint8
	IOPrio      uint16
	FD          int32
	Off         uint64
	Addr        uint64
	Len         uint32
	OpFlags     uint32 // rw_flags, fsync_flags, ...
	UserData    uint64
	BufIndex    uint16
	Personality uint16
	FileIndex   int32
	Addr3       uint64
	_           uint64
}

// CQE is a completion entry, laid out as struct io_uring_cqe.
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

// Compile-time size checks against the kernel's layouts.
var (
	_ [64 - unsafe.Sizeof(SQE{})]struct{}
	_ [unsafe.Sizeof(SQE{}) - 64]struct{}
	_ [16 - unsafe.Sizeof(CQE{})]struct{}
	_ [unsafe.Sizeof(CQE{}) - 16]struct{}
	_ [120 - unsafe.Sizeof(params{})]struct{}
	_ [unsafe.Sizeof(params{}) - 120]struct{}
)

type sqOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  sqOffsets
	cqOff                                                                  cqOffsets
}

// Ring is one io_uring instance.
type Ring struct {
	fd       int
	sqMem    []byte // the submission ring: head, tail, mask, array
	cqMem    []byte // the completion ring: head, tail, mask, cqes
	sqeMem   []byte // the submission entries
	features uint32

	sqHead, sqTail *atomic.Uint32
	sqMask, sqSize uint32
	sqArray        []uint32
	sqes           []SQE
	cqHead, cqTail *atomic.Uint32
	cqMask, cqSize uint32
	cqes           []CQE

	tail    uint32 // our next submission position (published on Submit)
	pending uint32 // entries filled but not yet handed to the kernel

	// Arguments of io_uring_register live here, in the heap, because the
	// kernel reads addresses stored inside them: a stack variable could
	// move (stacks grow by copying) between taking its address and the
	// system call.
	argFD  int32
	argIov unix.Iovec
	argUp  rsrcUpdate
	argReg rsrcRegister
}

// ErrUnavailable: io_uring cannot be used here (missing from the kernel,
// disabled by sysctl, or refused to this process).
var ErrUnavailable = errors.New("uring: io_uring unavailable")

// New sets up a ring with at least entries submission slots (the kernel
// rounds up to a power of two, and clamps to its maximum) and twice as
// many completion slots.
func New(entries uint32) (*Ring, error) {
	var p params
	p.flags = setupClamp | setupSubmitAll
	fd, err := setup(entries, &p)
	if err == unix.EINVAL { // a kernel older than SUBMIT_ALL (5.18)
		p = params{flags: setupClamp}
		fd, err = setup(entries, &p)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	r := &Ring{fd: fd, features: p.features}
	if p.features&featNoDrop == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: the kernel lacks IORING_FEAT_NODROP (Linux 5.5+), so completions could be lost", ErrUnavailable)
	}
	if err := r.mapRings(&p); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func setup(entries uint32, p *params) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, errno
	}
	unix.CloseOnExec(int(fd))
	return int(fd), nil
}

// unavailable explains why setup failed, with the sysctl when it is the
// cause.
func unavailable(err error) error {
	sysctl := ""
	if b, rerr := os.ReadFile("/proc/sys/kernel/io_uring_disabled"); rerr == nil {
		sysctl = strings.TrimSpace(string(b))
	}
	switch {
	case err == unix.ENOSYS:
		return fmt.Errorf("%w: the kernel has no io_uring (ENOSYS)", ErrUnavailable)
	case (err == unix.EPERM || err == unix.EACCES) && sysctl != "" && sysctl != "0":
		return fmt.Errorf("%w: disabled by sysctl kernel.io_uring_disabled=%s (%v)", ErrUnavailable, sysctl, err)
	}
	return fmt.Errorf("%w: io_uring_setup: %v", ErrUnavailable, err)
}

// Probe reports whether a ring can be set up here, and why not.
func Probe() error {
	r, err := New(2)
	if err != nil {
		return err
	}
	return r.Close()
}

func (r *Ring) mapRings(p *params) error {
	sqSize := uintptr(p.sqOff.array) + uintptr(p.sqEntries)*4
	cqSize := uintptr(p.cqOff.cqes) + uintptr(p.cqEntries)*unsafe.Sizeof(CQE{})
	var err error
	// The three mappings. With IORING_FEAT_SINGLE_MMAP the kernel serves
	// both rings from one object and either offset maps it; mapping them
	// separately works on every kernel.
	if r.sqMem, err = mmap(r.fd, offSQRing, sqSize); err != nil {
		return fmt.Errorf("uring: mapping the submission ring: %w", err)
	}
	if r.cqMem, err = mmap(r.fd, offCQRing, cqSize); err != nil {
		return fmt.Errorf("uring: mapping the completion ring: %w", err)
	}
	if r.sqeMem, err = mmap(r.fd, offSQEs, uintptr(p.sqEntries)*unsafe.Sizeof(SQE{})); err != nil {
		return fmt.Errorf("uring: mapping the submission entries: %w", err)
	}
	r.sqHead = u32(r.sqMem, p.sqOff.head)
	r.sqTail = u32(r.sqMem, p.sqOff.tail)
	r.sqMask = u32(r.sqMem, p.sqOff.ringMask).Load()
	r.sqSize = u32(r.sqMem, p.sqOff.ringEntries).Load()
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Pointer(&r.sqMem[p.sqOff.array])), p.sqEntries)
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.cqHead = u32(r.cqMem, p.cqOff.head)
	r.cqTail = u32(r.cqMem, p.cqOff.tail)
	r.cqMask = u32(r.cqMem, p.cqOff.ringMask).Load()
	r.cqSize = u32(r.cqMem, p.cqOff.ringEntries).Load()
	r.cqes = unsafe.Slice((*CQE)(unsafe.Pointer(&r.cqMem[p.cqOff.cqes])), p.cqEntries)
	r.tail = r.sqTail.Load()
	// Identity mapping of the indirection array, set once: slot i of the
	// array always names entry i.
	for i := range r.sqArray {
		r.sqArray[i] = uint32(i)
	}
	return nil
}

func mmap(fd int, off int64, size uintptr) ([]byte, error) {
	return unix.Mmap(fd, off, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
}

// u32 is the word at off in a ring mapping. The kernel gives the offsets;
// they are within the mapping and 4-byte aligned.
func u32(mem []byte, off uint32) *atomic.Uint32 {
	_ = mem[off+3]
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off]))
}

// SQSize and CQSize are the ring sizes the kernel chose.
func (r *Ring) SQSize() int { return int(r.sqSize) }
func (r *Ring) CQSize() int { return int(r.cqSize) }

// GetSQE returns a cleared submission entry to fill, or nil when the ring
// is full (call Submit first). The entry goes to the kernel at the next
// Submit.
func (r *Ring) GetSQE() *SQE {
	head := r.sqHead.Load()
	if r.tail-head >= r.sqSize {
		return nil
	}
	e := &r.sqes[r.tail&r.sqMask]
	*e = SQE{}
	r.tail++
	r.pending++
	return e
}

// Pending is the number of entries filled but not yet submitted.
func (r *Ring) Pending() int { return int(r.pending) }

// Submit hands every filled entry to the kernel in one io_uring_enter and
// reports how many it took.
func (r *Ring) Submit() (int, error) {
	if r.pending == 0 {
		return 0, nil
	}
	r.sqTail.Store(r.tail) // release: the entries' contents before the tail
	n, err := r.submitRaw(r.pending)
	if err != nil {
		return 0, err
	}
	r.pending -= uint32(n)
	return n, nil
}

// Wait blocks until at least one completion is ready (for tests and tools;
// servers wait on the eventfd instead).
func (r *Ring) Wait() error {
	r.sqTail.Store(r.tail)
	n, err := r.enter(r.pending, 1, enterGetEvents)
	if err == nil {
		r.pending -= uint32(n)
	}
	return err
}

// submitRaw is io_uring_enter without waiting for completions, made
// without telling Go's scheduler (RawSyscall): such a call never sleeps on
// I/O (the kernel completes at once what the page cache holds and hands
// the rest to the device or its workers), so it is short, and a scheduler
// told of it hands the thread's processor to another thread whenever it
// lasts past sysmon's 20 µs tick, which a batch of page-cache reads often
// does. The price: a garbage collection waits for the batch's copies.
func (r *Ring) submitRaw(toSubmit uint32) (int, error) {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), 0, 0, 0, 0)
		if errno != unix.EINTR {
			return entered(n, errno)
		}
	}
}

// entered is what an io_uring_enter that was not interrupted returns: the
// count of submissions it consumed, or its error.
func entered(n uintptr, errno unix.Errno) (int, error) {
	if errno != 0 {
		return 0, fmt.Errorf("uring: io_uring_enter: %w", errno)
	}
	return int(n), nil
}

func (r *Ring) enter(toSubmit, minComplete, flags uint32) (int, error) {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(toSubmit), uintptr(minComplete), uintptr(flags), 0, 0)
		if errno != unix.EINTR {
			return entered(n, errno)
		}
	}
}

// Reap calls fn for every ready completion, in order, and hands their
// slots back to the kernel. fn must not call Reap.
func (r *Ring) Reap(fn func(*CQE)) int {
	head := r.cqHead.Load()
	tail := r.cqTail.Load() // acquire: the entries' contents after the tail
	n := 0
	for ; head != tail; head++ {
		c := r.cqes[head&r.cqMask]
		fn(&c)
		n++
	}
	r.cqHead.Store(head)
	return n
}

// RegisterEventfd makes the kernel signal fd whenever it posts a completion.
func (r *Ring) RegisterEventfd(fd int) error {
	r.argFD = int32(fd)
	return r.register(registerEventfd, unsafe.Pointer(&r.argFD), 1)
}

// RegisterEventfdAsync makes the kernel signal fd only for completions
// posted after the io_uring_enter that submitted them returned (a disk
// read, an fsync), not for those the submission itself completed inline (a
// read from the page cache), which the submitter reaps right after it
// anyway. Linux 5.2+.
func (r *Ring) RegisterEventfdAsync(fd int) error {
	r.argFD = int32(fd)
	return r.register(registerEventfdAsync, unsafe.Pointer(&r.argFD), 1)
}

type rsrcRegister struct {
	nr    uint32
	flags uint32
	resv2 uint64
	data  uint64
	tags  uint64
}

type rsrcUpdate struct {
	offset uint32
	resv   uint32
	data   uint64
	tags   uint64
	nr     uint32
	resv2  uint32
}

// RegisterSparseBuffers creates an empty table of n fixed buffers, to be
// filled one slot at a time with SetBuffer.
func (r *Ring) RegisterSparseBuffers(n uint32) error {
	r.argReg = rsrcRegister{nr: n, flags: rsrcRegisterSparse}
	return r.register(registerBuffers2, unsafe.Pointer(&r.argReg), uint32(unsafe.Sizeof(r.argReg)))
}

// SetBuffer registers mem as fixed buffer slot (mem nil clears the slot).
// OpReadFixed and OpWriteFixed with BufIndex slot may then address any
// range inside mem. mem must stay mapped until the slot is cleared and the
// entries that used it have completed.
func (r *Ring) SetBuffer(slot uint32, mem []byte) error {
	r.argIov = unix.Iovec{}
	if len(mem) > 0 {
		r.argIov.Base = &mem[0]
		r.argIov.SetLen(len(mem))
	}
	r.argUp = rsrcUpdate{offset: slot, data: uint64(uintptr(unsafe.Pointer(&r.argIov))), nr: 1}
	return r.register(registerBuffersUpdate, unsafe.Pointer(&r.argUp), uint32(unsafe.Sizeof(r.argUp)))
}

// RegisterSparseFiles creates an empty table of n fixed files.
func (r *Ring) RegisterSparseFiles(n uint32) error {
	r.argReg = rsrcRegister{nr: n, flags: rsrcRegisterSparse}
	return r.register(registerFiles2, unsafe.Pointer(&r.argReg), uint32(unsafe.Sizeof(r.argReg)))
}

// SetFile puts fd into fixed file slot (fd -1 clears it). The kernel takes
// its own reference: closing fd afterwards does not close the slot's file.
func (r *Ring) SetFile(slot uint32, fd int) error {
	r.argFD = int32(fd)
	r.argUp = rsrcUpdate{offset: slot, data: uint64(uintptr(unsafe.Pointer(&r.argFD))), nr: 1}
	return r.register(registerFilesUpdate2, unsafe.Pointer(&r.argUp), uint32(unsafe.Sizeof(r.argUp)))
}

func (r *Ring) register(op uint32, arg unsafe.Pointer, nr uint32) error {
	for {
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), uintptr(op), uintptr(arg), uintptr(nr), 0, 0)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return fmt.Errorf("uring: io_uring_register(%d): %w", op, errno)
	}
}

// Close unmaps the rings and closes the ring's descriptor; the kernel
// cancels or finishes what is still in flight.
func (r *Ring) Close() error {
	var errs []error
	for _, m := range [][]byte{r.sqeMem, r.cqMem, r.sqMem} {
		if m != nil {
			errs = append(errs, unix.Munmap(m))
		}
	}
	r.sqeMem, r.cqMem, r.sqMem = nil, nil, nil
	if r.fd >= 0 {
		errs = append(errs, unix.Close(r.fd))
		r.fd = -1
	}
	return errors.Join(errs...)
}
