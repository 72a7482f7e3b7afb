package webserver

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
)

// fromWriterConn is a connection with WriteFrom, as appproc's TCPConn has:
// the server hands it large bodies with the head it has buffered.
type fromWriterConn struct {
	net.Conn
	calls *atomic.Int64
}

func (c fromWriterConn) WriteFrom(head []byte, r io.Reader) (int64, error) {
	c.calls.Add(1)
	if _, err := c.Conn.Write(head); err != nil {
		return 0, err
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

type fromWriterListener struct {
	net.Listener
	calls atomic.Int64
}

func (l *fromWriterListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return fromWriterConn{c, &l.calls}, nil
}

// TestFromWriter: on a connection that can send a head and a file itself
// (saturn's), large bodies, ranges of them and multipart ranges go through
// WriteFrom and arrive whole, with the cached and the uncached file path;
// small ones and pipelined ones still go through the write buffer.
func TestFromWriter(t *testing.T) {
	mid := strings.Repeat("0123456789abcdef", fromWriterMin/16+10)
	big := string(bigData)
	for _, cache := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache=%v", cache), func(t *testing.T) {
			root := testFS()
			root["mid.bin"] = &fstest.MapFile{Data: []byte(mid), ModTime: testModTime, Mode: 0o644}
			cfg := Config{Root: root}
			if cache {
				cfg.OpenFileCache = 1 << 40
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := &fromWriterListener{Listener: inner}
			go s.Serve(ln)
			defer s.Close()
			client := newClient()
			defer client.CloseIdleConnections()
			for _, tc := range []struct {
				path, rng string
				status    int
				body      string
				parts     []string
				viaFrom   bool
			}{
				{path: "/big.bin", status: 200, body: big, viaFrom: true},
				{path: "/mid.bin", status: 200, body: mid, viaFrom: true},
				{path: "/hello.txt", status: 200, body: "hello, world\n"},
				{path: "/big.bin", rng: "bytes=1000-80999", status: 206, body: big[1000:81000], viaFrom: true},
				{path: "/big.bin", rng: "bytes=10-20", status: 206, body: big[10:21]},
				{path: "/big.bin", rng: "bytes=0-39999,50000-", status: 206, parts: []string{big[:40000], big[50000:]}, viaFrom: true},
			} {
				before := ln.calls.Load()
				req, _ := http.NewRequest("GET", "http://"+inner.Addr().String()+tc.path, nil)
				if tc.rng != "" {
					req.Header.Set("Range", tc.rng)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != tc.status {
					t.Fatalf("%s %s: %d, %v", tc.path, tc.rng, resp.StatusCode, err)
				}
				if tc.parts != nil {
					checkParts(t, resp, got, tc.parts)
				} else if string(got) != tc.body {
					t.Fatalf("%s %s: %d bytes, want %d", tc.path, tc.rng, len(got), len(tc.body))
				}
				if used := ln.calls.Load() > before; used != tc.viaFrom {
					t.Errorf("%s %s: WriteFrom used %v, want %v", tc.path, tc.rng, used, tc.viaFrom)
				}
			}

			// Pipelined: a small response buffered before a big one
			// leaves with it, in order.
			out := exchange(t, inner.Addr().String(), "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"+
				"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nHEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"+
				"GET /digits.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			rs := parseResponses(t, out, "GET", "GET", "HEAD", "GET")
			if len(rs) != 4 || rs[0].body != "hello, world\n" || rs[1].body != big || rs[2].body != "" || rs[3].body != "0123456789" {
				t.Fatalf("pipelined: %d responses", len(rs))
			}
		})
	}
}
