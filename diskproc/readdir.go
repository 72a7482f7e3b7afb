package diskproc

import (
	"encoding/binary"
	"syscall"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// readdir fills out with directory records of f from cookie on (see
// proto.AppendDirent) and returns the bytes written and the cookie to pass
// next. The cookie is the kernel's d_off of the last entry written: a
// position lseek(2) understands, stable across calls even while entries
// come and go. "." and ".." are left out.
//
// The directory's file position is shared by every request on the handle,
// so the seek and the reads run under the file's dirMu.
func readdir(f *file, out []byte, cookie int64) (int, uint64, error) {
	f.dirMu.Lock()
	defer f.dirMu.Unlock()
	if _, err := unix.Seek(f.fd, cookie, 0); err != nil {
		return 0, 0, err
	}
	var raw [16 << 10]byte
	written, next := 0, uint64(cookie)
	for {
		n, err := retryEINTR(func() (int, error) { return unix.Getdents(f.fd, raw[:]) })
		if err != nil {
			return 0, 0, err
		}
		if n == 0 {
			return written, next, nil // the end of the directory
		}
		for off := 0; off+19 <= n; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			ino := binary.LittleEndian.Uint64(raw[off:])
			doff := binary.LittleEndian.Uint64(raw[off+8:])
			reclen := int(binary.LittleEndian.Uint16(raw[off+16:]))
			if reclen < 19 || off+reclen > n {
				return 0, 0, syscall.EIO // the kernel does not do this
			}
			name := raw[off+19 : off+reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			typ := direntType(raw[off+18])
			off += reclen
			if s := string(name); s == "." || s == ".." {
				next = doff
				continue
			}
			k := proto.AppendDirent(out[written:], proto.Dirent{Ino: ino, Type: typ, Name: string(name)})
			if k == 0 {
				if written == 0 {
					return 0, 0, &opError{errno: unix.EINVAL, reason: proto.ReasonBufferSmall, arg: uint32(proto.DirentSize(string(name)))}
				}
				return written, next, nil
			}
			written += k
			next = doff
		}
	}
}

// direntType is the type a directory record's d_type gives: the type bits
// of a mode, shifted down (DTTOIF in dirent.h undoes it), or DT_UNKNOWN
// from a file system that does not say.
func direntType(t byte) proto.FileType {
	if t == unix.DT_UNKNOWN {
		return proto.TypeUnknown
	}
	return fileType(uint32(t) << 12)
}
