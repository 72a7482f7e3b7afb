package webserver

import (
	"net/url"
	"strings"
	"testing"
	"testing/fstest"
)

// redirectFS holds folders whose names a hostile path can reach by way of
// doubled slashes, backslashes and encoded separators, so that the server
// sends its trailing-slash redirect for them.
func redirectFS() fstest.MapFS {
	m := fstest.MapFS{}
	for _, name := range []string{
		"sub/x.txt",
		"evil.example/x.txt",
		"evil.example/sub/x.txt",
		`\evil.example/x.txt`,
		`\\evil.example/x.txt`,
		"q?x/x.txt",
		"sp ace/x.txt",
		"100%/x.txt",
		"caf\u00e9/x.txt",
	} {
		m[name] = &fstest.MapFile{Data: []byte("x\n"), ModTime: testModTime, Mode: 0o644}
	}
	return m
}

// checkOnSite fails unless loc, the Location of a redirect, is a path on
// this server: one leading slash, then neither a slash nor a backslash,
// and no scheme or host once parsed as a browser would.
func checkOnSite(t *testing.T, what, loc string) {
	t.Helper()
	if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, `/\`) {
		t.Errorf("%s: Location %q is not a path on this server", what, loc)
		return
	}
	base, _ := url.Parse("http://x/a/b")
	u, err := url.Parse(loc)
	if err != nil {
		t.Errorf("%s: Location %q does not parse: %v", what, loc, err)
		return
	}
	if r := base.ResolveReference(u); r.Host != "x" || r.Scheme != "http" {
		t.Errorf("%s: Location %q leads to %s", what, loc, r)
	}
	if strings.ContainsAny(loc[:strings.IndexByte(loc+"?", '?')], "\\\x00\r\n ") {
		t.Errorf("%s: Location %q holds a byte that should be encoded", what, loc)
	}
}

// TestRedirectStaysOnSite sends the hostile paths of an open redirect
// (doubled slashes, backslashes, their percent-encodings, dot segments)
// for folders without their trailing slash, and checks the Location of
// every 3xx the server sends: always a path on this server, built from the
// resolved path, with the query kept, and leading to the folder.
func TestRedirectStaysOnSite(t *testing.T) {
	_, addr := startServer(t, Config{Root: redirectFS(), Listing: true})
	tests := []struct {
		target string
		status int
		loc    string // for a 301
	}{
		{"/sub", 301, "/sub/"},
		{"/sub?x=1", 301, "/sub/?x=1"},
		{"/sub?", 301, "/sub/?"},
		{"//evil.example/..%2fsub", 301, "/sub/"},
		{"//evil.example/..%2Fsub?a=b", 301, "/sub/?a=b"},
		{"//evil.example/sub", 301, "/evil.example/sub/"},
		{"//evil.example", 301, "/evil.example/"},
		{"///evil.example", 301, "/evil.example/"},
		{"/.//evil.example", 301, "/evil.example/"},
		{"/sub/..//evil.example", 301, "/evil.example/"},
		{"/%2F%2Fevil.example", 301, "/evil.example/"},
		{"/%2f/evil.example/sub", 301, "/evil.example/sub/"},
		{"/%2e/%2fevil.example", 301, "/evil.example/"},
		{`/\evil.example`, 301, "/%5Cevil.example/"},
		{"/%5Cevil.example", 301, "/%5Cevil.example/"},
		{"/%5cevil.example", 301, "/%5Cevil.example/"},
		{`/\\evil.example`, 301, "/%5C%5Cevil.example/"},
		{"/%5C%5Cevil.example", 301, "/%5C%5Cevil.example/"},
		{`/%5C%5Cevil.example?//evil.example`, 301, "/%5C%5Cevil.example/?//evil.example"},
		{"http://x//evil.example", 301, "/evil.example/"},
		{"http://x//evil.example/..%2f..%2fsub", 400, ""},
		{"/q%3Fx", 301, "/q%3Fx/"},
		{"/sp%20ace", 301, "/sp%20ace/"},
		{"/100%25", 301, "/100%25/"},
		{"/caf%C3%A9", 301, "/caf%C3%A9/"},
		{`/\\evil.example/`, 200, ""}, // the folder's own URL: no redirect
		{"//evil.example/x.txt", 200, ""},
		{"/%5C/evil.example", 404, ""},
	}
	for _, tt := range tests {
		out := exchange(t, addr, "GET "+tt.target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		rs := parseResponses(t, out)
		if len(rs) != 1 {
			t.Errorf("%s: %d responses:\n%s", tt.target, len(rs), out)
			continue
		}
		r := rs[0]
		if r.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.target, r.StatusCode, tt.status)
		}
		loc := r.Header.Get("Location")
		if r.StatusCode/100 == 3 {
			checkOnSite(t, tt.target, loc)
		} else if loc != "" {
			t.Errorf("%s: a %d with Location %q", tt.target, r.StatusCode, loc)
		}
		if tt.status != 301 || loc != tt.loc {
			if tt.loc != "" {
				t.Errorf("%s: Location %q, want %q", tt.target, loc, tt.loc)
			}
			continue
		}
		// The redirect leads to the folder itself.
		follow := exchange(t, addr, "GET "+loc+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if fr := parseResponses(t, follow); len(fr) != 1 || fr[0].StatusCode != 200 || !strings.Contains(fr[0].body, "x.txt") {
			t.Errorf("%s: following Location %q: %.200q", tt.target, loc, follow)
		}
	}
}

// TestLocationStaysOnSiteAll builds every path of up to four pieces taken
// from separators, their encodings, dot segments and a host name, and
// checks that whatever one resolves to, its redirect is a path on this
// server that names the same folder again.
func TestLocationStaysOnSiteAll(t *testing.T) {
	pieces := []string{"/", `\`, "%2f", "%2F", "%5c", "%5C", ".", "..", "%2e", "evil.example", "@", ":", "?", "%3f"}
	var walk func(prefix string, depth int)
	n := 0
	walk = func(prefix string, depth int) {
		if depth == 0 {
			return
		}
		for _, p := range pieces {
			raw := prefix + p
			n++
			path, query, _ := strings.Cut(raw, "?")
			var q []byte
			if strings.Contains(raw, "?") {
				q = []byte(query)
			}
			name, _, _, err := resolvePath(nil, []byte(path))
			if err == nil {
				loc := string(appendLocation(nil, string(name), q))
				checkOnSite(t, raw, loc)
				// The Location resolves to the same name, and is a
				// folder's URL: no second redirect.
				lpath, _, _ := strings.Cut(loc, "?")
				again, _, dir, err := resolvePath(nil, []byte(lpath))
				if err != nil || string(again) != string(name) || !dir {
					t.Errorf("%q: Location %q resolves to %q dir=%v err=%v, want %q", raw, loc, again, dir, err, name)
				}
			}
			walk(raw, depth-1)
		}
	}
	walk("/", 4)
	if testing.Verbose() {
		t.Logf("%d paths", n)
	}
}
