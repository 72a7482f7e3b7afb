package appproc_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"saturn/appproc"
	"saturn/internal/disktest"
)

// TestHTTPFileServer serves diskproc's root with net/http's own file
// server and fetches from it with a real client: whole files, a directory
// listing, single and multiple byte ranges, and a missing file.
func TestHTTPFileServer(t *testing.T) {
	eachBackend(t, func(t *testing.T, srv *disktest.Server, fsys *appproc.FS) {
		body := make([]byte, 200<<10) // larger than several buffers
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range body {
			body[i] = byte(rng.UintN(256))
		}
		os.MkdirAll(filepath.Join(srv.Root, "site/docs"), 0o755)
		os.WriteFile(filepath.Join(srv.Root, "site/index.html"), []byte("<h1>saturn</h1>"), 0o644)
		os.WriteFile(filepath.Join(srv.Root, "site/docs/blob.bin"), body, 0o644)
		os.WriteFile(filepath.Join(srv.Root, "site/docs/a.txt"), []byte("a"), 0o644)
		hs := httptest.NewServer(http.FileServer(http.FS(fsys)))
		defer hs.Close()

		get := func(path string, header ...string) (*http.Response, []byte) {
			t.Helper()
			req, _ := http.NewRequest("GET", hs.URL+path, nil)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			resp, err := hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return resp, b
		}
		if resp, b := get("/site/"); resp.StatusCode != 200 || string(b) != "<h1>saturn</h1>" {
			t.Errorf("index: %d %q", resp.StatusCode, b)
		}
		if resp, b := get("/site/docs/"); resp.StatusCode != 200 || !strings.Contains(string(b), `href="blob.bin"`) || !strings.Contains(string(b), `href="a.txt"`) {
			t.Errorf("listing: %d %q", resp.StatusCode, b)
		}
		if resp, b := get("/site/docs/blob.bin"); resp.StatusCode != 200 || !bytes.Equal(b, body) {
			t.Errorf("whole file: %d, %d bytes", resp.StatusCode, len(b))
		}
		for _, r := range [][2]int{{0, 0}, {100, 199}, {70000, 150000}, {len(body) - 10, len(body) - 1}} {
			resp, b := get("/site/docs/blob.bin", "Range", fmt.Sprintf("bytes=%d-%d", r[0], r[1]))
			want := fmt.Sprintf("bytes %d-%d/%d", r[0], r[1], len(body))
			if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != want || !bytes.Equal(b, body[r[0]:r[1]+1]) {
				t.Errorf("range %v: %d %q, %d bytes", r, resp.StatusCode, resp.Header.Get("Content-Range"), len(b))
			}
		}
		if resp, b := get("/site/docs/blob.bin", "Range", "bytes=-5"); resp.StatusCode != 206 || !bytes.Equal(b, body[len(body)-5:]) {
			t.Errorf("suffix range: %d, %d bytes", resp.StatusCode, len(b))
		}
		resp, b := get("/site/docs/blob.bin", "Range", "bytes=0-9,1000-1009")
		if resp.StatusCode != 206 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") ||
			!bytes.Contains(b, body[0:10]) || !bytes.Contains(b, body[1000:1010]) {
			t.Errorf("multiple ranges: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if resp, _ := get("/site/docs/blob.bin", "Range", fmt.Sprintf("bytes=%d-", len(body)+10)); resp.StatusCode != 416 {
			t.Errorf("unsatisfiable range: %d", resp.StatusCode)
		}
		if resp, _ := get("/site/missing"); resp.StatusCode != 404 {
			t.Errorf("missing file: %d", resp.StatusCode)
		}
	})
}
