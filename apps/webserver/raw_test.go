package webserver

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRawExchanges sends byte streams a well-behaved client library would
// never produce, pipelined and malformed, and checks every response and
// whether the connection was kept.
func TestRawExchanges(t *testing.T) {
	_, addr := startServer(t, Config{IndexFile: "index.html", MaxHeaderBytes: 1024, MaxHeaderCount: 20, MaxBodyBytes: 100})
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }
	tests := []struct {
		name    string
		in      string
		methods []string // per response; default GET
		status  []int
		bodies  []string // checked where non-empty
		closed  bool     // the last response says Connection: close
	}{
		{name: "pipelined", in: get("/hello.txt") + get("/digits.txt") + get("/nope") + get("/"),
			status: []int{200, 200, 404, 200}, bodies: []string{"hello, world\n", "0123456789", "", "<h1>home</h1>\n"}},
		{name: "pipelined with HEAD between", in: get("/digits.txt") + "HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n" + get("/digits.txt"),
			methods: []string{"GET", "HEAD", "GET"}, status: []int{200, 200, 200}, bodies: []string{"0123456789", "", "0123456789"}},
		{name: "pipelined big", in: get("/big.bin") + get("/digits.txt") + get("/big.bin"),
			status: []int{200, 200, 200}, bodies: []string{string(bigData), "0123456789", string(bigData)}},
		{name: "empty lines before request", in: "\r\n\r\n" + get("/digits.txt"), status: []int{200}},
		{name: "connection close", in: "GET /digits.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + get("/hello.txt"),
			status: []int{200}, closed: true},
		{name: "HTTP/1.0 closes", in: "GET /digits.txt HTTP/1.0\r\n\r\n" + get("/hello.txt"), status: []int{200}, closed: true},
		{name: "HTTP/1.0 keep-alive", in: "GET /digits.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + get("/hello.txt"), status: []int{200, 200}},
		{name: "absolute form", in: "GET http://x/digits.txt HTTP/1.1\r\nHost: x\r\n\r\n", status: []int{200}, bodies: []string{"0123456789"}},
		{name: "body discarded", in: "GET /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nABCDE" + get("/hello.txt"),
			status: []int{200, 200}, bodies: []string{"0123456789", "hello, world\n"}},
		{name: "post with body then get", in: "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + get("/digits.txt"),
			status: []int{405, 200}},
		{name: "body too large", in: "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n" + strings.Repeat("a", 101), status: []int{413}, closed: true},
		{name: "chunked body", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: []int{411}, closed: true},
		{name: "unknown coding", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", status: []int{501}, closed: true},
		{name: "expect with body closes", in: "GET /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nab" + get("/"),
			status: []int{200}, closed: true},

		{name: "traversal", in: get("/../etc/passwd") + get("/digits.txt"), status: []int{400, 200}},
		{name: "encoded traversal", in: get("/%2e%2e/%2e%2e/etc/passwd"), status: []int{400}},
		{name: "encoded slash traversal", in: get("/..%2f..%2fetc%2fpasswd"), status: []int{400}},
		{name: "mixed traversal", in: get("/sub/..%2F..%2F..%2Fetc/passwd"), status: []int{400}},
		{name: "bad escape", in: get("/a%zz"), status: []int{400}},
		{name: "NUL", in: get("/a%00.txt"), status: []int{400}},
		{name: "fragment", in: get("/a#b"), status: []int{400}, closed: true},

		{name: "no host", in: "GET / HTTP/1.1\r\n\r\n", status: []int{400}, closed: true},
		{name: "garbage", in: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", status: []int{400}, closed: true},
		{name: "HTTP/2 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: []int{505}, closed: true},
		{name: "HTTP/3.0", in: "GET / HTTP/3.0\r\nHost: x\r\n\r\n", status: []int{505}, closed: true},
		{name: "too many fields", in: "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", 20) + "\r\n", status: []int{431}, closed: true},
		{name: "head too large", in: "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 1100) + "\r\n\r\n", status: []int{431}, closed: true},
		{name: "request line too long", in: "GET /" + strings.Repeat("a", 1100) + " HTTP/1.1\r\nHost: x\r\n\r\n", status: []int{414}, closed: true},
		{name: "error after good ones", in: get("/digits.txt") + "GET / HTTP/1.1\r\nHost : x\r\n\r\n" + get("/"), status: []int{200, 400}, closed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := exchange(t, addr, tt.in)
			rs := parseResponses(t, out, tt.methods...)
			if len(rs) != len(tt.status) {
				t.Fatalf("%d responses, want %d:\n%s", len(rs), len(tt.status), out)
			}
			for i, r := range rs {
				if r.StatusCode != tt.status[i] {
					t.Errorf("response %d: status %d, want %d", i, r.StatusCode, tt.status[i])
				}
				if i < len(tt.bodies) && tt.bodies[i] != "" && r.body != tt.bodies[i] {
					t.Errorf("response %d: body %.60q, want %.60q", i, r.body, tt.bodies[i])
				}
				if i < len(tt.methods) && tt.methods[i] == "HEAD" && r.body != "" {
					t.Errorf("response %d to HEAD has a body", i)
				}
			}
			last := rs[len(rs)-1]
			if got := last.Close; got != tt.closed {
				t.Errorf("last response Connection: close = %v, want %v", got, tt.closed)
			}
		})
	}
}

// TestHeadHasNoBody checks HEAD at the byte level: the response ends with
// its head, so the next pipelined response starts right after it.
func TestHeadHasNoBody(t *testing.T) {
	_, addr := startServer(t, Config{IndexFile: "index.html"})
	out := exchange(t, addr, "HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\nHEAD /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	first, rest, ok := strings.Cut(out, "\r\n\r\n")
	if !ok || !strings.Contains(first, "Content-Length: 102400") {
		t.Fatalf("first response head: %q", first)
	}
	second, tail, ok := strings.Cut(rest, "\r\n\r\n")
	if !ok || !strings.HasPrefix(second, "HTTP/1.1 404 ") || tail != "" {
		t.Fatalf("after the HEAD response: %q then %q", second, tail)
	}
}

// TestErrorDate: a connection's very first request refused while reading
// its head still gets a current Date (and does not spoil the shared cache).
func TestErrorDate(t *testing.T) {
	_, addr := startServer(t, Config{MaxHeaderBytes: 600})
	for range 2 {
		out := exchange(t, addr, "GET /"+strings.Repeat("a", 700)+" HTTP/1.1\r\nHost: x\r\n\r\n")
		rs := parseResponses(t, out)
		if len(rs) != 1 || rs[0].StatusCode != 414 {
			t.Fatalf("got %q", out)
		}
		d, err := http.ParseTime(rs[0].Header.Get("Date"))
		if err != nil || time.Since(d).Abs() > time.Minute {
			t.Errorf("Date %q: %v", rs[0].Header.Get("Date"), err)
		}
	}
}
