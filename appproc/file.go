package appproc

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"sync"
	"sync/atomic"

	"saturn/proto"
)

// File is a file or directory open through diskproc. It implements
// fs.File, fs.ReadDirFile, io.ReaderAt, io.Seeker, and, when opened for
// writing, io.Writer and io.WriterAt, with Sync. It is safe for concurrent
// use: ReadAt and WriteAt run in parallel, and Read, Write and Seek share
// one offset under a lock, as with os.File.
type File struct {
	fsys        *FS
	name        string
	handle      uint64
	flags       proto.OpenFlag
	typ         proto.FileType
	directAlign uint32
	closed      atomic.Bool

	mu      sync.Mutex // guards offset and the directory listing state
	offset  int64
	cookie  uint64         // ReadDir: where the next listing starts
	pending []proto.Dirent // ReadDir: listed but not yet returned
	dirEOF  bool
}

// Name is the name the file was opened with.
func (f *File) Name() string { return f.name }

// Handle is diskproc's handle for the file (for the event-style API).
func (f *File) Handle() uint64 { return f.handle }

// DirectAlign is the alignment O_DIRECT requires of offsets and lengths
// for this file, or 0 if it was not opened with O_DIRECT.
func (f *File) DirectAlign() int { return int(f.directAlign) }

var (
	errWriteAtAppend = errors.New("appproc: WriteAt on a file opened with O_APPEND")
	errNegative      = errors.New("appproc: negative offset")
	errWhence        = errors.New("appproc: invalid whence")
)

func (f *File) pathErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return &fs.PathError{Op: op, Path: f.name, Err: err}
}

func (f *File) checkOpen(op string) error {
	if f == nil {
		return fs.ErrInvalid
	}
	if f.closed.Load() {
		return f.pathErr(op, fs.ErrClosed)
	}
	return nil
}

// Stat describes the open file.
func (f *File) Stat() (fs.FileInfo, error) {
	if err := f.checkOpen("stat"); err != nil {
		return nil, err
	}
	out := make([]byte, proto.StatSize)
	if _, err := f.fsys.do(&Request{Op: proto.OpStat, Handle: f.handle, Out: out, Replay: true}); err != nil {
		return nil, f.pathErr("stat", err)
	}
	st, err := proto.DecodeStat(out)
	if err != nil {
		return nil, f.pathErr("stat", err)
	}
	return &fileInfo{name: path.Base(f.name), st: st}, nil
}

// Read reads from the file's offset and advances it.
func (f *File) Read(p []byte) (int, error) {
	if err := f.checkOpen("read"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.readAt(p, f.offset)
	f.offset += int64(n)
	if err == io.EOF && n > 0 {
		err = nil // io.Reader: report the end on the next call
	}
	return n, f.pathErr("read", err)
}

// ReadAt reads len(p) bytes at off (io.ReaderAt): fewer only at the end
// of the file, with io.EOF. A read larger than one buffer travels as
// several requests in flight at once.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if err := f.checkOpen("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, f.pathErr("read", errNegative)
	}
	n, err := f.readAt(p, off)
	return n, f.pathErr("read", err)
}

func (f *File) readAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) <= f.fsys.ch.BufferSize() {
		return f.readPiece(p, off) // without chunked's closure, which escapes
	}
	return f.chunked(p, off, f.readPiece)
}

// readPiece reads b, at most one buffer, at off.
func (f *File) readPiece(b []byte, off int64) (int, error) {
	done := 0
	for done < len(b) { // a short read before the end is retried for the rest
		resp, err := f.fsys.do(&Request{Op: proto.OpRead, Handle: f.handle, Offset: uint64(off) + uint64(done), Out: b[done:], Replay: true})
		if err != nil {
			return done, err
		}
		if resp.N == 0 {
			return done, io.EOF
		}
		done += resp.N
	}
	return done, nil
}

// maxParallel bounds the requests one ReadAt or WriteAt keeps in flight.
const maxParallel = 16

// chunked splits p into buffer-sized pieces and runs each through do, in
// parallel, and reports how many bytes from the start were done: a short
// piece ends the count (with its error, or io.EOF) even if later pieces
// did more.
func (f *File) chunked(p []byte, off int64, do func([]byte, int64) (int, error)) (int, error) {
	bs := f.fsys.ch.BufferSize()
	pieces := (len(p) + bs - 1) / bs
	if pieces == 1 {
		return do(p, off)
	}
	ns := make([]int, pieces)
	errs := make([]error, pieces)
	var next atomic.Int64
	var wg sync.WaitGroup
	work := func() {
		defer wg.Done()
		for {
			i := int(next.Add(1) - 1)
			if i >= pieces {
				return
			}
			lo := i * bs
			hi := min(lo+bs, len(p))
			ns[i], errs[i] = do(p[lo:hi], off+int64(lo))
		}
	}
	workers := min(pieces, maxParallel)
	wg.Add(workers)
	for range workers - 1 {
		go work()
	}
	work()
	wg.Wait()
	total := 0
	for i := range pieces {
		total += ns[i]
		if errs[i] != nil {
			return total, errs[i]
		}
		if lo := i * bs; ns[i] < min(lo+bs, len(p))-lo {
			return total, io.EOF
		}
	}
	return total, nil
}

// Write writes at the file's offset and advances it; on a file opened with
// O_APPEND every write goes to the end. Positioned writes are replayed if
// diskproc restarts; appending writes are not (they are not idempotent)
// and fail with ECONNRESET if diskproc dies during one.
func (f *File) Write(p []byte) (int, error) {
	if err := f.checkOpen("write"); err != nil {
		return 0, err
	}
	if f.flags&proto.OpenAppend != 0 {
		return f.appendWrite(p)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.writeAt(p, f.offset)
	f.offset += int64(n)
	return n, f.pathErr("write", err)
}

func (f *File) appendWrite(p []byte) (int, error) {
	f.mu.Lock() // appends land in the order they are written
	defer f.mu.Unlock()
	bs := f.fsys.ch.BufferSize()
	done := 0
	for done < len(p) {
		piece := p[done:min(done+bs, len(p))]
		resp, err := f.fsys.do(&Request{Op: proto.OpWrite, Flags: proto.FlagAppend, Handle: f.handle, In: piece})
		if err != nil {
			return done, f.pathErr("write", err)
		}
		if resp.Result == 0 {
			return done, f.pathErr("write", io.ErrShortWrite)
		}
		done += int(resp.Result)
	}
	return done, nil
}

// WriteAt writes len(p) bytes at off (io.WriterAt), as several requests
// in flight at once when p is larger than one buffer.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if err := f.checkOpen("write"); err != nil {
		return 0, err
	}
	if f.flags&proto.OpenAppend != 0 {
		return 0, f.pathErr("write", errWriteAtAppend)
	}
	if off < 0 {
		return 0, f.pathErr("write", errNegative)
	}
	n, err := f.writeAt(p, off)
	return n, f.pathErr("write", err)
}

func (f *File) writeAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := f.chunked(p, off, func(b []byte, off int64) (int, error) {
		done := 0
		for done < len(b) {
			resp, err := f.fsys.do(&Request{Op: proto.OpWrite, Handle: f.handle, Offset: uint64(off) + uint64(done), In: b[done:], Replay: true})
			if err != nil {
				return done, err
			}
			if resp.Result == 0 {
				return done, io.ErrShortWrite
			}
			done += int(resp.Result)
		}
		return done, nil
	})
	if err == io.EOF { // a piece came back short: chunked's word for it
		err = io.ErrShortWrite
	}
	return n, err
}

// Seek sets the offset for the next Read or Write (io.Seeker).
func (f *File) Seek(offset int64, whence int) (int64, error) {
	if err := f.checkOpen("seek"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.offset
	case io.SeekEnd:
		fi, err := f.Stat()
		if err != nil {
			return 0, err
		}
		base = fi.Size()
	default:
		return 0, f.pathErr("seek", errWhence)
	}
	if base+offset < 0 {
		return 0, f.pathErr("seek", errNegative)
	}
	f.offset = base + offset
	if f.typ == proto.TypeDir && f.offset == 0 { // rewind a listing, as os.File does
		f.cookie, f.pending, f.dirEOF = 0, nil, false
	}
	return f.offset, nil
}

// Sync flushes the file to stable storage (fsync).
func (f *File) Sync() error {
	if err := f.checkOpen("sync"); err != nil {
		return err
	}
	_, err := f.fsys.do(&Request{Op: proto.OpFsync, Handle: f.handle, Replay: true})
	return f.pathErr("sync", err)
}

// Close closes the file. Calls in flight finish first (diskproc closes the
// descriptor after them); later calls fail with fs.ErrClosed.
func (f *File) Close() error {
	if f == nil {
		return fs.ErrInvalid
	}
	if !f.closed.CompareAndSwap(false, true) {
		return f.pathErr("close", fs.ErrClosed)
	}
	_, err := f.fsys.do(&Request{Op: proto.OpClose, Handle: f.handle, Replay: true})
	return f.pathErr("close", err)
}

// ReadDir lists the directory (fs.ReadDirFile): with n > 0 at most n
// entries, and io.EOF once none are left; with n <= 0 all that are left.
// Entries come in the directory's order.
func (f *File) ReadDir(n int) ([]fs.DirEntry, error) {
	if err := f.checkOpen("readdirent"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fs.DirEntry
	for n <= 0 || len(out) < n {
		if len(f.pending) == 0 {
			if f.dirEOF {
				break
			}
			if err := f.fetchDir(); err != nil {
				return out, f.pathErr("readdirent", err)
			}
			continue
		}
		d := f.pending[0]
		f.pending = f.pending[1:]
		out = append(out, &dirEntry{fsys: f.fsys, dir: f.name, d: d})
	}
	if n > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}

// fetchDir gets the next buffer of entries. mu held.
func (f *File) fetchDir() error {
	buf := make([]byte, f.fsys.ch.BufferSize())
	resp, err := f.fsys.do(&Request{Op: proto.OpReaddir, Handle: f.handle, Offset: f.cookie, Out: buf, Replay: true})
	if err != nil {
		return err
	}
	if resp.N == 0 {
		f.dirEOF = true
		return nil
	}
	ds, err := proto.DecodeDirents(buf[:resp.N])
	if err != nil {
		return err
	}
	f.pending = append(f.pending, ds...)
	f.cookie = resp.Aux
	return nil
}
