package main

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"saturn/proto"
)

// printReach tells the user where the instance's apps listen and how to
// reach them: on this host with the kernel backend, through the namespace
// with the user-level stack.
//
// With usertcp, a published port of the host (netproc's "publish") comes
// first; then saturn's address, which the host reaches directly when
// netproc routes it from the host ("host_route"), and only through the
// namespace otherwise.
func printReach(w io.Writer, st *proto.StatusReply) {
	var netns, address string
	published := map[uint16]string{} // saturn's port: the host's address
	for _, c := range st.Components {
		if c.Name == "netproc" {
			netns = c.Info["netns"]
			if p, err := netip.ParsePrefix(c.Info["address"]); err == nil {
				address = p.Addr().String()
			}
			if hr := c.Info["host_route"]; hr != "" && !strings.HasPrefix(hr, "none") && !strings.Contains(hr, "no route") {
				netns = "" // the host routes to saturn's address
			}
			for _, p := range strings.Split(c.Info["publish"], ", ") {
				host, port, ok := strings.Cut(p, "->")
				if !ok || strings.Contains(port, " ") {
					continue // not published
				}
				if n, err := strconv.ParseUint(port, 10, 16); err == nil {
					published[uint16(n)] = host
				}
			}
		}
	}
	for _, c := range st.Components {
		if c.Kind != proto.KindApp {
			continue
		}
		for _, l := range []struct{ key, scheme, curl string }{
			{"listen", "http", "curl"},
			{"tls_listen", "https", "curl -k"}, // a test certificate is likely
		} {
			listen := c.Info[l.key]
			if listen == "" {
				continue
			}
			ap, err := netip.ParseAddrPort(listen)
			if err != nil {
				fmt.Fprintf(w, "  %s listens on %s\n", c.Name, listen)
				continue
			}
			if hostAP, ok := published[ap.Port()]; ok {
				url := fmt.Sprintf("%s://%s/", l.scheme, hostAP)
				fmt.Fprintf(w, "  %s listens on %s, published on the host at %s: open %s\n    try: %s %s\n", c.Name, listen, hostAP, url, l.curl, url)
				continue
			}
			host := ap.Addr().String()
			if ap.Addr().IsUnspecified() {
				host = "127.0.0.1"
				if address != "" {
					host = address
				}
			}
			url := fmt.Sprintf("%s://%s/", l.scheme, netip.AddrPortFrom(netip.MustParseAddr(host), ap.Port()))
			try := l.curl + " " + url
			if netns != "" {
				try = fmt.Sprintf("ip netns exec %s %s", netns, try)
			}
			fmt.Fprintf(w, "  %s listens on %s: open %s\n    try: %s\n", c.Name, listen, url, try)
		}
	}
}

func reachString(st *proto.StatusReply) string {
	var b strings.Builder
	printReach(&b, st)
	return b.String()
}
