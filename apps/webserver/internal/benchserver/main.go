// Command benchserver serves a directory over loopback with one of the
// implementations that bench/webserver-kernel.sh compares:
//
//	saturn       this package's server over os.DirFS
//	nethttp      net/http's FileServer over http.Dir (sendfile, the usual way)
//	nethttp-fs   net/http's FileServer over http.FS(os.DirFS): files through
//	             io/fs only, the constraint saturn's server works under
//
// It prints "listening ADDR" once ready and exits on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"saturn/apps/webserver"
)

func main() {
	impl := flag.String("impl", "saturn", "saturn | nethttp | nethttp-fs")
	root := flag.String("root", ".", "directory to serve")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	switch *impl {
	case "saturn":
		err = webserver.Serve(ctx, ln, webserver.Config{Root: os.DirFS(*root), IndexFile: "index.html"})
	case "nethttp", "nethttp-fs":
		h := http.FileServer(http.Dir(*root))
		if *impl == "nethttp-fs" {
			h = http.FileServer(http.FS(os.DirFS(*root)))
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
		go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
		err = srv.Serve(ln)
		if err == http.ErrServerClosed {
			err = nil
		}
	default:
		log.Fatalf("unknown -impl %q", *impl)
	}
	if err != nil {
		log.Print(err)
	}
}
