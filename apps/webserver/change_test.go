package webserver

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Files that change while they are served, or while the open-file cache
// holds them: every response is either the file whole as it was or whole as
// it is now, never a body cut short of the Content-Length it announced
// (see serveName). The changes are made at fixed points (between requests,
// or from inside the server's own Stat and ReadAt calls through hookFS), so
// every run exercises the same interleaving.

// pattern is n bytes that differ from those of another seed.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i%23)
	}
	return b
}

// GetWhole GETs url, with the header fields hdr gives as name and value
// pairs, and fails the test on anything but a whole body (one cut short of
// its Content-Length, or past it). Exported for the end-to-end tests of
// package webserver_test.
func GetWhole(t testing.TB, client *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: a body cut short of its Content-Length %d: %d bytes, %v", url, resp.ContentLength, len(body), err)
	}
	if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength {
		t.Fatalf("GET %s: Content-Length %d, body %d bytes", url, resp.ContentLength, len(body))
	}
	return resp, body
}

// fetchWhole is GetWhole's status and body.
func fetchWhole(t *testing.T, client *http.Client, url string, hdr ...string) (int, []byte) {
	t.Helper()
	resp, body := GetWhole(t, client, url, hdr...)
	return resp.StatusCode, body
}

// wholeOneOf fails unless got is one of the versions, whole.
func wholeOneOf(t *testing.T, what string, got []byte, versions ...[]byte) {
	t.Helper()
	for _, v := range versions {
		if bytes.Equal(got, v) {
			return
		}
	}
	t.Errorf("%s: %d bytes, none of the file's versions whole", what, len(got))
}

func TestCachedFileChanges(t *testing.T) {
	for _, l := range listeners {
		for _, content := range []int64{0, 1 << 20} {
			t.Run(fmt.Sprintf("%s/content-cache=%d", l.name, content), func(t *testing.T) {
				dir := t.TempDir()
				_, addr := startServerOn(t, Config{Root: os.DirFS(dir), OpenFileCache: time.Hour, ContentCache: content}, l.listen(t))
				client := newClient()
				defer client.CloseIdleConnections()
				url := "http://" + addr + "/"
				write := func(name string, data []byte) {
					t.Helper()
					if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				cached := func(name string, data []byte) {
					t.Helper()
					write(name, data)
					if st, got := fetchWhole(t, client, url+name); st != 200 || !bytes.Equal(got, data) {
						t.Fatalf("%s: %d, %d bytes", name, st, len(got))
					}
				}
				small, big := pattern('a', 5000), pattern('A', 300<<10) // big does not fit the write buffer

				// truncated caches name with data, cuts it to size, and
				// checks that it is served whole as it was or as it is.
				truncated := func(t *testing.T, name string, data []byte, size int) {
					cached(name, data)
					os.Truncate(filepath.Join(dir, name), int64(size))
					st, got := fetchWhole(t, client, url+name)
					if st != 200 {
						t.Fatalf("status %d", st)
					}
					wholeOneOf(t, name, got, data, data[:size])
					if content == 0 && !bytes.Equal(got, data[:size]) {
						t.Error("without kept contents, the file can only be served as it is now")
					}
				}
				t.Run("small truncated", func(t *testing.T) { truncated(t, "s1", small, 100) })
				t.Run("small rewritten shorter", func(t *testing.T) {
					cached("s2", small)
					write("s2", pattern('x', 50))
					_, got := fetchWhole(t, client, url+"s2")
					wholeOneOf(t, "s2", got, small, pattern('x', 50))
				})
				t.Run("truncated to nothing", func(t *testing.T) {
					cached("s3", small)
					os.Truncate(filepath.Join(dir, "s3"), 0)
					_, got := fetchWhole(t, client, url+"s3")
					wholeOneOf(t, "s3", got, small, nil)
				})
				t.Run("big truncated", func(t *testing.T) { truncated(t, "b1", big, 150000) })
				t.Run("big replaced", func(t *testing.T) {
					cached("b2", big)
					next := pattern('0', 200<<10)
					write("b2.new", next)
					if err := os.Rename(filepath.Join(dir, "b2.new"), filepath.Join(dir, "b2")); err != nil {
						t.Fatal(err)
					}
					_, got := fetchWhole(t, client, url+"b2")
					wholeOneOf(t, "b2", got, big, next)
				})
				t.Run("deleted", func(t *testing.T) {
					cached("s4", small)
					os.Remove(filepath.Join(dir, "s4"))
					if st, got := fetchWhole(t, client, url+"s4"); st != 404 {
						wholeOneOf(t, "s4", got, small)
					}
				})
				t.Run("range past the new end", func(t *testing.T) {
					cached("s5", small)
					os.Truncate(filepath.Join(dir, "s5"), 100)
					st, got := fetchWhole(t, client, url+"s5", "Range", "bytes=1000-1999")
					switch {
					case st == 206 && bytes.Equal(got, small[1000:2000]): // as it was
					case st == 416 && content == 0: // as it is now
					default:
						t.Errorf("%d, %d bytes", st, len(got))
					}
				})
				t.Run("multiple ranges", func(t *testing.T) {
					cached("b3", big)
					os.Truncate(filepath.Join(dir, "b3"), 1000)
					st, got := fetchWhole(t, client, url+"b3", "Range", "bytes=0-9,200000-200009")
					if st != 206 && st != 200 {
						t.Fatalf("status %d", st)
					}
					if st == 206 && !bytes.Contains(got, big[:10]) {
						t.Errorf("first part missing: %q", got)
					}
				})
			})
		}
	}
}

// hookFS is an os.DirFS whose files call hooks from inside Stat and
// ReadAt: a file changed at an exact point of the server's work.
type hookFS struct {
	dir      string
	onStat   func(name string)            // after each Stat of an open file
	onReadAt func(name string, off int64) // before each ReadAt
}

type hookFile struct {
	*os.File
	fsys *hookFS
	name string
}

func (h *hookFS) Open(name string) (fs.File, error) {
	f, err := os.DirFS(h.dir).Open(name)
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f.(*os.File), fsys: h, name: name}, nil
}

func (f *hookFile) Stat() (fs.FileInfo, error) {
	fi, err := f.File.Stat()
	if f.fsys.onStat != nil {
		f.fsys.onStat(f.name)
	}
	return fi, err
}

func (f *hookFile) ReadAt(p []byte, off int64) (int, error) {
	if f.fsys.onReadAt != nil {
		f.fsys.onReadAt(f.name, off)
	}
	return f.File.ReadAt(p, off)
}

// TestFileShrinksAfterStat: an uncached file that shrinks between the
// server's Stat and its read is served as it is now; one that shrinks
// after every Stat is answered 503, not cut.
func TestFileShrinksAfterStat(t *testing.T) {
	dir := t.TempDir()
	small := pattern('a', 5000)
	os.WriteFile(filepath.Join(dir, "once"), small, 0o644)
	os.WriteFile(filepath.Join(dir, "always"), small, 0o644)
	var mu sync.Mutex
	shrunk := false
	h := &hookFS{dir: dir, onStat: func(name string) {
		mu.Lock()
		defer mu.Unlock()
		switch name {
		case "once":
			if !shrunk {
				shrunk = true
				os.Truncate(filepath.Join(dir, name), 10)
			}
		case "always":
			fi, _ := os.Stat(filepath.Join(dir, name))
			os.Truncate(filepath.Join(dir, name), fi.Size()/2)
		}
	}}
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			mu.Lock()
			shrunk = false
			os.WriteFile(filepath.Join(dir, "once"), small, 0o644)
			os.WriteFile(filepath.Join(dir, "always"), small, 0o644)
			mu.Unlock()
			_, addr := startServerOn(t, Config{Root: h}, l.listen(t))
			client := newClient()
			defer client.CloseIdleConnections()
			if st, got := fetchWhole(t, client, "http://"+addr+"/once"); st != 200 || !bytes.Equal(got, small[:10]) {
				t.Errorf("once: %d, %q; want the 10 bytes left", st, got)
			}
			if st, _ := fetchWhole(t, client, "http://"+addr+"/always"); st != 503 {
				t.Errorf("always: %d, want 503", st)
			}
		})
	}
}

// TestFileShrinksMidBody: a cached file larger than the write buffer that
// shrinks after part of its body has left (its Stat confirmed, its first
// bytes sent) cannot be answered whole; the connection is closed short of
// the announced length, so the client knows the response is incomplete,
// and the cache lets the file go: the next request gets it as it is now.
func TestFileShrinksMidBody(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			dir := t.TempDir()
			big := pattern('A', 1<<20)
			os.WriteFile(filepath.Join(dir, "big"), big, 0o644)
			var armed atomic.Bool
			var cut atomic.Int64
			h := &hookFS{dir: dir, onReadAt: func(name string, off int64) {
				if off > 0 && armed.CompareAndSwap(true, false) {
					cut.Store(off)
					os.Truncate(filepath.Join(dir, name), off)
				}
			}}
			_, addr := startServerOn(t, Config{Root: h, OpenFileCache: time.Hour}, l.listen(t))
			client := newClient()
			defer client.CloseIdleConnections()
			url := "http://" + addr + "/big"
			if st, got := fetchWhole(t, client, url); st != 200 || !bytes.Equal(got, big) {
				t.Fatalf("first fetch: %d, %d bytes", st, len(got))
			}
			armed.Store(true) // the next read past the start truncates the file there

			resp, err := client.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if cut.Load() == 0 {
				t.Fatalf("the file was not truncated mid-body (%d bytes, %v)", len(got), err)
			}
			switch {
			case err == nil && bytes.Equal(got, big):
				t.Fatal("served whole a file truncated mid-body")
			case err == nil:
				t.Fatalf("Content-Length %d, body %d bytes, and no error: a cut body the client cannot tell", resp.ContentLength, len(got))
			case !bytes.Equal(got, big[:len(got)]):
				t.Fatalf("the bytes before the cut differ")
			}
			t.Logf("cut at %d of %d: client saw %d bytes, %v", cut.Load(), len(big), len(got), err)
			if st, got := fetchWhole(t, client, url); st != 200 || !bytes.Equal(got, big[:cut.Load()]) {
				t.Fatalf("after the cut: %d, %d bytes; want the %d bytes left", st, len(got), cut.Load())
			}
		})
	}
}
