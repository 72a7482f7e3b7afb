package diskproc

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// The sandbox: every path is resolved beneath the root by the kernel
// itself, with openat2(2) and RESOLVE_BENEATH, which refuses (EXDEV) any
// lookup that would leave the root through "..", an absolute path or a
// symbolic link, including one swapped in while the lookup runs: no check
// done in user space before an open can promise that. RESOLVE_NO_MAGICLINKS
// also refuses /proc-style links. diskproc checks paths before that too
// (proto.CheckPath): absolute paths and ".." components are refused
// outright, with their own reasons, so that apps get one rule that does
// not depend on where a ".." happens to lead.

// resolveFlags are the openat2 resolve flags of every lookup.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// openRoot opens the root directory, and checks that this kernel has
// openat2 (Linux 5.6): without it there is no sound way to keep lookups
// beneath the root, and diskproc refuses to start rather than serve files
// unsafely.
func openRoot(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("diskproc: root %s: %w", path, err)
	}
	probe, err := unix.Openat2(fd, ".", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolveFlags})
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ENOSYS) {
			return -1, fmt.Errorf("diskproc: this kernel lacks openat2 (Linux 5.6+), which diskproc needs to keep lookups beneath the root")
		}
		return -1, fmt.Errorf("diskproc: probing openat2 on root %s: %w", path, err)
	}
	unix.Close(probe)
	return fd, nil
}

// linuxOpenFlags translates proto's open flags. O_NONBLOCK makes opening a
// FIFO return at once instead of blocking a worker forever; it is cleared
// again once the file is known to be regular or a directory.
func linuxOpenFlags(f proto.OpenFlag) int {
	fl := unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	switch {
	case f&proto.OpenRead != 0 && f&proto.OpenWrite != 0:
		fl |= unix.O_RDWR
	case f&proto.OpenWrite != 0:
		fl |= unix.O_WRONLY
	default:
		fl |= unix.O_RDONLY
	}
	for _, m := range []struct {
		p proto.OpenFlag
		l int
	}{
		{proto.OpenCreate, unix.O_CREAT}, {proto.OpenTruncate, unix.O_TRUNC}, {proto.OpenExclusive, unix.O_EXCL},
		{proto.OpenAppend, unix.O_APPEND}, {proto.OpenDirect, unix.O_DIRECT}, {proto.OpenDirectory, unix.O_DIRECTORY},
	} {
		if f&m.p != 0 {
			fl |= m.l
		}
	}
	return fl
}

// opError is a failure with an errno and, when there is more to say, a
// reason for the app.
type opError struct {
	errno  syscall.Errno
	reason proto.Reason
	arg    uint32
}

func (e *opError) Error() string {
	return (&proto.DiskError{Errno: e.errno, Reason: e.reason, Arg: e.arg}).Error()
}

// errnoOf turns a system call's error into an opError, naming the reasons
// an app could not guess from the errno alone.
func errnoOf(err error, flags proto.OpenFlag) *opError {
	var oe *opError
	if errors.As(err, &oe) {
		return oe
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return &opError{errno: syscall.EIO}
	}
	switch {
	case errno == unix.EXDEV:
		return &opError{errno: errno, reason: proto.ReasonEscape}
	case errno == unix.EINVAL && flags&proto.OpenDirect != 0:
		return &opError{errno: errno, reason: proto.ReasonDirectUnsupported}
	}
	return &opError{errno: errno}
}

// openResult is what an open leaves for the loop.
type openResult struct {
	fd   int
	stat proto.Stat
}

// openBeneath opens path beneath root with flags and mode, refuses
// anything but a regular file or a directory, and stats what it opened.
//
// exclSince is set for an exclusive create replayed after a restart whose
// first attempt may have happened: if the file exists and its status
// changed since then (with a margin for coarse file-system clocks), it is
// taken as the one the first attempt created, since nobody else could
// have been told it exists.
func openBeneath(root int, path string, flags proto.OpenFlag, mode uint32, exclSince time.Time) (openResult, error) {
	if flags&proto.OpenCreate == 0 {
		mode = 0 // openat2 refuses a mode without O_CREAT
	}
	how := unix.OpenHow{Flags: uint64(linuxOpenFlags(flags)), Mode: uint64(mode), Resolve: resolveFlags}
	fd, err := unix.Openat2(root, path, &how)
	if err == unix.EEXIST && !exclSince.IsZero() {
		again := flags &^ (proto.OpenCreate | proto.OpenExclusive | proto.OpenTruncate)
		how.Flags, how.Mode = uint64(linuxOpenFlags(again)), 0
		if fd2, err2 := unix.Openat2(root, path, &how); err2 == nil {
			var sx unix.Statx_t
			if unix.Statx(fd2, "", unix.AT_EMPTY_PATH, unix.STATX_CTIME, &sx) == nil &&
				time.Unix(sx.Ctime.Sec, int64(sx.Ctime.Nsec)).After(exclSince.Add(-100*time.Millisecond)) {
				fd, err = fd2, nil
			} else {
				unix.Close(fd2)
			}
		}
	}
	if err != nil {
		return openResult{}, errnoOf(err, flags)
	}
	st, err := statFD(fd)
	if err != nil {
		unix.Close(fd)
		return openResult{}, errnoOf(err, flags)
	}
	if st.Type != proto.TypeRegular && st.Type != proto.TypeDir {
		unix.Close(fd)
		return openResult{}, &opError{errno: unix.EPERM, reason: proto.ReasonNotRegular}
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	if flags&proto.OpenDirect != 0 && st.DirectAlign == 0 {
		// The kernel did not say (no STATX_DIOALIGN); ask for what is
		// safe on every block device.
		st.DirectAlign, st.DirectMem = max(st.BlockSize, 512), 512
	}
	return openResult{fd: fd, stat: st}, nil
}

// statBeneath stats path beneath root, following symbolic links that stay
// inside it.
func statBeneath(root int, path string) (proto.Stat, error) {
	fd, err := unix.Openat2(root, path, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolveFlags})
	if err != nil {
		return proto.Stat{}, errnoOf(err, 0)
	}
	defer unix.Close(fd)
	st, err := statFD(fd)
	if err != nil {
		return proto.Stat{}, errnoOf(err, 0)
	}
	return st, nil
}

// statFD is statx on an open descriptor, as a proto.Stat.
func statFD(fd int) (proto.Stat, error) {
	var sx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_BASIC_STATS|unix.STATX_DIOALIGN, &sx); err != nil {
		return proto.Stat{}, err
	}
	st := proto.Stat{
		Size: int64(sx.Size), Perm: uint32(sx.Mode) & 0o7777, Type: fileType(uint32(sx.Mode)),
		ModTime: sx.Mtime.Sec*1e9 + int64(sx.Mtime.Nsec), Ino: sx.Ino,
		Dev:   unix.Mkdev(sx.Dev_major, sx.Dev_minor),
		Nlink: sx.Nlink, BlockSize: sx.Blksize, Blocks: sx.Blocks,
	}
	if sx.Mask&unix.STATX_DIOALIGN != 0 {
		st.DirectAlign, st.DirectMem = sx.Dio_offset_align, sx.Dio_mem_align
	}
	if st.Size < 0 {
		st.Size = 0
	}
	return st, nil
}

// fileType is the type a mode's S_IFMT bits give.
func fileType(mode uint32) proto.FileType {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return proto.TypeRegular
	case unix.S_IFDIR:
		return proto.TypeDir
	case unix.S_IFLNK:
		return proto.TypeSymlink
	}
	return proto.TypeOther
}

// reopen opens a file of a dead incarnation again for the new one (path
// beneath dir: the root, or the folder of the grant it was written under),
// never with create, truncate or exclusive, which already happened. ok is
// false when the path no longer leads to the same file.
func reopen(dir int, path string, r *record) (openResult, bool, error) {
	flags := r.flags &^ (proto.OpenCreate | proto.OpenTruncate | proto.OpenExclusive)
	res, err := openBeneath(dir, path, flags, 0, time.Time{})
	if err != nil {
		return res, false, err
	}
	if res.stat.Dev != r.dev || res.stat.Ino != r.ino {
		unix.Close(res.fd)
		return openResult{}, false, nil
	}
	return res, true, nil
}

// rootInfo describes the root for status, from the descriptor diskproc
// holds (running as its own user, it may not be allowed to walk the path
// to its root again): a root removed since has no links left.
func rootInfo(path string, root int) string {
	var st unix.Stat_t
	if err := unix.Fstat(root, &st); err != nil || st.Nlink == 0 {
		return path + " (missing)"
	}
	return path
}
