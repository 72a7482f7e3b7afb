package webserver

import (
	"io"
	"io/fs"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"saturn/internal/testkit"
)

// countingFS counts opens, stats and closes, and lets a test change files.
type countingFS struct {
	mu                   sync.Mutex
	m                    fstest.MapFS
	opens, stats, closes atomic.Int64
}

func (c *countingFS) Open(name string) (fs.File, error) {
	c.mu.Lock()
	f, err := c.m.Open(name)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c.opens.Add(1)
	return &countedFile{f.(readAtFile), c}, nil
}

func (c *countingFS) Stat(name string) (fs.FileInfo, error) {
	c.stats.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	return fs.Stat(c.m, name)
}

func (c *countingFS) set(name, data string, mod time.Time) {
	c.mu.Lock()
	c.m[name] = &fstest.MapFile{Data: []byte(data), ModTime: mod}
	c.mu.Unlock()
}

type readAtFile interface {
	fs.File
	io.ReaderAt
}

type countedFile struct {
	readAtFile
	fs *countingFS
}

func (f *countedFile) Close() error { f.fs.closes.Add(1); return f.readAtFile.Close() }

// getBody GETs url with the header's name, value pairs, and returns the
// body (whatever the status), which GetWhole checks is whole.
func getBody(t *testing.T, url string, header ...string) string {
	t.Helper()
	_, b := GetWhole(t, http.DefaultClient, url, header...)
	return string(b)
}

func TestOpenFileCache(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	cfs := &countingFS{m: fstest.MapFS{}}
	cfs.set("a.txt", "first", t0)
	const validity = time.Minute
	s := newServer(t, Config{Root: cfs, OpenFileCache: validity, OpenFileCacheSize: 2})
	clock := newTestClock(t0)
	s.cache.clock = clock.now
	url := "http://" + serveOn(t, s, kernelListen(t))
	get := func(path string) string { t.Helper(); return getBody(t, url+path) }
	for range 10 {
		if got := get("/a.txt"); got != "first" {
			t.Fatalf("got %q", got)
		}
	}
	if n := cfs.opens.Load(); n != 1 {
		t.Fatalf("10 requests opened the file %d times, want 1", n)
	}
	// A change is not seen while the entry is fresh, and is seen once it
	// is older than the validity.
	cfs.set("a.txt", "second!", t0.Add(time.Second))
	clock.advance(validity - time.Second)
	if got := get("/a.txt"); got != "first" {
		t.Fatalf("a fresh entry was checked: %q", got)
	}
	clock.advance(time.Second)
	if got := get("/a.txt"); got != "second!" {
		t.Fatalf("after a change: %q", got)
	}
	if cfs.stats.Load() == 0 || cfs.opens.Load() != 2 {
		t.Fatalf("stats %d opens %d: a stale entry must be checked and reopened", cfs.stats.Load(), cfs.opens.Load())
	}
	// Unchanged and stale: one Stat, no open.
	clock.advance(validity)
	stats := cfs.stats.Load()
	get("/a.txt")
	if cfs.opens.Load() != 2 || cfs.stats.Load() != stats+1 {
		t.Fatalf("an unchanged stale entry: %d stats, %d opens; want one stat and no open", cfs.stats.Load()-stats, cfs.opens.Load()-2)
	}
	// Eviction past the size closes files.
	cfs.set("b.txt", "b", t0)
	cfs.set("c.txt", "c", t0)
	get("/b.txt")
	get("/c.txt")
	// The cache closes an evicted file on a goroutine of its own.
	testkit.Eventually(t, 5*time.Second, func() bool { return cfs.closes.Load() >= 2 },
		"the replaced and the evicted file to be closed (closed %d)", cfs.closes.Load())
	// A file that is gone answers 404 once stale.
	cfs.mu.Lock()
	delete(cfs.m, "c.txt")
	cfs.mu.Unlock()
	clock.advance(validity)
	resp, err := http.Get(url + "/c.txt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("a deleted file: %d", resp.StatusCode)
	}
}

// readCountingFS is a countingFS that also counts ReadAt calls.
type readCountingFS struct {
	*countingFS
	reads atomic.Int64
}

type readCountedFile struct {
	fs.File
	at    io.ReaderAt
	reads *atomic.Int64
}

func (f readCountedFile) ReadAt(p []byte, off int64) (int, error) {
	f.reads.Add(1)
	return f.at.ReadAt(p, off)
}

func (r *readCountingFS) Open(name string) (fs.File, error) {
	f, err := r.countingFS.Open(name)
	if err != nil {
		return nil, err
	}
	return readCountedFile{f, f.(io.ReaderAt), &r.reads}, nil
}

// TestContentCache: a cached file's contents are read once and served from
// memory, ranges included, until the next check, which reads them again
// (even a change that the file's size and time do not show); files over the
// per-file cap, and past the budget, are read per request.
func TestContentCache(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	rfs := &readCountingFS{countingFS: &countingFS{m: fstest.MapFS{}}}
	rfs.set("a.txt", "first", t0)
	rfs.set("big.txt", "0123456789abcdef", t0)
	rfs.set("b.txt", "bbbbbb", t0)
	const validity = time.Minute
	s := newServer(t, Config{Root: rfs, OpenFileCache: validity, ContentCache: 12, ContentCacheFileMax: 8})
	clock := newTestClock(t0)
	s.cache.clock = clock.now
	addr := serveOn(t, s, kernelListen(t))
	get := func(path string, header ...string) string {
		t.Helper()
		return getBody(t, "http://"+addr+path, header...)
	}
	for range 5 {
		if got := get("/a.txt"); got != "first" {
			t.Fatalf("got %q", got)
		}
	}
	if got := get("/a.txt", "Range", "bytes=1-3"); got != "irs" {
		t.Fatalf("range: %q", got)
	}
	if n := rfs.reads.Load(); n != 1 {
		t.Fatalf("6 requests read the file %d times, want 1 (when it was opened)", n)
	}
	// Over the per-file cap: read every time.
	before := rfs.reads.Load()
	for range 3 {
		if got := get("/big.txt"); got != "0123456789abcdef" {
			t.Fatalf("big: %q", got)
		}
	}
	if n := rfs.reads.Load() - before; n != 3 {
		t.Fatalf("3 requests for a file over the cap read it %d times, want 3", n)
	}
	// Rewritten in place, with the same size and time: the check reads the
	// contents again.
	rfs.mu.Lock()
	copy(rfs.m["a.txt"].Data, "FIRST")
	rfs.mu.Unlock()
	if got := get("/a.txt"); got != "first" {
		t.Fatalf("before the check: %q, want the kept contents", got)
	}
	clock.advance(validity)
	get("/a.txt") // the check
	if got := get("/a.txt"); got != "FIRST" {
		t.Fatalf("after the check: %q, want the new contents", got)
	}
	// The budget (12 bytes) holds a.txt (5) and b.txt (6); both served
	// from memory.
	get("/b.txt")
	before = rfs.reads.Load()
	if get("/a.txt") != "FIRST" || get("/b.txt") != "bbbbbb" || rfs.reads.Load() != before {
		t.Fatalf("two kept files: %d reads", rfs.reads.Load()-before)
	}
}

// TestFolderIndexCached: a folder's URL serves its index file from the
// open-file cache, without opening the folder or the file again.
func TestFolderIndexCached(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	cfs := &countingFS{m: fstest.MapFS{}}
	cfs.set("index.html", "<h1>home</h1>", t0)
	cfs.set("sub/index.html", "<h1>sub</h1>", t0)
	_, addr := startServer(t, Config{Root: cfs, OpenFileCache: time.Hour, IndexFile: "index.html"})
	for _, tt := range []struct{ path, want string }{{"/", "<h1>home</h1>"}, {"/sub/", "<h1>sub</h1>"}} {
		for range 10 {
			resp, err := http.Get("http://" + addr + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != tt.want || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("%s: %d %q %q", tt.path, resp.StatusCode, b, resp.Header.Get("Content-Type"))
			}
		}
	}
	if n := cfs.opens.Load(); n != 2 {
		t.Errorf("20 requests for two folders opened %d files, want their two index files once each", n)
	}
}

// exhaustedFS is a file system out of descriptors, as diskproc is for an
// app past its max_open_files.
type exhaustedFS struct{}

func (exhaustedFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EMFILE}
}

// TestOutOfFilesIs503: a request that finds the server out of open files
// is answered 503 with Retry-After, not 500, and the connection lives on.
func TestOutOfFilesIs503(t *testing.T) {
	_, addr := startServer(t, Config{Root: exhaustedFS{}})
	for range 3 {
		resp, err := http.Get("http://" + addr + "/a.txt")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || resp.Close {
			t.Fatalf("out of files: %d, Retry-After %q, close %v; want 503, 1, kept", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Close)
		}
	}
}
