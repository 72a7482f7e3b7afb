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
// round trip), so that bench/benchsum takes medians and ratios.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"saturn/appproc"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: netbench echo-server|echo-client|http-server [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	impl := fs.String("impl", "net", `socket layer: "net" or "saturn"`)
	listen := fs.String("listen", "127.0.0.1:0", "server: address to listen on")
	addr := fs.String("addr", "", "client: server address")
	size := fs.Int("size", 64, "client: message size")
	dur := fs.Duration("time", 3*time.Second, "client: how long to measure")
	name := fs.String("name", "Echo", "client: benchmark name to print")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here (servers: until stopped)")
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
		appName := fmt.Sprintf("netbench-%s-%d", os.Args[1], os.Getpid())
		if app, err = appproc.Attach(ctx, appproc.Options{Name: appName, Servers: []string{"netproc"}}); err != nil {
			log.Fatal(err)
		}
		defer app.Close()
	} else if *impl != "net" {
		log.Fatalf("-impl %q: want net or saturn", *impl)
	}
	switch os.Args[1] {
	case "echo-server":
		ln := listenOn(app, *listen)
		fmt.Println(ln.Addr()) // the script reads the address
		go func() { <-ctx.Done(); ln.Close() }()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	case "http-server":
		ln := listenOn(app, *listen)
		fmt.Println(ln.Addr())
		body := bytes.Repeat([]byte("x"), 1024)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(body)
		})}
		go func() { <-ctx.Done(); srv.Close() }()
		srv.Serve(ln)
	case "echo-client":
		var c net.Conn
		var err error
		if app != nil {
			c, err = app.Dial(ctx, "tcp", *addr)
		} else {
			c, err = net.Dial("tcp", *addr)
		}
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
		msg, back := make([]byte, *size), make([]byte, *size)
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
		n, start := 0, time.Now()
		for time.Since(start) < *dur {
			for range 100 {
				roundTrip()
			}
			n += 100
		}
		el := time.Since(start)
		fmt.Printf("Benchmark%s\t%d\t%.0f ns/op\n", *name, n, float64(el.Nanoseconds())/float64(n))
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

func listenOn(app *appproc.App, addr string) net.Listener {
	var ln net.Listener
	var err error
	if app != nil {
		ln, err = app.Listen("tcp", addr)
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		log.Fatal(err)
	}
	return ln
}
