package diskproc

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// opKind is what an op does.
type opKind uint8

const (
	opRead opKind = iota
	opWrite
	opFsync
	opOpen
	opStat     // of an open file
	opStatPath // of a path
	opReaddir
)

// isData reports whether the backend proper (io_uring, or the workers)
// carries the op; the others are metadata and go to the worker pool.
func (k opKind) isData() bool { return k <= opFsync }

// op is one accepted request on its way through a backend. The loop
// creates it and owns it again when the backend hands it back; in between,
// the backend (and at most one worker) owns it.
type op struct {
	kind opKind
	app  *appState
	sub  proto.Submission
	file *file  // read, write, fsync, stat, readdir
	buf  []byte // the app's buffer, taken from Loans: data in or room out

	off      int64 // read, write; -1 appends
	datasync bool  // fsync

	// open and stat of a path
	path      string
	under     *writableDir // open for writing under a grant: path is relative to its folder
	flags     proto.OpenFlag
	mode      uint32
	rec       *record   // open: the intent slot
	exclSince time.Time // open: a replayed exclusive create (see openBeneath)

	// Results, set by whoever carried the op out.
	res    int64 // bytes, or 0
	err    *opError
	aux    uint64 // readdir: the next cookie
	opened openResult
	stat   proto.Stat
}

// run carries the op out with blocking system calls: on a worker thread.
func (o *op) run(root int) {
	var n int
	var err error
	switch o.kind {
	case opRead:
		n, err = retryEINTR(func() (int, error) { return unix.Pread(o.file.fd, o.buf, o.off) })
	case opWrite:
		if o.off < 0 {
			n, err = retryEINTR(func() (int, error) { return unix.Write(o.file.fd, o.buf) })
		} else {
			n, err = retryEINTR(func() (int, error) { return unix.Pwrite(o.file.fd, o.buf, o.off) })
		}
	case opFsync:
		if o.datasync {
			err = unix.Fdatasync(o.file.fd)
		} else {
			err = unix.Fsync(o.file.fd)
		}
	case opOpen:
		dir, path := root, o.path
		if o.under != nil {
			dir, path = o.under.fd, o.under.rel(o.path)
		}
		o.opened, err = openBeneath(dir, path, o.flags, o.mode, o.exclSince)
	case opStat:
		o.stat, err = statFD(o.file.fd)
		if err == nil {
			o.stat.Encode(o.buf)
			n = proto.StatSize
		}
	case opStatPath:
		o.stat, err = statBeneath(root, o.path)
		if err == nil {
			o.stat.Encode(o.buf)
			n = proto.StatSize
		}
	case opReaddir:
		n, o.aux, err = readdir(o.file, o.buf, o.off)
	}
	o.res = int64(n)
	if err != nil {
		o.res = 0
		o.err = errnoOf(err, o.flags)
	}
}

func retryEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != syscall.EINTR {
			return n, err
		}
	}
}
