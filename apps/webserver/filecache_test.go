package webserver

import (
	"io"
	"io/fs"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"
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

func TestOpenFileCache(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	cfs := &countingFS{m: fstest.MapFS{}}
	cfs.set("a.txt", "first", t0)
	_, addr := startServer(t, Config{Root: cfs, OpenFileCache: 100 * time.Millisecond, OpenFileCacheSize: 2})
	url := "http://" + addr
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for range 10 {
		if got := get("/a.txt"); got != "first" {
			t.Fatalf("got %q", got)
		}
	}
	if n := cfs.opens.Load(); n != 1 {
		t.Fatalf("10 requests opened the file %d times, want 1", n)
	}
	// A change is seen once the entry is older than the validity.
	cfs.set("a.txt", "second!", t0.Add(time.Second))
	time.Sleep(150 * time.Millisecond)
	if got := get("/a.txt"); got != "second!" {
		t.Fatalf("after a change: %q", got)
	}
	if cfs.stats.Load() == 0 || cfs.opens.Load() != 2 {
		t.Fatalf("stats %d opens %d: a stale entry must be checked and reopened", cfs.stats.Load(), cfs.opens.Load())
	}
	// Unchanged and stale: one Stat, no open.
	time.Sleep(150 * time.Millisecond)
	get("/a.txt")
	if cfs.opens.Load() != 2 {
		t.Fatalf("an unchanged stale entry was reopened")
	}
	// Eviction past the size closes files.
	cfs.set("b.txt", "b", t0)
	cfs.set("c.txt", "c", t0)
	get("/b.txt")
	get("/c.txt")
	deadline := time.Now().Add(2 * time.Second)
	for cfs.closes.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if cfs.closes.Load() < 2 {
		t.Fatalf("closes %d: the replaced and the evicted file must be closed", cfs.closes.Load())
	}
	// A file that is gone answers 404 once stale.
	cfs.mu.Lock()
	delete(cfs.m, "c.txt")
	cfs.mu.Unlock()
	time.Sleep(150 * time.Millisecond)
	resp, _ := http.Get(url + "/c.txt")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("a deleted file: %d", resp.StatusCode)
	}
}
