// Command lgrun runs the load generator over kernel sockets from the
// command line, as `saturn app loadgen --kernel` does, in a small binary of
// its own; bench/webserver.sh and bench/webserver-kernel.sh use it to
// cross-check the load generator against wrk.
//
//	go run ./apps/loadgen/internal/lgrun -c 64 -d 10s http://127.0.0.1:8080/1k.bin
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"

	"saturn/apps/loadgen"
)

func main() {
	var cfg loadgen.Config
	flag.IntVar(&cfg.Connections, "c", 64, "connections")
	flag.DurationVar(&cfg.Duration, "d", 0, "duration (default 10s unless -n)")
	flag.Int64Var(&cfg.Requests, "n", 0, "number of requests")
	flag.Float64Var(&cfg.Rate, "rate", 0, "open loop at this many requests/s in total (0: closed loop)")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	progress := flag.Bool("progress", false, "draw a progress bar on standard error")
	page := flag.String("report", "", "also write the report as a self-contained HTML page to this file")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: lgrun [flags] URL")
	}
	cfg.URL = flag.Arg(0)
	if *progress {
		cfg.Progress = func(p loadgen.Progress) {
			n := int(p.Fraction * 40)
			fmt.Fprintf(os.Stderr, "\r[%s%s] %3.0f%% %d responses, %.0f/s, %d errors", strings.Repeat("=", n), strings.Repeat(" ", 40-n), 100*p.Fraction, p.Responses, p.Rate, p.Errors)
			if p.Final {
				fmt.Fprintln(os.Stderr)
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if *page != "" {
		var b bytes.Buffer
		if err := rep.WriteHTML(&b); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*page, b.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if *asJSON {
		js, _ := rep.JSON()
		fmt.Println(string(js))
		return
	}
	fmt.Print(rep)
}
