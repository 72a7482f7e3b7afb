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
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"saturn/appproc"
	"saturn/bench/internal/socklayer"
)

func main() {
	mode, fs := socklayer.Command("usertcpbench sink|source|send|recv|hold|open [flags]")
	layer := socklayer.AddFlags(fs, ":5001", "Bulk")
	listen, addr, name := layer.Listen, layer.Addr, layer.Name
	size := fs.String("bytes", "1G", "send, recv: bytes to move (K, M, G suffixes)")
	buf := fs.Int("buf", 256<<10, "bytes per read or write call")
	conns := fs.Int("conns", 10000, "open: connections to open and hold")
	srcs := fs.String("src", "", "open: source addresses to spread connections over (comma-separated)")
	fs.Parse(os.Args[2:])
	ctx, l, done := layer.Start("usertcpbench-"+mode+"-"+strconv.Itoa(os.Getpid()), appproc.Options{})
	defer done()
	switch mode {
	case "sink":
		socklayer.Serve(ctx, l.MustListen(*listen), func(c net.Conn) { discard(c, make([]byte, *buf)) })
	case "source":
		socklayer.Serve(ctx, l.MustListen(*listen), func(c net.Conn) { source(c, make([]byte, *buf)) })
	case "send", "recv":
		bulk(ctx, l, mode, *addr, parseSize(*size), *buf, *name)
	case "hold":
		hold(ctx, l.MustListen(*listen))
	case "open":
		var sources []string
		if *srcs != "" {
			sources = strings.Split(*srcs, ",")
		}
		open(ctx, l, *addr, *conns, sources)
	default:
		log.Fatalf("unknown mode %q", mode)
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

// source writes b to w until it fails.
func source(w io.Writer, b []byte) {
	for {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}

// bulk sends n bytes to addr (mode "send", to a sink), or receives n bytes
// from it (mode "recv", from a source), in calls of buf bytes, and prints
// the rate.
func bulk(ctx context.Context, l *socklayer.Layer, mode, addr string, n int64, buf int, name string) {
	c, err := l.Dial(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	b := make([]byte, buf)
	start := time.Now()
	var moved int64
	if mode == "send" {
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
	socklayer.PrintResult(name, 1, fmt.Sprintf("%.1f", float64(moved)/el.Seconds()/1e6), "MB/s")
}

// hold accepts connections on ln and keeps them until ctx ends, printing
// how many it holds every second.
func hold(ctx context.Context, ln net.Listener) {
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
}

// open opens conns connections to addr, from the given source addresses
// in turn (kernel sockets) or as the layer chooses, and holds them until
// ctx ends.
func open(ctx context.Context, l *socklayer.Layer, addr string, conns int, sources []string) {
	var keep []net.Conn
	start := time.Now()
	for i := 0; i < conns; i++ {
		var c net.Conn
		var err error
		if len(sources) > 0 {
			d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(sources[i%len(sources)])}}
			c, err = d.Dial("tcp", addr)
		} else {
			c, err = l.Dial(ctx, addr)
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
