// Command usertcpbench is bench/usertcp.sh's helper: bulk TCP senders and
// receivers, and a holder of many idle connections, over two socket layers:
// Go's net on kernel sockets ("net", run inside a namespace with
// `ip netns exec`) or appproc through a saturn instance's netproc
// ("saturn", attached to the instance SATURN_STATE_DIR and SATURN_INSTANCE
// name).
//
//	usertcpbench sink -impl saturn -listen :5001            # receive and discard, on each connection
//	usertcpbench source -impl saturn -listen :5002          # send until the peer closes
//	usertcpbench send -impl net -addr 10.77.0.2:5001 -bytes 1G -name Bulk/kernel-to-saturn
//	usertcpbench recv -impl net -addr 10.77.0.2:5002 -bytes 1G -name Bulk/saturn-to-kernel
//	usertcpbench hold -impl saturn -listen :6000            # accept and keep connections, print the count
//	usertcpbench open -impl net -addr 10.77.0.2:6000 -conns 100000 [-src 10.77.0.1,10.77.0.3]
//
// Clients print their result as a `go test -bench` line (MB/s), for
// bench/benchsum.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"saturn/appproc"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: usertcpbench sink|source|send|recv|hold|open [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	impl := fs.String("impl", "net", `socket layer: "net" or "saturn"`)
	listen := fs.String("listen", ":5001", "servers: address to listen on")
	addr := fs.String("addr", "", "clients: server address")
	size := fs.String("bytes", "1G", "send, recv: bytes to move (K, M, G suffixes)")
	buf := fs.Int("buf", 256<<10, "bytes per read or write call")
	name := fs.String("name", "Bulk", "clients: benchmark name to print")
	conns := fs.Int("conns", 10000, "open: connections to open and hold")
	srcs := fs.String("src", "", "open: source addresses to spread connections over (comma-separated)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here")
	fs.Parse(os.Args[2:])
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var app *appproc.App
	if *impl == "saturn" {
		var err error
		app, err = appproc.Attach(ctx, appproc.Options{Name: "usertcpbench-" + os.Args[1] + "-" + strconv.Itoa(os.Getpid())})
		if err != nil {
			log.Fatal(err)
		}
		defer app.Close()
	}
	listenFn := func(a string) (net.Listener, error) {
		if app != nil {
			return app.Listen("tcp", a)
		}
		return net.Listen("tcp", a)
	}
	dial := func(a string) (net.Conn, error) {
		if app != nil {
			return app.Dial(ctx, "tcp", a)
		}
		return net.DialTimeout("tcp", a, 10*time.Second)
	}
	n := parseSize(*size)
	switch os.Args[1] {
	case "sink", "source":
		ln, err := listenFn(*listen)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ln.Addr())
		go func() { <-ctx.Done(); ln.Close() }()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, *buf)
				if os.Args[1] == "sink" {
					discard(c, b)
				} else {
					for {
						if _, err := c.Write(b); err != nil {
							return
						}
					}
				}
			}()
		}
	case "send", "recv":
		c, err := dial(*addr)
		if err != nil {
			log.Fatal(err)
		}
		b := make([]byte, *buf)
		start := time.Now()
		var moved int64
		if os.Args[1] == "send" {
			for moved < n {
				k, err := c.Write(b[:min(int64(len(b)), n-moved)])
				moved += int64(k)
				if err != nil {
					log.Fatal(err)
				}
			}
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			io.Copy(io.Discard, c) // the sink closes once it has read everything
		} else {
			for moved < n {
				k, err := c.Read(b)
				moved += int64(k)
				if err != nil {
					log.Fatal(err)
				}
			}
		}
		el := time.Since(start)
		c.Close()
		fmt.Printf("Benchmark%s\t1\t%.1f MB/s\n", *name, float64(moved)/el.Seconds()/1e6)
	case "hold":
		ln, err := listenFn(*listen)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ln.Addr())
		var held atomic.Int64
		var mu sync.Mutex
		var keep []net.Conn
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				keep = append(keep, c)
				mu.Unlock()
				held.Add(1)
			}
		}()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "held %d\n", held.Load())
			}
		}
	case "open":
		var sources []string
		if *srcs != "" {
			sources = strings.Split(*srcs, ",")
		}
		var keep []net.Conn
		start := time.Now()
		for i := 0; i < *conns; i++ {
			var c net.Conn
			var err error
			if len(sources) > 0 {
				d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(sources[i%len(sources)])}}
				c, err = d.Dial("tcp", *addr)
			} else {
				c, err = dial(*addr)
			}
			if err != nil {
				log.Fatalf("connection %d: %v", i, err)
			}
			keep = append(keep, c)
			if (i+1)%10000 == 0 {
				fmt.Fprintf(os.Stderr, "opened %d in %v\n", i+1, time.Since(start).Round(time.Millisecond))
			}
		}
		fmt.Printf("opened %d\n", len(keep))
		<-ctx.Done()
	default:
		log.Fatalf("unknown mode %q", os.Args[1])
	}
}

// discard reads r into b until it fails. Not io.CopyBuffer(io.Discard, r,
// b): io.Discard is an io.ReaderFrom, which copy prefers to the buffer
// given, and it reads in 8 KiB pieces; through appproc each read is a
// recv of its size (the sink then measured its own small reads).
func discard(r io.Reader, b []byte) {
	for {
		if _, err := r.Read(b); err != nil {
			return
		}
	}
}

func parseSize(s string) int64 {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		log.Fatalf("bad size %q", s)
	}
	return v * mult
}
