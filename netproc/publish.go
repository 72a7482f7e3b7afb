package netproc

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"saturn/configs"
	"saturn/netproc/link"
)

// Published ports ([netproc] publish) make saturn's apps reachable at an
// address of the host, as Docker's -p does: netproc listens on the host's
// address with a kernel socket and, for each connection, connects to the
// port on saturn's address from inside the namespace and copies both ways
// (splice(2): the bytes do not pass through netproc's memory). The
// listening sockets are made at start, while netproc is still root, so a
// port below 1024 of the host can be published; the connections to saturn
// go through a thread that stays in the namespace (link.DialInNamespace).
// It costs one more hop than the host route does (docs/design.md); it is
// what `curl http://127.0.0.1:8080/` on the host needs.

// maxPublished bounds the connections netproc forwards at once; past it a
// new one is closed at once, with a log line, so that clients of a
// published port cannot take netproc's descriptors.
const maxPublished = 4096

type publisher struct {
	log    *slog.Logger
	dial   func(netip.AddrPort) (*net.TCPConn, error)
	stop   func() // ends dial's thread
	ls     []net.Listener
	status []string // written by startPublish only; String reads it after
	active atomic.Int64
	closed atomic.Bool
	wg     sync.WaitGroup
}

// startPublish listens on every published address of the host. On the
// kernel backend there is nothing to do: apps listen on the host's own
// sockets. An address it cannot listen on is logged and shown in status;
// the others are published anyway.
func startPublish(cfg configs.Netproc, backendName string, log *slog.Logger) *publisher {
	p := &publisher{log: log}
	if len(cfg.Publish) == 0 {
		return p
	}
	if backendName != "usertcp" {
		log.Info("publish is for usertcp: on the kernel backend apps listen on the host's sockets", "publish", cfg.Publish)
		p.status = []string{"not needed on the kernel backend"}
		return p
	}
	pfx, err := netip.ParsePrefix(cfg.Address)
	if err != nil {
		p.status = []string{err.Error()}
		return p
	}
	to := pfx.Addr()
	if p.dial, p.stop, err = link.DialInNamespace(cfg.Netns); err != nil {
		log.Warn("publish: cannot reach the namespace; nothing published", "err", err)
		p.status = []string{"none: " + err.Error()}
		return p
	}
	for _, spec := range cfg.Publish {
		pub, err := configs.ParsePublish(spec)
		if err != nil {
			p.status = append(p.status, err.Error())
			continue
		}
		l, err := net.Listen("tcp", pub.Host.String())
		if err != nil {
			log.Warn("publish: cannot listen on the host; that port is not published", "publish", pub, "err", err)
			p.status = append(p.status, fmt.Sprintf("%v (not published: %v)", pub, errors.Unwrap(err)))
			continue
		}
		p.ls = append(p.ls, l)
		p.status = append(p.status, pub.String())
		log.Info("published", "host", pub.Host, "to", netip.AddrPortFrom(to, pub.Port))
		p.wg.Add(1)
		go p.accept(l, netip.AddrPortFrom(to, pub.Port))
	}
	return p
}

// String is status's "publish".
func (p *publisher) String() string { return strings.Join(p.status, ", ") }

func (p *publisher) accept(l net.Listener, to netip.AddrPort) {
	defer p.wg.Done()
	backoff := 5 * time.Millisecond
	var lastFull time.Time
	for {
		c, err := l.Accept()
		if err != nil {
			if p.closed.Load() {
				return
			}
			// EMFILE and the like: wait and go on, never give up.
			p.log.Warn("publish: accept", "on", l.Addr(), "err", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if p.active.Add(1) > maxPublished {
			p.active.Add(-1)
			c.Close()
			if time.Since(lastFull) > time.Second {
				lastFull = time.Now()
				p.log.Warn("publish: too many forwarded connections; closing new ones", "max", maxPublished)
			}
			continue
		}
		go p.forward(c.(*net.TCPConn), to)
	}
}

// forward connects client to saturn's address and copies both ways; each
// direction's end is passed on as a half-close.
func (p *publisher) forward(client *net.TCPConn, to netip.AddrPort) {
	defer p.active.Add(-1)
	defer client.Close()
	server, err := p.dial(to)
	if err != nil {
		p.log.Warn("publish: cannot connect to saturn", "to", to, "from", client.RemoteAddr(), "err", err)
		return
	}
	defer server.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(server, client)
		server.CloseWrite()
		close(done)
	}()
	io.Copy(client, server)
	client.CloseWrite()
	<-done
}

// Close stops accepting; forwarded connections end with their peers or
// with the process (netproc closes it as it exits).
func (p *publisher) Close() {
	p.closed.Store(true)
	for _, l := range p.ls {
		l.Close()
	}
	p.wg.Wait()
	if p.stop != nil {
		p.stop()
	}
}
