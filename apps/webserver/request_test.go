package webserver

import (
	"strings"
	"testing"
)

func TestHeadEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET", 27},
		{"GET / HTTP/1.1\nHost: a\n\n", 24},
		{"GET / HTTP/1.1\r\nHost: a\n\r\n", 26},
		{"GET / HTTP/1.1\r\nHost: a\r\n", -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", -1},
		{"GET / HTTP/1.1", -1},
		{"", -1},
		{"\n\n", 2}, // an empty head; skipEmptyLines runs first in practice
	}
	for _, tt := range tests {
		if got := headEnd([]byte(tt.in), 0); got != tt.want {
			t.Errorf("headEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
		// Feeding the bytes one at a time, resuming where the last call
		// stopped, must find the same end.
		got := -1
		for i := 1; i <= len(tt.in) && got < 0; i++ {
			got = headEnd([]byte(tt.in[:i]), max(i-1, 0))
		}
		if got != tt.want {
			t.Errorf("headEnd(%q) byte by byte = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		status int // 0: accepted
		check  func(t *testing.T, r *request)
	}{
		{name: "simple", in: "GET /a/b.txt?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", check: func(t *testing.T, r *request) {
			if r.method != methodGet || string(r.path) != "/a/b.txt" || string(r.query) != "x=1" || r.minor != 1 || !r.keepAlive() {
				t.Errorf("got %+v", r)
			}
		}},
		{name: "head", in: "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", check: func(t *testing.T, r *request) {
			if r.method != methodHead {
				t.Errorf("method %v", r.method)
			}
		}},
		{name: "bare LF", in: "GET / HTTP/1.1\nHost: h\n\n"},
		{name: "HTTP/1.0 without Host closes", in: "GET / HTTP/1.0\r\n\r\n", check: func(t *testing.T, r *request) {
			if r.minor != 0 || r.keepAlive() {
				t.Errorf("minor %d keepAlive %v", r.minor, r.keepAlive())
			}
		}},
		{name: "HTTP/1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", check: func(t *testing.T, r *request) {
			if !r.keepAlive() {
				t.Error("not keep-alive")
			}
		}},
		{name: "connection close among options", in: "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, CLOSE\r\n\r\n", check: func(t *testing.T, r *request) {
			if r.keepAlive() {
				t.Error("keep-alive despite close")
			}
		}},
		{name: "HTTP/1.2 reads as 1.1", in: "GET / HTTP/1.2\r\nHost: h\r\n\r\n", check: func(t *testing.T, r *request) {
			if r.minor != 1 {
				t.Errorf("minor %d", r.minor)
			}
		}},
		{name: "absolute form", in: "GET http://example.com/x/y?q HTTP/1.1\r\nHost: example.com\r\n\r\n", check: func(t *testing.T, r *request) {
			if string(r.path) != "/x/y" || string(r.query) != "q" {
				t.Errorf("path %q query %q", r.path, r.query)
			}
		}},
		{name: "absolute form without path", in: "GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", check: func(t *testing.T, r *request) {
			if string(r.path) != "/" {
				t.Errorf("path %q", r.path)
			}
		}},
		{name: "absolute form query only", in: "GET http://example.com?a HTTP/1.1\r\nHost: example.com\r\n\r\n", check: func(t *testing.T, r *request) {
			if string(r.path) != "/" || string(r.query) != "a" {
				t.Errorf("path %q query %q", r.path, r.query)
			}
		}},
		{name: "field values trimmed", in: "GET / HTTP/1.1\r\nHost:  h \t\r\nRange:\tbytes=0-1 \r\n\r\n", check: func(t *testing.T, r *request) {
			if string(r.host) != "h" || string(r.rangeSpec) != "bytes=0-1" {
				t.Errorf("host %q range %q", r.host, r.rangeSpec)
			}
		}},
		{name: "case-insensitive names", in: "GET / HTTP/1.1\r\nhOsT: h\r\nIF-NONE-MATCH: \"a\"\r\nif-none-match: \"b\"\r\n\r\n", check: func(t *testing.T, r *request) {
			if len(r.ifNoneMatch) != 2 {
				t.Errorf("if-none-match %q", r.ifNoneMatch)
			}
		}},
		{name: "content length", in: "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nContent-Length: 12\r\n\r\n", check: func(t *testing.T, r *request) {
			if r.contentLength != 12 || !r.hasBody() {
				t.Errorf("content length %d", r.contentLength)
			}
		}},
		{name: "chunked", in: "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", check: func(t *testing.T, r *request) {
			if !r.hasTE || !r.teChunked {
				t.Errorf("te %v chunked %v", r.hasTE, r.teChunked)
			}
		}},
		{name: "unknown method accepted by the parser", in: "BREW / HTTP/1.1\r\nHost: h\r\n\r\n", check: func(t *testing.T, r *request) {
			if r.method != methodUnknown {
				t.Errorf("method %v", r.method)
			}
		}},
		{name: "OPTIONS asterisk", in: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"},
		{name: "CONNECT authority", in: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{name: "obs-text in value", in: "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: caf\xc3\xa9\r\n\r\n"},

		{name: "no version", in: "GET /\r\nHost: h\r\n\r\n", status: 400},
		{name: "double space", in: "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
		{name: "lower-case version", in: "GET / http/1.1\r\nHost: h\r\n\r\n", status: 400},
		{name: "version 2", in: "GET / HTTP/2.0\r\nHost: h\r\n\r\n", status: 505},
		{name: "version 0.9", in: "GET / HTTP/0.9\r\n\r\n", status: 505},
		{name: "version garbage", in: "GET / HTTP/1.x\r\nHost: h\r\n\r\n", status: 400},
		{name: "method not a token", in: "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
		{name: "relative target", in: "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
		{name: "fragment", in: "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
		{name: "control in target", in: "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
		{name: "foreign scheme", in: "GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
		{name: "missing host", in: "GET / HTTP/1.1\r\n\r\n", status: 400},
		{name: "two hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400},
		{name: "space before colon", in: "GET / HTTP/1.1\r\nHost : h\r\n\r\n", status: 400},
		{name: "no colon", in: "GET / HTTP/1.1\r\nHost: h\r\nnocolon\r\n\r\n", status: 400},
		{name: "empty name", in: "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", status: 400},
		{name: "obs-fold", in: "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", status: 400},
		{name: "NUL in value", in: "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", status: 400},
		{name: "bare CR in value", in: "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", status: 400},
		{name: "bad content length", in: "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", status: 400},
		{name: "negative content length", in: "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", status: 400},
		{name: "conflicting content lengths", in: "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", status: 400},
		{name: "huge content length", in: "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", status: 400},
		{name: "length and coding", in: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "too many fields", in: "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X: y\r\n", 10) + "\r\n", status: 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := []byte(tt.in)
			if n := headEnd(head, 0); n != len(head) {
				t.Fatalf("headEnd = %d, want %d", n, len(head))
			}
			var r request
			err := parseRequest(head, 10, &r)
			switch {
			case tt.status == 0 && err != nil:
				t.Fatalf("refused: %v (%d)", err, err.status)
			case tt.status != 0 && err == nil:
				t.Fatalf("accepted, want %d", tt.status)
			case tt.status != 0 && err.status != tt.status:
				t.Fatalf("status %d (%v), want %d", err.status, err, tt.status)
			}
			if err == nil && tt.check != nil {
				tt.check(t, &r)
			}
		})
	}
}

func TestSkipEmptyLines(t *testing.T) {
	for in, want := range map[string]int{"\r\n\r\nGET": 4, "\nGET": 1, "GET": 0, "\r": 0, "\r\n\r": 2} {
		if got := skipEmptyLines([]byte(in)); got != want {
			t.Errorf("skipEmptyLines(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestParseRequestAllocs: the parser allocates nothing once a connection's
// request lists have grown.
func TestParseRequestAllocs(t *testing.T) {
	head := []byte("GET /index.html HTTP/1.1\r\nHost: localhost\r\nUser-Agent: x\r\nAccept: */*\r\nIf-None-Match: \"a\"\r\nConnection: keep-alive\r\n\r\n")
	var r request
	parseRequest(head, 100, &r)
	if n := testing.AllocsPerRun(100, func() { parseRequest(head, 100, &r) }); n != 0 {
		t.Errorf("parseRequest allocates %v times per call", n)
	}
}
