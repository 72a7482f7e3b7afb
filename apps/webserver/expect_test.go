package webserver

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestExpectContinue checks RFC 9110 §10.1.1 from a client that does what
// the RFC allows it to: it sends a head with "Expect: 100-continue" and
// waits, without sending its content, for either a 100 (Continue) or a final
// status. The server must answer with the final status at once (it never
// needs a request's content), say that it closes the connection, and
// close it; a server that waited for the content would leave the client
// waiting until HeaderTimeout (an hour here), past the read deadline.
func TestExpectContinue(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			_, addr := startServerOn(t, Config{HeaderTimeout: time.Hour, IdleTimeout: time.Hour}, l.listen(t))
			tests := []struct {
				name   string
				head   string
				status int
			}{
				{"GET", "GET /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", 200},
				{"case-insensitive", "GET /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-Continue\r\n\r\n", 200},
				{"HEAD", "HEAD /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", 200},
				{"missing", "GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", 404},
				{"POST", "POST /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", 405},
				{"unknown method", "BREW /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", 501},
				{"too large", "PUT /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\nExpect: 100-continue\r\n\r\n", 413},
				{"chunked", "PUT /digits.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n", 411},
				{"another expectation too", "GET /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue, tea\r\n\r\n", 417},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					c := DialRaw(t, addr)
					defer c.Close()
					if _, err := io.WriteString(c, tt.head); err != nil {
						t.Fatal(err)
					}
					method, _, _ := strings.Cut(tt.head, " ")
					br := bufio.NewReader(c)
					resp, err := http.ReadResponse(br, &http.Request{Method: method})
					if err != nil {
						t.Fatalf("no response while the client waits to send its content: %v", err)
					}
					body, err := io.ReadAll(resp.Body)
					if err != nil {
						t.Fatalf("body: %v", err)
					}
					if resp.StatusCode != tt.status {
						t.Fatalf("status %d, want %d (a 100 Continue would ask for content the server never reads)", resp.StatusCode, tt.status)
					}
					if tt.status == 200 && method == "GET" && string(body) != "0123456789" {
						t.Errorf("body %q", body)
					}
					if !resp.Close {
						t.Error("the response does not say Connection: close, yet the server cannot know whether the content follows")
					}
					// The server closes without waiting for the content.
					if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
						t.Errorf("after the response: %q, %v; want the end of the stream", rest, err)
					}
				})
			}
		})
	}
}

// TestExpectRaw checks the cases where the content is sent along, or the
// expectation is not one to act on, in pipelined exchanges.
func TestExpectRaw(t *testing.T) {
	_, addr := startServer(t, Config{})
	get := "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name   string
		in     string
		status []int
		closed bool
	}{
		{"no content: served and kept", "GET /digits.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n" + get, []int{200, 200}, false},
		{"empty content: served and kept", "GET /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n" + get, []int{200, 200}, false},
		{"content sent along: closed all the same", "GET /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nab" + get, []int{200}, true},
		{"HTTP/1.0 ignores it", "GET /digits.txt HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nab" + get, []int{200, 200}, false},
		{"HTTP/1.0 ignores others too", "GET /digits.txt HTTP/1.0\r\nConnection: keep-alive\r\nExpect: tea\r\n\r\n" + get, []int{200, 200}, false},
		{"unknown expectation", "GET /digits.txt HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n" + get, []int{417, 200}, false},
		{"with parameters", "GET /digits.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue;x=1\r\n\r\n" + get, []int{417, 200}, false},
		{"in a second field", "GET /digits.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nExpect: tea\r\n\r\n" + get, []int{417, 200}, false},
		{"empty members", "GET /digits.txt HTTP/1.1\r\nHost: x\r\nExpect: , 100-continue ,,\r\n\r\n" + get, []int{200, 200}, false},
		{"unknown with content", "GET /digits.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: tea\r\n\r\nab" + get, []int{417}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := parseResponses(t, exchange(t, addr, tt.in))
			if len(rs) != len(tt.status) {
				t.Fatalf("%d responses, want %d", len(rs), len(tt.status))
			}
			for i, r := range rs {
				if r.StatusCode != tt.status[i] {
					t.Errorf("response %d: %d, want %d", i, r.StatusCode, tt.status[i])
				}
			}
			if got := rs[len(rs)-1].Close; got != tt.closed {
				t.Errorf("last response closes: %v, want %v", got, tt.closed)
			}
		})
	}
}

// TestExpectGoClient: Go's client, which sends "Expect: 100-continue" and
// holds its content back until ExpectContinueTimeout, gets the file at once
// and never sends the content.
func TestExpectGoClient(t *testing.T) {
	_, addr := startServer(t, Config{HeaderTimeout: time.Hour})
	sent := make(chan struct{}, 1)
	body := &notingReader{r: strings.NewReader(strings.Repeat("x", 1000)), read: sent}
	tr := &http.Transport{ExpectContinueTimeout: time.Hour}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+addr+"/hello.txt", body)
	req.ContentLength = 1000
	req.Header.Set("Expect", "100-continue")
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, []byte("hello, world\n")) {
		t.Fatalf("%d %q %v", resp.StatusCode, got, err)
	}
	select {
	case <-sent:
		t.Error("the client was made to send its content")
	default:
	}
}

// notingReader says on read when it is first read.
type notingReader struct {
	r    io.Reader
	read chan struct{}
}

func (n *notingReader) Read(p []byte) (int, error) {
	select {
	case n.read <- struct{}{}:
	default:
	}
	return n.r.Read(p)
}
