package webserver

import (
	"errors"
	"io"
	"io/fs"
	"syscall"
)

// fileBody reads a served file through whichever of fs.File's optional
// abilities it has. io.ReaderAt is preferred: it keeps no offset, so ranges
// cost no Seek, and in saturn one ReadAt is one ring round trip to diskproc.
// A file with neither ReaderAt nor Seeker is read sequentially, and the
// server then does not offer ranges for it.
type fileBody struct {
	f      fs.File
	at     io.ReaderAt // nil when absent
	seeker io.Seeker   // nil when absent
	pos    int64       // f's offset, for Seek-less and Seek-based reads
	mem    []byte      // the whole file in memory (a cached one's kept contents), or nil

	cached    *shared // the cache's view, when the file is a cached one
	confirmed bool    // confirm found the cached stat current
}

func newFileBody(f fs.File) fileBody {
	b := fileBody{f: f}
	if s, ok := f.(*shared); ok {
		b.mem = s.data
		b.cached = s
	}
	b.at, _ = f.(io.ReaderAt)
	b.seeker, _ = f.(io.Seeker)
	return b
}

// positional reports whether any byte can be read without reading the ones
// before it, which serving a range needs.
func (b *fileBody) positional() bool { return b.at != nil || b.seeker != nil }

// spliceable reports whether the file is backed by a kernel descriptor (it
// offers syscall.Conn, as *os.File does) and can be positioned: then a
// connection's ReadFrom may move its bytes without copying them through
// user space. This tests an ability, not a type: an fs.FS that is not
// kernel-backed (diskproc's) simply takes the copy path.
func (b *fileBody) spliceable() bool {
	_, ok := b.f.(syscall.Conn)
	return ok && b.seeker != nil
}

// inMemory reports whether the bytes at [start, start+length) come from
// kept contents.
func (b *fileBody) inMemory(start, length int64) bool {
	return b.mem != nil && start+length <= int64(len(b.mem))
}

// confirm checks, once per response, that a cached file is still what the
// cache's stat says, with a Stat of the open file (an fstat; in saturn, one
// round trip to diskproc): the response head is built from the cached
// stat, which may be as old as Config.OpenFileCache. A file opened for
// this request was stat'ed just now and needs no check.
func (b *fileBody) confirm() error {
	if b.cached == nil || b.confirmed {
		return nil
	}
	fi, err := b.cached.f.Stat()
	if err != nil {
		return err
	}
	if !sameFile(fi, b.cached.fi) {
		return errChanged
	}
	b.confirmed = true
	return nil
}

var errCannotRewind = errors.New("webserver: file cannot be read backwards")

// readAt fills p with the bytes at off. A file that ends early is an
// io.ErrUnexpectedEOF: its size changed after the Stat that the response
// head was built from.
func (b *fileBody) readAt(p []byte, off int64) error {
	if b.at != nil {
		n, err := b.at.ReadAt(p, off)
		if n == len(p) {
			return nil
		}
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if off != b.pos {
		switch {
		case b.seeker != nil:
			if _, err := b.seeker.Seek(off, io.SeekStart); err != nil {
				return err
			}
		case off > b.pos:
			if _, err := io.CopyN(io.Discard, b.f, off-b.pos); err != nil {
				return err
			}
		default:
			return errCannotRewind
		}
		b.pos = off
	}
	n, err := io.ReadFull(b.f, p)
	b.pos += int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
