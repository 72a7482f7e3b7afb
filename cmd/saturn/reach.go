package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"saturn/proto"
)

// printReach tells the user where the instance's apps listen and how to
// reach them: on this host with the kernel backend, through the namespace
// with the user-level stack.
func printReach(w io.Writer, st *proto.StatusReply) {
	var netns, address string
	for _, c := range st.Components {
		if c.Name == "netproc" {
			netns = c.Info["netns"]
			if p, err := netip.ParsePrefix(c.Info["address"]); err == nil {
				address = p.Addr().String()
			}
		}
	}
	for _, c := range st.Components {
		listen := c.Info["listen"]
		if c.Kind != proto.KindApp || listen == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(listen)
		if err != nil {
			fmt.Fprintf(w, "  %s listens on %s\n", c.Name, listen)
			continue
		}
		host := ap.Addr().String()
		if ap.Addr().IsUnspecified() {
			host = "127.0.0.1"
			if address != "" {
				host = address
			}
		}
		url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(netip.MustParseAddr(host), ap.Port()))
		try := "curl " + url
		if netns != "" {
			try = fmt.Sprintf("ip netns exec %s curl %s", netns, url)
		}
		fmt.Fprintf(w, "  %s listens on %s: open %s\n    try: %s\n", c.Name, listen, url, try)
	}
}

func reachString(st *proto.StatusReply) string {
	var b strings.Builder
	printReach(&b, st)
	return b.String()
}
