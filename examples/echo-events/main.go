// Command echo-events is the TCP echo server of examples/echo in saturn's
// event style: no goroutine per connection, but one loop that submits
// operations to netproc and reacts to their completions, each operation
// carrying the callback that handles its completion, as the seed's
// event-driven servers did.
//
//	go build -o echo-events ./examples/echo-events
//	saturn attach --name echo-events -- ./echo-events --listen :7008
package main

import (
	"context"
	"flag"
	"log"
	"net/netip"
	"os/signal"
	"syscall"

	"saturn/appproc"
)

// server is the loop's state. Only the loop's goroutine (ev.Run) touches
// it, from the callbacks.
type server struct {
	ev *appproc.Events
	ln appproc.Handle
}

func main() {
	addr := flag.String("listen", "127.0.0.1:7008", "address to listen on (IP:port)")
	flag.Parse()
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil {
		log.Fatalf("--listen: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	app, err := appproc.Attach(ctx, appproc.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	ev, err := app.Events()
	if err != nil {
		log.Fatal(err)
	}
	s := &server{ev: ev}
	ev.Listen(ap, 0, 0, appproc.EventCallback(s.listened))
	if err := ev.Run(ctx, nil); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

func (s *server) listened(e *appproc.Event) {
	if e.Err != nil {
		log.Fatalf("listen: %v", e.Err)
	}
	s.ln = e.Handle
	log.Printf("listening on %s (adopted: %v)", e.Local, e.Adopted)
	s.ev.Accept(s.ln, appproc.EventCallback(s.accepted))
}

func (s *server) accepted(e *appproc.Event) {
	s.ev.Accept(s.ln, appproc.EventCallback(s.accepted)) // ready for the next one
	if e.Err != nil {
		log.Printf("accept: %v", e.Err)
		return
	}
	s.recv(e.Handle, make([]byte, 16<<10))
}

func (s *server) recv(h appproc.Handle, buf []byte) {
	s.ev.Recv(h, buf, appproc.EventCallback(s.received))
}

// received echoes what came and asks for more. The send copies the bytes
// before it returns, and a socket's operations run in order, so the buffer
// can take the next recv at once.
func (s *server) received(e *appproc.Event) {
	if e.Err != nil || e.N == 0 { // an error, or the end of the stream
		s.ev.Close(e.Handle, nil)
		return
	}
	s.ev.Send(e.Handle, e.Data, nil)
	s.recv(e.Handle, e.Data[:cap(e.Data)])
}
