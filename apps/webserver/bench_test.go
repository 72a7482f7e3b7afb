package webserver

import (
	"bytes"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// benchFS is a directory on disk with the benchmark's files: kernel-backed,
// as in production over kernel sockets.
func benchFS(b *testing.B) fs.FS {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "1k.bin"), bigData[:1<<10], 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), bigData, 0o644); err != nil {
		b.Fatal(err)
	}
	return os.DirFS(dir)
}

// BenchmarkServe measures one keep-alive request and response over
// loopback TCP with a minimal client, so that allocs/op is (nearly) the
// server's own. wrk-based comparisons with net/http and nginx are in
// bench/webserver-kernel.sh.
func BenchmarkServe(b *testing.B) {
	for _, bc := range []struct {
		name string
		path string
		size int
	}{
		{"1KiB", "/1k.bin", 1 << 10},
		{"100KiB", "/big.bin", len(bigData)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			_, addr := startServer(b, Config{Root: benchFS(b)})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET " + bc.path + " HTTP/1.1\r\nHost: bench\r\n\r\n")
			buf := make([]byte, bc.size+4096)
			want := []byte("Content-Length: " + strconv.Itoa(bc.size) + "\r\n")
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				// Read the head, then exactly the body.
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						b.Fatal(err)
					}
					n += m
					if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 {
						if !bytes.Contains(buf[:i], want) {
							b.Fatalf("unexpected response head %q", buf[:i])
						}
						if _, err := io.ReadFull(c, buf[n:i+4+bc.size]); err != nil {
							b.Fatal(err)
						}
						break
					}
				}
			}
		})
	}
}
