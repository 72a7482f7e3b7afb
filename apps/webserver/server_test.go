package webserver

import (
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

// fsKinds are the trees the client matrix runs against: MapFS files offer
// ReaderAt and Seeker, os.DirFS files are kernel-backed (sendfile on
// loopback), and seqFS files can only be read in order.
func fsKinds(t *testing.T) map[string]fs.FS {
	return map[string]fs.FS{"mapfs": testFS(), "dirfs": testDirFS(t), "seqfs": seqFS{testFS()}}
}

func newClient() *http.Client {
	return &http.Client{
		Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TestClientMatrix drives the server with Go's net/http client over
// loopback TCP: methods, directories, ranges, conditionals, content types.
func TestClientMatrix(t *testing.T) {
	lastMod := testModTime.Format(http.TimeFormat)
	type tc struct {
		name       string
		method     string
		path       string
		header     map[string]string
		status     int
		body       string            // checked when non-empty or wantEmpty
		wantEmpty  bool              // body must be empty
		wantHeader map[string]string // exact values
		parts      []string          // multipart/byteranges bodies
		positional bool              // needs a file with ReaderAt or Seeker
	}
	big := string(bigData)
	tests := []tc{
		{name: "file", path: "/hello.txt", status: 200, body: "hello, world\n", wantHeader: map[string]string{
			"Content-Type": "text/plain; charset=utf-8", "Content-Length": "13", "Last-Modified": lastMod, "Server": "saturn"}},
		{name: "head", method: "HEAD", path: "/hello.txt", status: 200, wantEmpty: true, wantHeader: map[string]string{"Content-Length": "13"}},
		{name: "empty file", path: "/empty.txt", status: 200, wantEmpty: true, wantHeader: map[string]string{"Content-Length": "0"}},
		{name: "big file", path: "/big.bin", status: 200, body: big},
		{name: "root index", path: "/", status: 200, body: "<h1>home</h1>\n", wantHeader: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "dir index", path: "/sub/", status: 200, body: "<h1>sub</h1>\n"},
		{name: "dir redirect", path: "/sub?x=1", status: 301, wantHeader: map[string]string{"Location": "/sub/?x=1"}},
		{name: "dir without index", path: "/bare/", status: 403},
		{name: "encoded names", path: "/bare/c%20dir/d.txt", status: 200, body: "d\n"},
		{name: "encoded slash", path: "/sub%2Fa.txt", status: 200, body: "a\n"},
		{name: "dotdot inside root", path: "/sub/../hello.txt", status: 200, body: "hello, world\n"},
		{name: "missing", path: "/nope.txt", status: 404},
		{name: "file as dir", path: "/hello.txt/", status: 404},
		{name: "file under file", path: "/hello.txt/x", status: 404},
		{name: "upper-case extension", path: "/style.CSS", status: 200, wantHeader: map[string]string{"Content-Type": "text/css; charset=utf-8"}},
		{name: "no extension", path: "/noext", status: 200, wantHeader: map[string]string{"Content-Type": "application/octet-stream"}},
		{name: "post", method: "POST", path: "/hello.txt", status: 405, wantHeader: map[string]string{"Allow": "GET, HEAD"}},
		{name: "delete", method: "DELETE", path: "/hello.txt", status: 405},
		{name: "unknown method", method: "BREW", path: "/hello.txt", status: 501},
		{name: "expectation", path: "/hello.txt", header: map[string]string{"Expect": "tea"}, status: 417},

		{name: "range", path: "/digits.txt", header: map[string]string{"Range": "bytes=2-4"}, status: 206, body: "234",
			wantHeader: map[string]string{"Content-Range": "bytes 2-4/10", "Content-Length": "3"}, positional: true},
		{name: "suffix range", path: "/digits.txt", header: map[string]string{"Range": "bytes=-3"}, status: 206, body: "789", positional: true},
		{name: "open range", path: "/digits.txt", header: map[string]string{"Range": "bytes=7-"}, status: 206, body: "789", positional: true},
		{name: "range on head ignored", method: "HEAD", path: "/digits.txt", header: map[string]string{"Range": "bytes=2-4"}, status: 200, wantEmpty: true,
			wantHeader: map[string]string{"Content-Length": "10"}},
		{name: "multiple ranges", path: "/digits.txt", header: map[string]string{"Range": "bytes=0-1,5-6,-1"}, status: 206, parts: []string{"01", "56", "9"}, positional: true},
		{name: "unsatisfiable", path: "/digits.txt", header: map[string]string{"Range": "bytes=10-"}, status: 416,
			wantHeader: map[string]string{"Content-Range": "bytes */10"}, positional: true},
		{name: "malformed range ignored", path: "/digits.txt", header: map[string]string{"Range": "bytes=4-2"}, status: 200, body: "0123456789"},
		{name: "big range", path: "/big.bin", header: map[string]string{"Range": "bytes=1000-80999"}, status: 206, body: big[1000:81000], positional: true},
		{name: "big multiple ranges", path: "/big.bin", header: map[string]string{"Range": "bytes=0-39999,50000-"}, status: 206,
			parts: []string{big[:40000], big[50000:]}, positional: true},

		{name: "if-modified-since equal", path: "/hello.txt", header: map[string]string{"If-Modified-Since": lastMod}, status: 304, wantEmpty: true},
		{name: "if-modified-since older", path: "/hello.txt", header: map[string]string{"If-Modified-Since": "Thu, 29 Feb 2024 12:00:00 GMT"}, status: 200},
		{name: "if-none-match other", path: "/hello.txt", header: map[string]string{"If-None-Match": `"nope"`}, status: 200},
		{name: "if-none-match star", path: "/hello.txt", header: map[string]string{"If-None-Match": `*`}, status: 304},
		{name: "if-match other", path: "/hello.txt", header: map[string]string{"If-Match": `"nope"`}, status: 412},
		{name: "if-unmodified-since older", path: "/hello.txt", header: map[string]string{"If-Unmodified-Since": "Thu, 29 Feb 2024 12:00:00 GMT"}, status: 412},
		{name: "if-range date", path: "/digits.txt", header: map[string]string{"Range": "bytes=0-0", "If-Range": lastMod}, status: 206, body: "0", positional: true},
		{name: "if-range stale", path: "/digits.txt", header: map[string]string{"Range": "bytes=0-0", "If-Range": `"stale"`}, status: 200, body: "0123456789"},
	}
	for fsName, root := range fsKinds(t) {
		t.Run(fsName, func(t *testing.T) {
			_, addr := startServer(t, Config{Root: root, IndexFile: "index.html"})
			client := newClient()
			defer client.CloseIdleConnections()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					method := tt.method
					if method == "" {
						method = "GET"
					}
					req, err := http.NewRequest(method, "http://"+addr+tt.path, nil)
					if err != nil {
						t.Fatal(err)
					}
					for k, v := range tt.header {
						req.Header.Set(k, v)
					}
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					status, body := tt.status, tt.body
					if fsName == "seqfs" && tt.positional {
						// No ranges from a file that cannot be positioned:
						// the whole file instead.
						status, body = 200, ""
					}
					if resp.StatusCode != status {
						t.Fatalf("status %d, want %d", resp.StatusCode, status)
					}
					got, err := io.ReadAll(resp.Body)
					if err != nil {
						t.Fatal(err)
					}
					if (body != "" || tt.wantEmpty) && string(got) != body {
						t.Errorf("body %.80q (%d bytes), want %.80q (%d bytes)", got, len(got), body, len(body))
					}
					if status == tt.status {
						for k, v := range tt.wantHeader {
							if g := resp.Header.Get(k); g != v {
								t.Errorf("%s: %q, want %q", k, g, v)
							}
						}
						if tt.parts != nil {
							checkParts(t, resp, got, tt.parts)
						}
					}
					if resp.StatusCode == 200 && method == "GET" {
						wantAR := "bytes"
						if fsName == "seqfs" {
							wantAR = ""
						}
						if ar := resp.Header.Get("Accept-Ranges"); ar != wantAR && tt.path != "/" && !strings.HasSuffix(tt.path, "/") {
							t.Errorf("Accept-Ranges %q, want %q", ar, wantAR)
						}
					}
				})
			}
		})
	}
}

func checkParts(t *testing.T, resp *http.Response, body []byte, want []string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(strings.NewReader(string(body)), params["boundary"])
	for i, w := range want {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if p.Header.Get("Content-Range") == "" {
			t.Errorf("part %d has no Content-Range", i)
		}
		got, _ := io.ReadAll(p)
		if string(got) != w {
			t.Errorf("part %d: %.40q (%d bytes), want %.40q (%d bytes)", i, got, len(got), w, len(w))
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("after the last part: %v, want EOF", err)
	}
}

// TestETagRoundTrip: a client revalidating with the ETag it was given gets
// 304, and a strong If-Range with it gets the range.
func TestETagRoundTrip(t *testing.T) {
	_, addr := startServer(t, Config{})
	client := newClient()
	defer client.CloseIdleConnections()
	get := func(h map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+addr+"/digits.txt", nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	etag := get(nil).Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag %q is not a strong tag", etag)
	}
	if r := get(map[string]string{"If-None-Match": `"x", ` + etag}); r.StatusCode != 304 || r.Header.Get("ETag") != etag {
		t.Errorf("If-None-Match: %d, ETag %q", r.StatusCode, r.Header.Get("ETag"))
	}
	if r := get(map[string]string{"If-None-Match": "W/" + etag}); r.StatusCode != 304 {
		t.Errorf("weak If-None-Match: %d", r.StatusCode)
	}
	if r := get(map[string]string{"If-Match": etag}); r.StatusCode != 200 {
		t.Errorf("If-Match: %d", r.StatusCode)
	}
	if r := get(map[string]string{"Range": "bytes=1-1", "If-Range": etag}); r.StatusCode != 206 {
		t.Errorf("If-Range: %d", r.StatusCode)
	}
}

// TestListing: with listings on, a directory without an index gets a page
// linking its entries, names escaped.
func TestListing(t *testing.T) {
	_, addr := startServer(t, Config{Listing: true})
	client := newClient()
	defer client.CloseIdleConnections()
	for path, want := range map[string][]string{
		"/bare/": {`href="../"`, `href="b.txt"`, `href="c%20dir/"`, ">c dir/<"},
		"/":      {`href="weird%20name&amp;%3C%3E.txt"`, `>weird name&amp;&lt;&gt;.txt<`, `href="sub/"`},
	} {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s: listing lacks %s:\n%s", path, w, body)
			}
		}
	}
}
