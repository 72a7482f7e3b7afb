package appproc

import (
	"io/fs"
	"path"
	"time"

	"saturn/proto"
)

// fileInfo is a diskproc stat record as an fs.FileInfo.
type fileInfo struct {
	name string
	st   proto.Stat
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.st.Size }
func (fi *fileInfo) ModTime() time.Time { return fi.st.Time() }
func (fi *fileInfo) IsDir() bool        { return fi.st.Type == proto.TypeDir }

// Sys is the *proto.Stat diskproc sent (inode, device, blocks, O_DIRECT
// alignment).
func (fi *fileInfo) Sys() any { return &fi.st }

func (fi *fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Perm&0o777) | typeMode(fi.st.Type)
	if fi.st.Perm&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if fi.st.Perm&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if fi.st.Perm&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func typeMode(t proto.FileType) fs.FileMode {
	switch t {
	case proto.TypeDir:
		return fs.ModeDir
	case proto.TypeSymlink:
		return fs.ModeSymlink
	case proto.TypeOther:
		return fs.ModeIrregular
	}
	return 0
}

// dirEntry is one directory record as an fs.DirEntry. Info stats the entry
// on demand, by its path.
type dirEntry struct {
	fsys *FS
	dir  string
	d    proto.Dirent
}

func (e *dirEntry) Name() string      { return e.d.Name }
func (e *dirEntry) IsDir() bool       { return e.d.Type == proto.TypeDir }
func (e *dirEntry) Type() fs.FileMode { return typeMode(e.d.Type) }
func (e *dirEntry) String() string    { return fs.FormatDirEntry(e) }

// Info describes the entry. For a symbolic link it describes the link, as
// fs.DirEntry asks, from the listing alone (diskproc does not lstat).
func (e *dirEntry) Info() (fs.FileInfo, error) {
	if e.d.Type == proto.TypeSymlink {
		return &fileInfo{name: e.d.Name, st: proto.Stat{Type: proto.TypeSymlink, Perm: 0o777, Ino: e.d.Ino}}, nil
	}
	return e.fsys.Stat(path.Join(e.dir, e.d.Name))
}
