package webserver

import (
	"bufio"
	"bytes"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

var fuzzSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a/b.txt?q=1 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,5-\r\nIf-None-Match: W/\"a\", \"b\"\r\n\r\n",
	"HEAD http://x/%2e%2e/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\nHost: x\nContent-Length: 3\n\nabcGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nIf-Range: \"x\"\r\n\r\n",
	"\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: x\r\n X: folded\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nExpect: , 100-Continue,tea\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
}

// FuzzParseRequest: the parser never panics and never reads past the head;
// what it accepts has a method token, a path that starts with '/' (for the
// methods served), and a head net/http's parser also accepts.
func FuzzParseRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		data = data[skipEmptyLines(data):]
		n := headEnd(data, 0)
		if n < 0 {
			return
		}
		if n > len(data) {
			t.Fatalf("headEnd %d past %d bytes", n, len(data))
		}
		head := bytes.Clone(data[:n])
		var r request
		if err := parseRequest(head, 100, &r); err != nil {
			if err.status < 400 || err.status > 505 {
				t.Fatalf("refusal with status %d", err.status)
			}
			return
		}
		if len(r.methodRaw) == 0 {
			t.Fatal("accepted without a method")
		}
		if r.method == methodGet || r.method == methodHead {
			if len(r.path) == 0 || r.path[0] != '/' {
				t.Fatalf("accepted path %q", r.path)
			}
			if name, _, _, err := resolvePath(nil, r.path); err == nil && !fs.ValidPath(string(name)) {
				t.Fatalf("resolved %q to invalid fs path %q", r.path, name)
			}
		}
		// net/http is at least as lenient for what this parser accepts,
		// apart from the cases listed.
		// (A path with a bad escape is refused later, by resolvePath.)
		if _, _, _, err := resolvePath(nil, r.path); err != nil {
			return
		}
		if r.minor == 1 && bytes.Contains(head[:bytes.IndexByte(head, '\n')], []byte("HTTP/1.")) &&
			r.method != methodNotAllowed && r.method != methodUnknown {
			hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
			if err != nil {
				t.Fatalf("accepted a head net/http refuses (%v):\n%q", err, head)
			}
			// Expect's members, against a naive model over net/http's
			// fields.
			var cont, other bool
			for _, v := range hr.Header.Values("Expect") {
				for _, m := range strings.Split(v, ",") {
					switch m = strings.Trim(m, " \t"); {
					case m == "":
					case strings.EqualFold(m, "100-continue"):
						cont = true
					default:
						other = true
					}
				}
			}
			if cont != r.expectContinue || other != r.expectOther {
				t.Fatalf("Expect: parsed 100-continue %v, other %v; want %v, %v\n%q", r.expectContinue, r.expectOther, cont, other, head)
			}
		}
	})
}

// FuzzResolvePath: whatever the input, an accepted path is a valid io/fs
// path (no "..", ".", empty element or leading slash), so it cannot leave
// the root, and resolving the result again changes nothing.
func FuzzResolvePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/x", "/..%2f", "//a//b/./", "/a%00", "/%zz", "/.%2e", "/a/b/../../.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !strings.HasPrefix(raw, "/") {
			raw = "/" + raw
		}
		name, _, _, err := resolvePath(nil, []byte(raw))
		if err != nil {
			return
		}
		if !fs.ValidPath(string(name)) {
			t.Fatalf("resolvePath(%q) = %q, not a valid fs path", raw, name)
		}
		if strings.Contains(string(name), "%") {
			return // decoding again would decode twice
		}
		again, _, _, err := resolvePath(nil, []byte("/"+string(name)))
		if err != nil || string(again) != string(name) {
			t.Fatalf("resolving %q again gave %q, %v", name, again, err)
		}
	})
}

// FuzzParseRanges: satisfiable ranges lie inside the file, are not empty,
// are at most maxRanges and add up to no more than the file.
func FuzzParseRanges(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=3-", "bytes=0-1,2-3,,", "bytes=9999999999999999999-", "BYTES = 1-2"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, spec string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		rs, res := parseRanges(nil, []byte(spec), size)
		if res != rangeSatisfiable {
			return
		}
		var total int64
		if len(rs) == 0 || len(rs) > maxRanges {
			t.Fatalf("%d ranges", len(rs))
		}
		for _, r := range rs {
			if r.start < 0 || r.length < 1 || r.start+r.length > size {
				t.Fatalf("range %+v outside a file of %d bytes", r, size)
			}
			total += r.length
		}
		if total > size {
			t.Fatalf("ranges add up to %d of a %d-byte file", total, size)
		}
	})
}

// scriptConn is a net.Conn that reads a fixed input and records what is
// written: the whole connection loop runs on fuzz input without sockets.
type scriptConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }
func (c *scriptConn) CloseWrite() error                { return nil }
func (c *scriptConn) written() string                  { return c.out.String() }

// FuzzConn runs a connection over arbitrary input, with the access log on
// and a small header limit: it must end (the input ends), never panic, and
// write only whole responses, each starting with a status line.
func FuzzConn(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s + "GET /digits.txt HTTP/1.1\r\nHost: x\r\n\r\n"))
	}
	s, err := New(Config{Root: testFS(), IndexFile: "index.html", Listing: true, MaxHeaderBytes: 600, MaxHeaderCount: 10, AccessLog: io.Discard})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := &scriptConn{in: bytes.NewReader(data)}
		c := newConn(s, sc)
		s.add(c)
		c.serve()
		out := sc.written()
		if out != "" && !strings.HasPrefix(out, "HTTP/1.1 ") {
			t.Fatalf("output does not start with a status line: %.80q", out)
		}
		br := bufio.NewReader(strings.NewReader(out))
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				break
			}
			if strings.HasPrefix(line, "HTTP/1.1 ") {
				if len(line) < 14 {
					t.Fatalf("short status line %q", line)
				}
			}
		}
	})
}
