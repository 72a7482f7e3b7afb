package proto

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// ListenGrant is one entry of ChannelGrants.Listen: an address and a port
// an app may listen on. The zero Addr is any address; the zero Port is any
// port from 1024 up (a port below 1024 is granted only by naming it).
type ListenGrant struct {
	Addr netip.Addr
	Port uint16
}

// FirstUnprivilegedPort is the lowest port an app may listen on without a
// grant that names it, as Linux's net.ipv4.ip_unprivileged_port_start.
const FirstUnprivilegedPort = 1024

// ParseListenGrant reads "HOST:PORT", where HOST may be empty or "*" (any
// address) and PORT "*" (any port from 1024 up).
func ParseListenGrant(s string) (ListenGrant, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return ListenGrant{}, fmt.Errorf("listen grant %q: want HOST:PORT, with * for any: %w", s, err)
	}
	var g ListenGrant
	if host != "" && host != "*" {
		if g.Addr, err = netip.ParseAddr(host); err != nil {
			return ListenGrant{}, fmt.Errorf("listen grant %q: %q is not an IP address (or * for any)", s, host)
		}
		g.Addr = g.Addr.Unmap()
	}
	if port != "*" {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 {
			return ListenGrant{}, fmt.Errorf("listen grant %q: port %q: want 1 to 65535, or * for any from %d up", s, port, FirstUnprivilegedPort)
		}
		g.Port = uint16(p)
	}
	return g, nil
}

// Permits reports whether the grant lets an app listen on ap. Port 0
// (the kernel picks one) counts as an unprivileged port.
func (g ListenGrant) Permits(ap netip.AddrPort) bool {
	if g.Addr.IsValid() && g.Addr != ap.Addr().Unmap() {
		return false
	}
	if g.Port == 0 {
		return ap.Port() == 0 || ap.Port() >= FirstUnprivilegedPort
	}
	return ap.Port() == g.Port
}

// MayListen reports whether an app with these grants may listen on ap:
// any address on an unprivileged port when it has no listen grant, else
// what one of them permits.
func (g *ChannelGrants) MayListen(ap netip.AddrPort) bool {
	if g == nil {
		return true
	}
	if len(g.Listen) == 0 {
		return ap.Port() == 0 || ap.Port() >= FirstUnprivilegedPort
	}
	for _, s := range g.Listen {
		if lg, err := ParseListenGrant(s); err == nil && lg.Permits(ap) {
			return true
		}
	}
	return false
}
