// Command echo is a TCP echo server in saturn's thread style: one
// goroutine per connection, blocking calls, Go's own interfaces. Its
// sockets live in netproc; its listener outlives it, so when the
// supervisor restarts it, it takes the listener back (with what queued
// meanwhile) instead of opening a new one.
//
//	go build -o echo ./examples/echo
//	saturn attach --name echo --restart always -- ./echo --listen :7007
//	echo hello | nc -q1 localhost 7007
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"net"
	"os/signal"
	"syscall"

	"saturn/appproc"
)

func main() {
	addr := flag.String("listen", ":7007", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	app, err := appproc.Attach(ctx, appproc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	ln, err := app.ListenTCP("tcp", *addr, appproc.ListenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	how := "new listener"
	if ln.Adopted() {
		how = "adopted from the previous incarnation"
	}
	log.Printf("listening on %s (%s)", ln.Addr(), how)
	app.Ready(ctx, map[string]string{"listen": ln.Addr().String()})
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Printf("accept: %v", err)
			continue
		}
		go serve(c)
	}
}

func serve(c net.Conn) {
	defer c.Close()
	if _, err := io.Copy(c, c); err != nil {
		log.Printf("%s: %v", c.RemoteAddr(), err)
	}
}
