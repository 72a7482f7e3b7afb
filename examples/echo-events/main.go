// Command echo-events is the TCP echo server of examples/echo in saturn's
// event style: no goroutine per connection, but one loop that submits
// operations to netproc and reacts to their completions, each operation
// carrying the callback that handles its completion, as the seed's
// event-driven servers did.
//
// An idle connection costs it a small record and a receive waiting in
// netproc, which holds no call slot and no buffer (a Recv with a nil
// buffer takes its bytes only once they have come), so it can hold as many
// connections as netproc lets it; --idle-timeout closes those that stay
// quiet.
//
//	go build -o echo-events ./examples/echo-events
//	saturn attach --name echo-events -- ./echo-events --listen 127.0.0.1:7008
package main

import (
	"context"
	"flag"
	"log"
	"net/netip"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"saturn/appproc"
)

// server is the loop's state. The callbacks run on the loop's goroutine
// (ev.Run); the idle timers, on their own, only close connections.
type server struct {
	app  *appproc.App
	ev   *appproc.Events
	ln   appproc.Handle
	idle time.Duration
	open atomic.Int64 // connections held, for the app's status
	addr atomic.Value // the listening address, once listening
}

// conn is one connection: its socket and its idle timer.
type conn struct {
	h      appproc.Handle
	timer  *time.Timer
	closed atomic.Bool
}

func main() {
	addr := flag.String("listen", "127.0.0.1:7008", "address to listen on (IP:port)")
	idle := flag.Duration("idle-timeout", 5*time.Minute, "close a connection that sends nothing for this long (0: never)")
	flag.Parse()
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil {
		log.Fatalf("--listen: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	app, err := appproc.Attach(ctx, appproc.Options{DeferReady: true})
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	ev, err := app.Events()
	if err != nil {
		log.Fatal(err)
	}
	s := &server{app: app, ev: ev, idle: *idle}
	ev.Listen(ap, 0, 0, appproc.EventCallback(s.listened))
	go s.report(ctx)
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
	s.addr.Store(e.Local.String())
	s.app.Ready(context.Background(), map[string]string{"listen": e.Local.String()})
	s.ev.Accept(s.ln, appproc.EventCallback(s.accepted))
}

func (s *server) accepted(e *appproc.Event) {
	if e.Err != nil {
		// Out of sockets or memory (EMFILE, ENOBUFS: netproc logged which
		// limit): the connection stays queued; try again shortly rather
		// than spin.
		log.Printf("accept: %v", e.Err)
		time.AfterFunc(100*time.Millisecond, func() { s.ev.Accept(s.ln, appproc.EventCallback(s.accepted)) })
		return
	}
	s.ev.Accept(s.ln, appproc.EventCallback(s.accepted)) // ready for the next one
	c := &conn{h: e.Handle}
	s.open.Add(1)
	if s.idle > 0 {
		c.timer = time.AfterFunc(s.idle, func() { s.close(c) })
	}
	s.recv(c)
}

func (s *server) recv(c *conn) {
	s.ev.Recv(c.h, nil, appproc.EventCallback(func(e *appproc.Event) { s.received(c, e) }))
}

// received echoes what came and asks for more. The send copies the bytes
// before it returns, and a socket's operations run in order.
func (s *server) received(c *conn, e *appproc.Event) {
	if e.Err != nil || e.N == 0 { // an error (or our own close), or the end of the stream
		s.close(c)
		return
	}
	if c.timer != nil {
		c.timer.Reset(s.idle)
	}
	s.ev.Send(c.h, e.Data, nil)
	s.recv(c)
}

// close closes c once, whoever gets there first: its idle timer, or the
// end of its stream.
func (s *server) close(c *conn) {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	s.ev.Close(c.h, nil)
	s.open.Add(-1)
}

// report tells status how many connections are held, once a second while
// the count changes.
func (s *server) report(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		addr, _ := s.addr.Load().(string)
		if n := s.open.Load(); n != last && addr != "" {
			last = n
			s.app.Ready(ctx, map[string]string{"listen": addr, "connections": strconv.FormatInt(n, 10)})
		}
	}
}
