package loadgen

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzReadResponse: the response parser never panics or loops on any
// input, and a response it accepts as whole is one net/http also reads to
// its end: a body cut short is never taken for a success.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200\nContent-Length: 0\n\nHTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		rr := newRespReader(bytes.NewReader(data), 512)
		first, err := rr.readResponse(head)
		for i := 0; err == nil && !first.close && i < 100; i++ {
			_, err = rr.readResponse(head)
			if rr.start > rr.end || rr.end > len(rr.buf) {
				t.Fatalf("reader state %d..%d of %d", rr.start, rr.end, len(rr.buf))
			}
		}
		rr = newRespReader(bytes.NewReader(data), 512)
		resp, err := rr.readOne(head)
		if err != nil || resp.status < 200 {
			return
		}
		method := "GET"
		if head {
			method = "HEAD"
		}
		hr, herr := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), &http.Request{Method: method})
		if herr != nil {
			return // net/http is stricter about heads in places; bodies are the point
		}
		if hr.StatusCode != resp.status {
			t.Fatalf("status %d, net/http says %d", resp.status, hr.StatusCode)
		}
		if _, berr := io.Copy(io.Discard, hr.Body); berr != nil {
			t.Fatalf("accepted a response whose body net/http cannot read (%v): %q", berr, data)
		}
	})
}
