package usertcp_test

import (
	"io"
	"net"
	"testing"

	"saturn/netproc/usertcp"
)

// discard reads r into buf until it fails. (io.CopyBuffer(io.Discard, ...)
// would not use buf: io.Discard's ReadFrom reads 8 KiB at a time, and each
// read is one recv through the ring.)
func discard(r io.Reader, buf []byte) {
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// BenchmarkBulk moves bytes between a kernel socket in the namespace and an
// app on the usertcp backend, both in this process (so a profile shows
// netproc's loop, the app and the kernel peer's goroutine together). The
// bytes are zeros: the benchmark measures the stack, not a generator.
// bench/usertcp.sh measures the same across processes, against the kernel
// talking to itself.
func BenchmarkBulk(b *testing.B) {
	for _, dir := range []string{"kernel-to-saturn", "saturn-to-kernel"} {
		b.Run(dir, func(b *testing.B) {
			e := startStack(b, usertcp.Config{})
			ln, err := e.App.Listen("tcp", ":5001")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			serve(ln, func(c net.Conn) {
				buf := make([]byte, 256<<10)
				if dir == "kernel-to-saturn" {
					discard(c, buf)
					return
				}
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			})
			c, err := e.Dial(e.AddrPort(5001))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 256<<10)
			const chunk = 64 << 20
			b.SetBytes(chunk)
			b.ResetTimer()
			for range b.N {
				var moved int
				for moved < chunk {
					var n int
					if dir == "kernel-to-saturn" {
						n, err = c.Write(buf)
					} else {
						n, err = c.Read(buf)
					}
					moved += n
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			c.(*net.TCPConn).Close()
		})
	}
}
