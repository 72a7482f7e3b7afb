// Command idleconns is bench/connections.sh's helper: it holds many idle
// keep-alive HTTP connections to a web server, measures request latency on
// fresh connections while they are held, and serves the same files with Go's
// net/http as the peer to compare with. It uses only the kernel's sockets.
//
//	idleconns hold -addr 10.9.8.2:8080 -n 19000 -src 10.9.8.11,10.9.8.12
//	idleconns probe -addr 10.9.8.2:8080 -n 1000 -c 8
//	idleconns serve -listen 127.0.0.1:0 -root ./site
//
// hold opens n connections, makes one GET on each and keeps it open and
// idle; it prints `held N` on stdout once every one has its response, then
// waits for SIGINT or SIGTERM, on which it resets them all (SO_LINGER 0, so
// that no TIME_WAIT is left behind to blur the next measurement). SIGUSR1 makes it look at every held
// connection without blocking and print `open K closed M` on stdout, so that
// a caller can see whether the server closed them (an idle timeout, a
// crash). A held connection costs this process a file descriptor and Go's
// netFD, no goroutine and no buffer.
//
// probe makes n requests, each on a new connection with `Connection: close`,
// c at a time, and prints one JSON line with the latency percentiles (dial
// to the body's last byte) and the errors; it exits 1 if any failed.
//
// serve is net/http's FileServer on the kernel's sockets, with a 10-minute
// IdleTimeout so that held connections stay; it prints its address first.
// With -reuseport several of them share one port (SO_REUSEPORT), for
// holding more connections than one process has descriptors for.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: idleconns hold|probe|serve [flags]")
	}
	log.SetPrefix("idleconns " + os.Args[1] + ": ")
	args := os.Args[2:]
	switch os.Args[1] {
	case "hold":
		os.Exit(holdMain(args))
	case "probe":
		os.Exit(probeMain(args))
	case "serve":
		os.Exit(serveMain(args))
	default:
		log.Fatalf("unknown subcommand %q: want hold, probe or serve", os.Args[1])
	}
}

// client is what hold and probe share: where to connect, from where, and
// the request to send.
type client struct {
	addr    string
	srcs    []net.Addr // round-robin source addresses; none: the kernel picks
	timeout time.Duration
	request []byte
}

func newClient(addr, path, src string, timeout time.Duration, closeConn bool) (*client, error) {
	if addr == "" {
		return nil, errors.New("-addr is required")
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("-path %q: want an absolute path", path)
	}
	c := &client{addr: addr, timeout: timeout}
	for s := range strings.SplitSeq(src, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("-src %q: not an IP address", s)
		}
		c.srcs = append(c.srcs, &net.TCPAddr{IP: ip})
	}
	hdr := ""
	if closeConn {
		hdr = "Connection: close\r\n"
	}
	c.request = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, addr, hdr)
	return c, nil
}

// dial opens connection i, from the i-th source address round-robin. TCP
// keep-alive probes are off: a held connection must be idle on the wire.
func (c *client) dial(i int, deadline time.Time) (net.Conn, error) {
	d := net.Dialer{Deadline: deadline, KeepAlive: -1}
	if len(c.srcs) > 0 {
		d.LocalAddr = c.srcs[i%len(c.srcs)]
		// Bound to an address, the socket would take its port at bind(2),
		// from the ports no socket of any address holds; with
		// IP_BIND_ADDRESS_NO_PORT it takes one at connect(2), free for
		// this source and destination: a client address then has the
		// whole port range to itself.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	return d.Dial("tcp", c.addr)
}

// errExtraBytes: the server sent more than one response.
var errExtraBytes = errors.New("bytes after the response's end")

// get sends the request on conn and reads the whole response through br
// (which the caller resets onto conn). It fails on any status but 200 and,
// when keep is set, on a response that says the connection will close.
func (c *client) get(conn net.Conn, br *bufio.Reader, keep bool) error {
	if _, err := conn.Write(c.request); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %q", resp.Status)
	}
	if keep {
		if resp.Close {
			return errors.New("the server closes the connection after its response")
		}
		if br.Buffered() > 0 {
			return errExtraBytes
		}
	}
	return nil
}

// failures counts errors and keeps the first.
type failures struct {
	n     atomic.Int64
	mu    sync.Mutex
	first error
}

// forEach runs do for every i in [0, n) on workers goroutines, each with
// a reader of its own, counting its errors in fail and stopping early once
// maxErrors have failed (0: never). It returns how many it attempted.
func forEach(n, workers int, maxErrors int64, fail *failures, do func(i int, br *bufio.Reader) error) int {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			br := bufio.NewReaderSize(nil, 4096)
			for {
				if maxErrors > 0 && fail.n.Load() >= maxErrors {
					return
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := do(i, br); err != nil {
					fail.add(err)
				}
			}
		})
	}
	wg.Wait()
	return int(min(next.Load(), int64(n)))
}

func (f *failures) add(err error) int64 {
	f.mu.Lock()
	if f.first == nil {
		f.first = err
	}
	f.mu.Unlock()
	return f.n.Add(1)
}

func (f *failures) firstString() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.first == nil {
		return ""
	}
	return f.first.Error()
}

func holdMain(args []string) int {
	fs := flag.NewFlagSet("hold", flag.ExitOnError)
	addr := fs.String("addr", "", "server address, HOST:PORT")
	n := fs.Int("n", 1000, "connections to hold")
	src := fs.String("src", "", "source addresses, comma-separated, used round-robin (default: the kernel's choice)")
	path := fs.String("path", "/", "path to GET on each connection")
	parallel := fs.Int("parallel", 64, "connections being opened at once")
	timeout := fs.Duration("timeout", 30*time.Second, "per connection: dial, request and response")
	maxErrors := fs.Int64("max-errors", 100, "stop opening connections after this many failures (0: never)")
	fs.Parse(args)
	c, err := newClient(*addr, *path, *src, *timeout, false)
	if err != nil {
		log.Print(err)
		return 2
	}
	if *n < 1 || *parallel < 1 {
		log.Print("-n and -parallel must be positive")
		return 2
	}
	// SIGUSR1 is caught before the first dial, so that one sent early waits
	// for the connections instead of killing the process; SIGINT and
	// SIGTERM kill it as usual until every connection is held.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)

	start := time.Now()
	conns := make([]net.Conn, *n)
	var done atomic.Int64
	var fail failures
	tried := forEach(*n, *parallel, *maxErrors, &fail, func(i int, br *bufio.Reader) error {
		conn, err := holdOne(c, i, br)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns[i] = conn
		if d := done.Add(1); d%10000 == 0 {
			log.Printf("%d of %d held (%.1f s)", d, *n, time.Since(start).Seconds())
		}
		return nil
	})
	if f := fail.n.Load(); f > 0 {
		log.Printf("%d of %d connections failed (%d attempted, %d held) in %.1f s; first error: %s",
			f, *n, tried, done.Load(), time.Since(start).Seconds(), fail.firstString())
		return 1
	}
	log.Printf("%d held in %.1f s", *n, time.Since(start).Seconds())
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	fmt.Printf("held %d\n", *n) // os.Stdout is unbuffered: the caller sees it now

	for sig := range sigs {
		if sig != syscall.SIGUSR1 {
			// Reset rather than close: neither end keeps the 4-tuple in
			// TIME_WAIT, so that the next measurement starts clean.
			for _, conn := range conns {
				if tc, ok := conn.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				conn.Close()
			}
			return 0
		}
		open, closed, data, err := check(conns)
		if err != nil {
			log.Printf("check: %v", err)
		}
		if data > 0 {
			log.Printf("check: %d connections have unexpected bytes from the server (counted as open)", data)
		}
		fmt.Printf("open %d closed %d\n", open, closed)
	}
	return 0
}

// holdOne opens connection i and makes its request; the connection is left
// without a deadline.
func holdOne(c *client, i int, br *bufio.Reader) (net.Conn, error) {
	deadline := time.Now().Add(c.timeout)
	conn, err := c.dial(i, deadline)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(deadline)
	br.Reset(conn)
	err = c.get(conn, br, true)
	br.Reset(nil)
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// check peeks at every connection without blocking (MSG_PEEK|MSG_DONTWAIT):
// nothing to read means open; end of stream or an error such as a reset
// means the server closed it. Bytes waiting (which an idle HTTP server
// never sends) are counted in data as well as in open.
func check(conns []net.Conn) (open, closed, data int, err error) {
	var buf [1]byte
	for _, conn := range conns {
		sc, ok := conn.(syscall.Conn)
		if !ok {
			return open, closed, data, fmt.Errorf("%T has no file descriptor", conn)
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return open, closed, data, err
		}
		var n int
		var rerr error
		err = rc.Read(func(fd uintptr) bool {
			n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			return true // never wait
		})
		switch {
		case err != nil:
			return open, closed, data, err
		case rerr == syscall.EAGAIN:
			open++
		case rerr != nil || n == 0:
			closed++
		default:
			open++
			data++
		}
	}
	return open, closed, data, nil
}

// probeResult is probe's one line of output. Latencies are over the
// requests that succeeded.
type probeResult struct {
	Requests   int    `json:"requests"`
	Errors     int64  `json:"errors"`
	P50        int64  `json:"p50_us"`
	P90        int64  `json:"p90_us"`
	P99        int64  `json:"p99_us"`
	Max        int64  `json:"max_us"`
	FirstError string `json:"first_error"`
	Aborted    bool   `json:"aborted,omitempty"`
}

func probeMain(args []string) int {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	addr := fs.String("addr", "", "server address, HOST:PORT")
	n := fs.Int("n", 1000, "requests, each on a new connection")
	conc := fs.Int("c", 8, "requests at once")
	path := fs.String("path", "/", "path to GET")
	src := fs.String("src", "", "source addresses, comma-separated, used round-robin")
	timeout := fs.Duration("timeout", 10*time.Second, "per request: dial to the body's last byte; a request past it is an error")
	maxErrors := fs.Int64("max-errors", 0, "stop after this many failed requests (0: never), so that a frozen server does not cost n timeouts")
	fs.Parse(args)
	c, err := newClient(*addr, *path, *src, *timeout, true)
	if err != nil {
		log.Print(err)
		return 2
	}
	if *n < 1 || *conc < 1 {
		log.Print("-n and -c must be positive")
		return 2
	}
	lat := make([]time.Duration, *n) // 0: failed or not attempted
	var fail failures
	attempted := forEach(*n, *conc, *maxErrors, &fail, func(i int, br *bufio.Reader) error {
		d, err := probeOne(c, i, br)
		if err != nil {
			return err
		}
		lat[i] = max(d, time.Nanosecond)
		return nil
	})
	ok := slices.DeleteFunc(lat[:attempted], func(d time.Duration) bool { return d == 0 })
	slices.Sort(ok)
	res := probeResult{
		Requests:   attempted,
		Errors:     fail.n.Load(),
		P50:        percentile(ok, 50),
		P90:        percentile(ok, 90),
		P99:        percentile(ok, 99),
		Max:        percentile(ok, 100),
		FirstError: fail.firstString(),
		Aborted:    attempted < *n,
	}
	line, _ := json.Marshal(res)
	fmt.Printf("%s\n", line)
	if res.Errors > 0 || res.Aborted {
		return 1
	}
	return 0
}

// probeOne makes request i on a new connection and returns its latency.
func probeOne(c *client, i int, br *bufio.Reader) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(c.timeout)
	conn, err := c.dial(i, deadline)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	br.Reset(conn)
	defer br.Reset(nil)
	if err := c.get(conn, br, false); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// percentile is the nearest-rank percentile of sorted, in microseconds.
func percentile(sorted []time.Duration, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := max(int(math.Ceil(p/100*float64(len(sorted)))), 1)
	return sorted[rank-1].Microseconds()
}

func serveMain(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	root := fs.String("root", "", "folder to serve")
	reuseport := fs.Bool("reuseport", false, "set SO_REUSEPORT, so that several processes share the port")
	fs.Parse(args)
	if *root == "" {
		log.Print("-root is required")
		return 2
	}
	if st, err := os.Stat(*root); err != nil || !st.IsDir() {
		log.Printf("-root %q: not a folder", *root)
		return 2
	}
	// No TCP keep-alive probes on accepted connections: held ones must be
	// idle on the wire, as on saturn's side.
	lc := net.ListenConfig{KeepAlive: -1}
	if *reuseport {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
			})
			return errors.Join(err, serr)
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", *listen)
	if err != nil {
		log.Print(err)
		return 1
	}
	fmt.Println(ln.Addr()) // the caller reads the address
	srv := &http.Server{
		Handler:           http.FileServer(http.Dir(*root)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       10 * time.Minute,
		ErrorLog:          log.Default(),
	}
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		<-sigs
		os.Exit(0) // held connections are not worth a graceful shutdown
	}()
	if err := srv.Serve(ln); err != nil {
		log.Print(err)
		return 1
	}
	return 0
}
