// Command ping is the smallest saturn app: it attaches to its instance and
// makes a nop round trip to each server once a second, logging how long it
// took. Copy it to start an app of your own.
//
//	go build -o ping ./examples/ping
//	saturn attach --name ping -- ./ping          # supervised by the instance
//	./ping                                       # or attach by itself
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"saturn/appproc"
)

func main() {
	every := flag.Duration("every", time.Second, "time between pings")
	count := flag.Int("count", 0, "stop after this many rounds (0: run until SIGTERM)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	app, err := appproc.Attach(ctx, appproc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	log.Printf("attached to instance %q as %q", app.Instance(), app.Name())

	tick := time.NewTicker(*every)
	defer tick.Stop()
	for round := 1; *count == 0 || round <= *count; round++ {
		for _, server := range []string{"netproc", "diskproc"} {
			start := time.Now()
			if err := app.Ping(ctx, server); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Printf("ping %s: %v", server, err)
				continue
			}
			log.Printf("ping %s: %v", server, time.Since(start))
		}
		select {
		case <-ctx.Done():
			log.Print("stopping")
			return
		case <-app.Done():
			log.Print("the instance went away")
			os.Exit(1)
		case <-tick.C:
		}
	}
}
