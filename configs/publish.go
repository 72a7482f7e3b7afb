package configs

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// A Publish is one of [netproc] publish: connections to Host on the host
// go to Port on saturn's address.
type Publish struct {
	Host netip.AddrPort
	Port uint16
}

func (p Publish) String() string { return fmt.Sprintf("%v->%d", p.Host, p.Port) }

// ParsePublish reads "HOSTADDR:HOSTPORT:PORT", "[V6ADDR]:HOSTPORT:PORT" or
// "HOSTPORT:PORT" (on 127.0.0.1), as Docker's -p reads it.
func ParsePublish(s string) (Publish, error) {
	bad := func(why string) (Publish, error) {
		return Publish{}, fmt.Errorf("publish %q: %s; want HOSTADDR:HOSTPORT:PORT, such as \"127.0.0.1:8080:8080\"", s, why)
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return bad("no port")
	}
	port, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil || port == 0 {
		return bad(fmt.Sprintf("saturn's port %q is not 1 to 65535", s[i+1:]))
	}
	host := s[:i]
	if !strings.Contains(host, ":") {
		host = "127.0.0.1:" + host
	}
	ap, err := netip.ParseAddrPort(host)
	if err != nil {
		return bad(err.Error())
	}
	if ap.Port() == 0 {
		return bad("the host's port is 0")
	}
	return Publish{Host: ap, Port: uint16(port)}, nil
}

// RoutesFromHost reports whether usertcp's namespace is joined to the host
// ([netproc] host_route, on unless false).
func (n Netproc) RoutesFromHost() bool { return n.HostRoute == nil || *n.HostRoute }

// Resumes reports whether usertcp's connections and listeners survive
// netproc's death ([netproc] resume, on unless false).
func (n Netproc) Resumes() bool { return n.Resume == nil || *n.Resume }
