package webserver

import (
	"container/list"
	"errors"
	"io"
	"io/fs"
	"sync"
	"time"
)

// fileCache keeps regular files open between requests (Config.OpenFileCache).
// A cached file is shared by every request for it and read with ReadAt only,
// which keeps no offset, so sharing needs no lock. Entries are checked again
// with one Stat once older than the validity, and evicted least recently
// used first; an evicted file is closed when its last reader lets go.
//
// With Config.ContentCache the cache also keeps the contents of files up to
// maxFileData bytes, maxData in all: read once when the file is opened and
// again at every check, so that what is served is never older than the
// validity, and dropped least recently used first when they do not fit.
// Contents are replaced, never written into, so a request keeps reading the
// ones it started with.
//
// Locks: mu guards entries, lru, dataBytes and every entry's fields; it is
// never held across a call to the file system.
type fileCache struct {
	root     fs.FS
	validity time.Duration
	max      int

	maxData, maxFileData int64 // contents kept, in all and per file; 0: none

	// clock is the time entries are checked against: time.Now, or a
	// test's own, set before the server serves.
	clock func() time.Time

	mu        sync.Mutex
	entries   map[string]*cachedFile
	lru       *list.List // of *cachedFile, most recently used at the front
	dataBytes int64      // contents kept now
}

type cachedFile struct {
	name    string
	f       fs.File
	at      io.ReaderAt
	fi      fs.FileInfo
	checked time.Time
	refs    int
	gone    bool // evicted: close on the last release
	elem    *list.Element
	data    []byte // the contents as of a check, if kept (see keep); else nil
}

func newFileCache(root fs.FS, validity time.Duration, max int, maxData, maxFileData int64) *fileCache {
	return &fileCache{root: root, validity: validity, max: max, maxData: maxData, maxFileData: min(maxFileData, maxData),
		clock: time.Now, entries: map[string]*cachedFile{}, lru: list.New()}
}

// get returns name's cached file (release it when done), or, for a file it
// does not cache (a directory, a file without ReadAt), the file opened and
// stat'ed in the ordinary way, which the caller closes.
func (c *fileCache) get(name string, now time.Time) (*cachedFile, fs.File, fs.FileInfo, error) {
	c.mu.Lock()
	e := c.entries[name]
	if e != nil && now.Sub(e.checked) < c.validity {
		e.refs++
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		return e, nil, nil, nil
	}
	c.mu.Unlock()

	if e != nil {
		// Stale: one Stat tells whether the open file is still the one at
		// this name, unchanged.
		fi, err := fs.Stat(c.root, name)
		c.mu.Lock()
		if c.entries[name] == e {
			if err == nil && sameFile(fi, e.fi) {
				e.checked = now
				e.refs++
				c.lru.MoveToFront(e.elem)
				c.mu.Unlock()
				c.keep(e) // read again: contents are never older than the validity
				return e, nil, nil, nil
			}
			c.evict(e)
		}
		c.mu.Unlock()
		if err != nil {
			return nil, nil, nil, err
		}
	}

	f, err := c.root.Open(name)
	if err != nil {
		return nil, nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	at, ok := f.(io.ReaderAt)
	if !ok || !fi.Mode().IsRegular() {
		return nil, f, fi, nil
	}
	e = &cachedFile{name: name, f: f, at: at, fi: fi, checked: now, refs: 1}
	c.mu.Lock()
	if old := c.entries[name]; old != nil {
		c.evict(old) // another request cached it meanwhile; ours is newer
	}
	e.elem = c.lru.PushFront(e)
	c.entries[name] = e
	for c.lru.Len() > c.max {
		c.evict(c.lru.Back().Value.(*cachedFile))
	}
	c.mu.Unlock()
	c.keep(e)
	return e, nil, nil, nil
}

// keep reads e's contents and keeps them with it, if the cache keeps
// contents and they fit; e is held (get's reference). Contents that cannot
// be read whole (the file changed under us) are not kept: requests read the
// file until the next check.
func (c *fileCache) keep(e *cachedFile) {
	size := e.fi.Size()
	if c.maxData <= 0 || size > c.maxFileData {
		return
	}
	buf := make([]byte, size)
	if n, err := e.at.ReadAt(buf, 0); n != len(buf) || (err != nil && err != io.EOF) {
		buf = nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropData(e)
	if buf == nil || e.gone {
		return
	}
	for el := c.lru.Back(); el != nil && c.dataBytes+size > c.maxData; el = el.Prev() {
		c.dropData(el.Value.(*cachedFile)) // least recently used first
	}
	if c.dataBytes+size <= c.maxData {
		e.data = buf
		c.dataBytes += size
	}
}

// dropData lets go of e's contents; mu held.
func (c *fileCache) dropData(e *cachedFile) {
	c.dataBytes -= int64(len(e.data))
	e.data = nil
}

// view is what a request serves of e: its file, its metadata, and its
// contents if kept.
func (c *fileCache) view(e *cachedFile) shared {
	c.mu.Lock()
	defer c.mu.Unlock()
	return shared{f: e.f, at: e.at, fi: e.fi, data: e.data}
}

// forgetIfChanged drops e from the cache when serving it failed because
// the file changed (errChanged, or a read that came back short), so that
// the next request for it opens it anew.
func (c *fileCache) forgetIfChanged(e *cachedFile, err error) {
	if err != errChanged && !errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	c.mu.Lock()
	if c.entries[e.name] == e {
		c.evict(e)
	}
	c.mu.Unlock()
}

// sameFile reports whether two stats describe the same unchanged file, as
// far as a response can tell (its validators are built from these).
func sameFile(a, b fs.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && a.Mode() == b.Mode()
}

// evict removes e from the cache; mu held.
func (c *fileCache) evict(e *cachedFile) {
	if e.gone {
		return
	}
	e.gone = true
	c.dropData(e)
	delete(c.entries, e.name)
	c.lru.Remove(e.elem)
	if e.refs == 0 {
		go e.f.Close() // a round trip in saturn: not under the lock
	}
}

// release lets go of a file get returned.
func (c *fileCache) release(e *cachedFile) {
	c.mu.Lock()
	e.refs--
	closeNow := e.gone && e.refs == 0
	c.mu.Unlock()
	if closeNow {
		e.f.Close()
	}
}

// close closes every cached file; files in use close when released.
func (c *fileCache) close() {
	c.mu.Lock()
	for _, e := range c.entries {
		c.evict(e)
	}
	c.mu.Unlock()
}

// shared presents a cached file to the serving code as an fs.File that can
// only be read with ReadAt: no Seek (the offset would be shared) and no
// descriptor to splice. With data (the kept contents), reads come from
// memory.
type shared struct {
	f    fs.File // the open file, for a fresh Stat (fileBody.confirm)
	at   io.ReaderAt
	fi   fs.FileInfo
	data []byte
}

var errSharedRead = errors.New("webserver: a cached file is read with ReadAt only")

func (s shared) Stat() (fs.FileInfo, error) { return s.fi, nil }
func (s shared) Read([]byte) (int, error)   { return 0, errSharedRead }
func (s shared) ReadAt(p []byte, off int64) (int, error) {
	if s.data == nil {
		return s.at.ReadAt(p, off)
	}
	if off < 0 || off >= int64(len(s.data)) {
		return 0, io.EOF
	}
	n := copy(p, s.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (s shared) Close() error { return nil }
