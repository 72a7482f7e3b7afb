// Command httpserver is a plain net/http server on saturn: Go's own
// http.Server over an appproc listener, stopped gracefully through
// appproc. When the supervisor restarts it (`saturn restart`, `saturn
// upgrade`), it finishes the requests in flight, and its listener is left
// to netproc for the next incarnation, so no client is refused meanwhile.
//
//	go build -o httpserver ./examples/httpserver
//	saturn attach --name hello --restart always -- ./httpserver --listen :8081
//	curl localhost:8081/
//	saturn restart hello                     # under load: no request fails
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"saturn/appproc"
)

func main() {
	addr := flag.String("listen", ":8081", "address to listen on")
	flag.Parse()
	// Done on SIGTERM: the supervisor asks the app to stop.
	ctx := appproc.StopContext(context.Background())

	app, err := appproc.Attach(ctx, appproc.Options{DeferReady: true})
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	ln, err := app.ListenTCP("tcp", *addr, appproc.ListenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s (adopted from the previous incarnation: %v)", ln.Addr(), ln.Adopted())
	app.Ready(ctx, map[string]string{"listen": ln.Addr().String()})

	pid := os.Getpid()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %d\n", pid)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		// Shutdown closes the listener, which leaves it to the next
		// incarnation now that the app is stopping, then waits for the
		// requests in flight.
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Printf("shutdown: %v", err)
		}
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-stopped
	log.Print("stopped")
}
