package appproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"

	"saturn/proto"
)

// The blocking socket API: Listen and Dial with Go's shapes, over the app's
// channel to netproc, so that code written for package net (net/http's
// server and client among it) runs unchanged:
//
//	ln, err := appproc.Listen("tcp", ":8080")
//	http.Serve(ln, handler)
//
//	client := &http.Client{Transport: &http.Transport{DialContext: appproc.Dial}}
//
// Networks are "tcp", "tcp4" and "tcp6". As with package net, "tcp" on a
// wildcard address listens on IPv4 and IPv6 both.

var defaultApp struct {
	attaching  sync.Mutex // held by Default while it attaches: one attach per process
	sync.Mutex            // guards app
	app        *App
}

// setDefault makes a the app that the package-level Listen and Dial use,
// unless there is one already. Attach calls it.
func setDefault(a *App) {
	defaultApp.Lock()
	defer defaultApp.Unlock()
	if defaultApp.app == nil {
		defaultApp.app = a
	}
}

func getDefault() *App {
	defaultApp.Lock()
	defer defaultApp.Unlock()
	return defaultApp.app
}

// Default is the app the package-level functions use: the first one the
// process attached, or, if it has attached none, one attached now with
// default Options.
func Default() (*App, error) {
	if a := getDefault(); a != nil {
		return a, nil
	}
	defaultApp.attaching.Lock()
	defer defaultApp.attaching.Unlock()
	if a := getDefault(); a != nil {
		return a, nil
	}
	if _, err := Attach(context.Background(), Options{}); err != nil {
		return nil, err
	}
	return getDefault(), nil
}

// Listen listens on the default app's netproc (see Default).
func Listen(network, address string) (net.Listener, error) {
	a, err := Default()
	if err != nil {
		return nil, err
	}
	return a.Listen(network, address)
}

// Dial connects through the default app's netproc (see Default). Its shape
// is http.Transport.DialContext's.
func Dial(ctx context.Context, network, address string) (net.Conn, error) {
	a, err := Default()
	if err != nil {
		return nil, err
	}
	return a.Dial(ctx, network, address)
}

// ListenOptions qualify ListenTCP.
type ListenOptions struct {
	Backlog   int  // pending connections the kernel queues; 0: the system's default
	ReusePort bool // SO_REUSEPORT: several listeners share the port
}

// Listen listens on address through netproc.
func (a *App) Listen(network, address string) (net.Listener, error) {
	return a.ListenTCP(network, address, ListenOptions{})
}

// ListenTCP is Listen with options, returning the concrete type.
func (a *App) ListenTCP(network, address string, opts ListenOptions) (*TCPListener, error) {
	ch, err := a.Channel("netproc")
	if err != nil {
		return nil, err
	}
	return listenTCP(ch, network, address, opts)
}

// Dial connects to address through netproc. The context's deadline bounds
// the connect; cancelling it cancels the connect.
func (a *App) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	ch, err := a.Channel("netproc")
	if err != nil {
		return nil, err
	}
	c, err := dialTCP(ctx, ch, network, address)
	if err != nil {
		return nil, err // a nil *TCPConn must not become a non-nil net.Conn
	}
	return c, nil
}

// DialTCP is Dial returning the concrete type.
func (a *App) DialTCP(ctx context.Context, network, address string) (*TCPConn, error) {
	ch, err := a.Channel("netproc")
	if err != nil {
		return nil, err
	}
	return dialTCP(ctx, ch, network, address)
}

// resolve turns address into candidate addresses for network, as package
// net does: literal IPs as they are, names through the system's resolver;
// for a listen, an empty host is the wildcard, for a dial, this host.
func resolve(ctx context.Context, network, address string, listen bool) ([]netip.AddrPort, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, net.UnknownNetworkError(network)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := net.DefaultResolver.LookupPort(ctx, network, portStr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if host == "" {
		switch {
		case listen && network == "tcp4":
			addrs = []netip.Addr{netip.IPv4Unspecified()}
		case listen:
			addrs = []netip.Addr{netip.IPv6Unspecified()}
		case network == "tcp6":
			addrs = []netip.Addr{netip.IPv6Loopback()}
		default:
			addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
	} else if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip.Unmap()}
		if ip.Zone() != "" && ip.Is6() {
			addrs[0] = ip // keep the zone, which ParseAddr read
		}
	} else {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			addrs = append(addrs, ip.Unmap())
		}
	}
	var out []netip.AddrPort
	for _, ip := range addrs {
		if network == "tcp4" && !ip.Is4() || network == "tcp6" && !ip.Is6() {
			continue
		}
		if zone := ip.Zone(); zone != "" {
			// The ABI carries an interface index, not a name.
			if ifi, err := net.InterfaceByName(zone); err == nil {
				ip = ip.WithZone(fmt.Sprint(ifi.Index))
			}
		}
		out = append(out, netip.AddrPortFrom(ip, uint16(port)))
	}
	if len(out) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: address}
	}
	return out, nil
}

// tcpAddr is ap as package net shows it.
func tcpAddr(ap netip.AddrPort) *net.TCPAddr {
	if !ap.IsValid() {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}

// opError wraps an error the way package net does: errnos in an
// *os.SyscallError named after the system call, inside a *net.OpError.
// io.EOF is never wrapped.
func opError(op, network string, source, addr net.Addr, err error) error {
	if err == nil {
		return nil
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = os.NewSyscallError(syscallName(op), errno)
	}
	if network == "" {
		network = "tcp"
	}
	oe := &net.OpError{Op: op, Net: network, Err: err}
	if source != nil {
		oe.Source = source
	}
	if addr != nil {
		oe.Addr = addr
	}
	return oe
}

func syscallName(op string) string {
	switch op {
	case "dial":
		return "connect"
	case "write":
		return "write"
	case "set":
		return "setsockopt"
	}
	return op
}

// netOp is a one-shot blocking netproc call for the simple operations
// (setsockopt, shutdown, close): wait for the completion, whatever else
// happens, since they are quick.
func netOp(ch *Channel, req *Request) (Response, error) {
	res := make(chan struct {
		r   Response
		err error
	}, 1)
	_, err := ch.start(req, func(r Response, _ []byte, err error) {
		res <- struct {
			r   Response
			err error
		}{r, err}
	}, nil, nil)
	if err != nil {
		return Response{}, err
	}
	out := <-res
	return out.r, out.err
}

// encodeAddr is ap in the ABI's socket address form.
func encodeAddr(ap netip.AddrPort) ([]byte, error) {
	b := make([]byte, proto.SockAddrSize)
	return b, proto.EncodeSockAddr(b, ap)
}
