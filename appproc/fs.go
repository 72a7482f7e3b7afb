package appproc

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"saturn/proto"
)

// FS is diskproc's root seen through one app's channel to it: an io/fs
// file system (fs.FS, fs.StatFS, fs.ReadDirFS, fs.ReadFileFS) that passes
// testing/fstest.TestFS, with OpenFile, Create and WriteFile for writing.
// Every call becomes entries on the channel's ring; reads and writes
// larger than one buffer are split into several entries in flight at once.
// An FS is safe for concurrent use, as are the Files it opens.
//
// Names follow io/fs: slash-separated, relative to the root, without "."
// or ".." elements except "." for the root itself (fs.ValidPath); anything
// else fails with fs.ErrInvalid before it reaches diskproc. diskproc
// itself refuses absolute paths, ".." and symbolic links that lead out of
// its root, whatever an app sends.
type FS struct {
	ch *Channel
}

// DiskServer is the name of the disk server's channel.
const DiskServer = "diskproc"

// FS returns the app's view of diskproc's root.
func (a *App) FS() (*FS, error) {
	ch, err := a.Channel(DiskServer)
	if err != nil {
		return nil, err
	}
	return NewFS(ch), nil
}

// NewFS is the file system served on ch, a channel to diskproc.
func NewFS(ch *Channel) *FS { return &FS{ch: ch} }

// Channel is the channel the file system's requests travel on.
func (fsys *FS) Channel() *Channel { return fsys.ch }

// do runs one request and turns a diskproc error into a *proto.DiskError
// when diskproc explained it.
func (fsys *FS) do(req *Request) (Response, error) {
	resp, err := fsys.ch.Do(context.Background(), req)
	if err != nil {
		err = diskErr(err, resp.Aux)
	}
	return resp, err
}

// diskErr is err as a *proto.DiskError when diskproc explained it in aux.
// Apart from do so that a call that succeeds allocates nothing for it
// (errors.As takes the errno's address).
func diskErr(err error, aux uint64) error {
	var errno syscall.Errno
	if errors.As(err, &errno) && aux != 0 {
		return proto.DiskErr(-int64(errno), aux)
	}
	return err
}

// Open opens name for reading (fs.FS). The result is a *File.
func (fsys *FS) Open(name string) (fs.File, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err // a nil *File must not become a non-nil fs.File
	}
	return f, nil
}

// Create creates or truncates name for reading and writing, as os.Create.
func (fsys *FS) Create(name string) (*File, error) {
	return fsys.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile opens name with os.O_* flags (O_RDONLY, O_WRONLY, O_RDWR,
// O_CREATE, O_TRUNC, O_EXCL, O_APPEND, and syscall.O_DIRECT) and, when it
// creates the file, permissions perm (0o777 at most). O_DIRECT files need
// offsets and lengths aligned as File.DirectAlign says.
func (fsys *FS) OpenFile(name string, flag int, perm fs.FileMode) (*File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	flags, err := openFlags(flag)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if perm&^fs.ModePerm != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("appproc: only permission bits (0o777) may be given")}
	}
	resp, err := fsys.do(&Request{
		Op: proto.OpOpen, In: []byte(name), Aux: uint32(len(name)),
		Args: [3]uint64{uint64(flags), uint64(perm)},
		// diskproc answers a replayed open with the handle its first
		// attempt made, so even an exclusive create may be replayed.
		Replay: true,
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info := proto.DecodeOpenInfo(resp.Aux)
	return &File{fsys: fsys, name: name, handle: uint64(resp.Result), flags: flags, typ: info.Type, directAlign: info.DirectAlign}, nil
}

// openFlags translates os.O_* flags to proto's.
func openFlags(flag int) (proto.OpenFlag, error) {
	var f proto.OpenFlag
	switch flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) {
	case os.O_RDONLY:
		f = proto.OpenRead
	case os.O_WRONLY:
		f = proto.OpenWrite
	case os.O_RDWR:
		f = proto.OpenRead | proto.OpenWrite
	default:
		return 0, errors.New("appproc: bad access mode")
	}
	rest := flag &^ (os.O_RDONLY | os.O_WRONLY | os.O_RDWR | syscall.O_CLOEXEC | syscall.O_LARGEFILE)
	for _, m := range []struct {
		os int
		p  proto.OpenFlag
	}{
		{os.O_CREATE, proto.OpenCreate}, {os.O_TRUNC, proto.OpenTruncate}, {os.O_EXCL, proto.OpenExclusive},
		{os.O_APPEND, proto.OpenAppend}, {syscall.O_DIRECT, proto.OpenDirect}, {syscall.O_DIRECTORY, proto.OpenDirectory},
	} {
		if rest&m.os != 0 {
			f |= m.p
			rest &^= m.os
		}
	}
	if rest != 0 {
		return 0, errors.New("appproc: open flags diskproc does not serve (O_SYNC, O_NOFOLLOW, ...)")
	}
	if err := f.Check(); err != nil {
		return 0, err
	}
	return f, nil
}

// Stat describes name (fs.StatFS), following symbolic links that stay
// inside the root.
func (fsys *FS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	out := make([]byte, proto.StatSize)
	_, err := fsys.do(&Request{Op: proto.OpStat, Flags: proto.FlagPath, In: []byte(name), Aux: uint32(len(name)), Out: out, Replay: true})
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	st, err := proto.DecodeStat(out)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return &fileInfo{name: path.Base(name), st: st}, nil
}

// ReadDir lists the directory name, sorted by name (fs.ReadDirFS).
func (fsys *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	list, err := f.ReadDir(-1)
	slices.SortFunc(list, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return list, err
}

// ReadFile reads the whole of name (fs.ReadFileFS): one open, one stat,
// and the reads in parallel.
func (fsys *FS) ReadFile(name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	data := make([]byte, 0, size+1) // +1: see the end without a second round trip when the size held
	for {
		if len(data) == cap(data) {
			data = slices.Grow(data, max(len(data), 64<<10))
		}
		n, err := f.ReadAt(data[len(data):cap(data)], int64(len(data)))
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return data, err
		}
	}
}

// WriteFile writes data to name, creating it with perm or truncating it,
// as os.WriteFile.
func (fsys *FS) WriteFile(name string, data []byte, perm fs.FileMode) error {
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
