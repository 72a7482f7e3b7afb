// Command netbench is bench/netproc.sh's helper: the same echo and HTTP
// servers and echo client over two socket layers, Go's net on the host's
// kernel sockets ("net") or appproc through a saturn instance's netproc
// ("saturn"). With -impl saturn it attaches itself to the instance named
// by SATURN_STATE_DIR and SATURN_INSTANCE.
//
//	netbench echo-server -impl saturn -listen 127.0.0.1:9000
//	netbench echo-client -impl net -addr 127.0.0.1:9000 -size 64 -time 3s -name Echo64/saturn-server
//	netbench http-server -impl net -listen 127.0.0.1:9001
//
// The client prints its result as a `go test -bench` line (ns/op is one
// round trip; cpu-ns/op and switches/op the client's own CPU and context
// switches per round trip), so that bench/benchsum takes medians and
// ratios.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"saturn/appproc"
	"saturn/bench/internal/socklayer"
)

func main() {
	cmd, fs := socklayer.Command("netbench echo-server|echo-client|http-server [flags]")
	layer := socklayer.AddFlags(fs, "127.0.0.1:0", "Echo")
	size := fs.Int("size", 64, "client: message size")
	dur := fs.Duration("time", 3*time.Second, "client: how long to measure")
	fs.Parse(os.Args[2:])
	listen, addr, name := layer.Listen, layer.Addr, layer.Name
	appName := fmt.Sprintf("netbench-%s-%d", cmd, os.Getpid())
	ctx, l, done := layer.Start(appName, appproc.Options{Servers: []string{"netproc"}})
	defer done()
	switch cmd {
	case "echo-server":
		socklayer.Serve(ctx, l.MustListen(*listen), func(c net.Conn) { io.Copy(c, c) })
	case "http-server":
		ln := l.MustListen(*listen)
		body := bytes.Repeat([]byte("x"), 1024)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(body)
		})}
		go func() { <-ctx.Done(); srv.Close() }()
		srv.Serve(ln)
	case "echo-client":
		echoClient(ctx, l, *addr, *size, *dur, *name)
	default:
		log.Fatalf("unknown command %q", cmd)
	}
}

// echoClient measures round trips of size bytes on one connection to addr
// for dur, after a warm-up, and prints ns per round trip.
func echoClient(ctx context.Context, l *socklayer.Layer, addr string, size int, dur time.Duration, name string) {
	c, err := l.Dial(ctx, addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	msg, back := make([]byte, size), make([]byte, size)
	roundTrip := func() {
		if _, err := c.Write(msg); err != nil {
			log.Fatal(err)
		}
		if _, err := io.ReadFull(c, back); err != nil {
			log.Fatal(err)
		}
	}
	for range 1000 { // warm up
		roundTrip()
	}
	cpu0, switches0 := usage()
	n, start := 0, time.Now()
	for time.Since(start) < dur {
		for range 100 {
			roundTrip()
		}
		n += 100
	}
	el := time.Since(start)
	cpu, switches := usage()
	cpu, switches = cpu-cpu0, switches-switches0
	// Beside the latency, what the client process spent per round trip:
	// its CPU, and how often its threads were switched out, which on a
	// VM costs more than the work (see docs/benchmarks.md, "netproc").
	fmt.Printf("Benchmark%s\t%d\t%.0f ns/op\t%.0f cpu-ns/op\t%.2f switches/op\n", name, n,
		float64(el.Nanoseconds())/float64(n), float64(cpu.Nanoseconds())/float64(n), float64(switches)/float64(n))
}

// usage is the process's CPU time (user and system) and context switches
// (voluntary and not) so far.
func usage() (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpu, ru.Nvcsw + ru.Nivcsw
}
