// Package socklayer is what the benchmark helpers (bench/netbench,
// bench/usertcpbench) share: the socket layer a run measures, Go's net on
// the host's kernel sockets ("net") or appproc through a saturn instance's
// netproc ("saturn", attached to the instance that SATURN_STATE_DIR and
// SATURN_INSTANCE name); the flags that choose it; a CPU profile; and the
// accept loop of their servers.
package socklayer

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"saturn/appproc"
)

// Command returns the subcommand a helper was run with (its first
// argument) and a flag set for the rest, or exits with usage.
func Command(usage string) (string, *flag.FlagSet) {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: " + usage)
	}
	return os.Args[1], flag.NewFlagSet(os.Args[1], flag.ExitOnError)
}

// Flags are the flags every helper takes.
type Flags struct {
	impl       *string
	cpuprofile *string
	Listen     *string // servers: the address to listen on
	Addr       *string // clients: the server's address
	Name       *string // clients: the benchmark name to print
}

// AddFlags adds -impl, -cpuprofile, -listen, -addr and -name to fs, with
// the helper's defaults for -listen and -name.
func AddFlags(fs *flag.FlagSet, listen, name string) *Flags {
	return &Flags{
		impl:       fs.String("impl", "net", `socket layer: "net" or "saturn"`),
		cpuprofile: fs.String("cpuprofile", "", "write a CPU profile here (servers: until stopped)"),
		Listen:     fs.String("listen", listen, "servers: address to listen on"),
		Addr:       fs.String("addr", "", "clients: server address"),
		Name:       fs.String("name", name, "clients: benchmark name to print"),
	}
}

// Layer is the socket layer a helper runs on.
type Layer struct {
	app *appproc.App // nil: Go's net
}

// Start starts the CPU profile if one was asked for, and attaches to the
// instance as the app name with -impl saturn. The context ends with SIGINT
// or SIGTERM; done stops the profile and detaches. It exits the process on
// a bad flag or a failed attach.
func (f *Flags) Start(name string, opts appproc.Options) (ctx context.Context, l *Layer, done func()) {
	var stopProfile func()
	if *f.cpuprofile != "" {
		out, err := os.Create(*f.cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(out)
		stopProfile = pprof.StopCPUProfile
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	l = &Layer{}
	switch *f.impl {
	case "net":
	case "saturn":
		opts.Name = name
		app, err := appproc.Attach(ctx, opts)
		if err != nil {
			log.Fatal(err)
		}
		l.app = app
	default:
		log.Fatalf("-impl %q: want net or saturn", *f.impl)
	}
	return ctx, l, func() {
		if l.app != nil {
			l.app.Close()
		}
		stop()
		if stopProfile != nil {
			stopProfile()
		}
	}
}

// Listen listens on addr (TCP).
func (l *Layer) Listen(addr string) (net.Listener, error) {
	if l.app != nil {
		return l.app.Listen("tcp", addr)
	}
	return net.Listen("tcp", addr)
}

// Dial connects to addr (TCP), giving up after 10 s.
func (l *Layer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if l.app != nil {
		return l.app.Dial(ctx, "tcp", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// MustListen listens on addr and prints the address it got, which the
// scripts read; it exits the process if it cannot.
func (l *Layer) MustListen(addr string) net.Listener {
	ln, err := l.Listen(addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr())
	return ln
}

// Serve accepts connections on ln until ctx ends (which closes ln), and
// runs serve on each in a goroutine of its own, closing the connection
// after.
func Serve(ctx context.Context, ln net.Listener, serve func(net.Conn)) {
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			serve(c)
		}()
	}
}

// PrintResult prints a result as a `go test -bench` line, for
// bench/benchsum: Benchmark<name>, the iterations, the value and its unit.
func PrintResult(name string, n int, value string, unit string) {
	fmt.Printf("Benchmark%s\t%d\t%s %s\n", name, n, value, unit)
}
