package usertcp

import (
	"math/rand/v2"
	"net/netip"
	"syscall"

	"saturn/netproc/header"
	"saturn/netproc/tcp"
)

// tupleKey names a connection from our side: it is how a received segment
// finds its connection (the demultiplexing table is keyed by it).
type tupleKey struct {
	laddr, raddr header.IPv4Addr
	lport, rport uint16
}

// tuple is the key as the core's Tuple.
func (k tupleKey) tuple() tcp.Tuple {
	var t tcp.Tuple
	copy(t.LocalAddr[:], k.laddr[:])
	copy(t.RemoteAddr[:], k.raddr[:])
	t.LocalPort, t.RemotePort = k.lport, k.rport
	return t
}

// keyOf is the inverse of tuple.
func keyOf(t tcp.Tuple) tupleKey {
	return tupleKey{laddr: header.IPv4Addr(t.LocalAddr[:4]), raddr: header.IPv4Addr(t.RemoteAddr[:4]), lport: t.LocalPort, rport: t.RemotePort}
}

// reversed is the key the other end of a loopback connection has.
func (k tupleKey) reversed() tupleKey {
	return tupleKey{laddr: k.raddr, raddr: k.laddr, lport: k.rport, rport: k.lport}
}

func (k tupleKey) local() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(k.laddr), k.lport)
}

func (k tupleKey) remote() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4(k.raddr), k.rport)
}

// isLoopback reports whether a is a loopback address (127/8).
func isLoopback(a header.IPv4Addr) bool { return a[0] == 127 }

// isLocal reports whether packets to a stay inside the stack: our own
// address or loopback.
func (s *Stack) isLocal(a header.IPv4Addr) bool { return a == s.addr || isLoopback(a) }

// The ephemeral port range of active opens, as Linux's default
// ip_local_port_range.
const (
	ephemeralLow  = 32768
	ephemeralHigh = 60999
)

// ephemeralPort picks a local port for a connection from laddr to raddr:rport
// whose tuple is free and on which nothing listens. A tuple held by a
// connection in TIME-WAIT that used timestamps is taken over (Linux's
// tcp_tw_reuse): its successor's ISN and timestamps are newer, so old
// duplicates cannot be mistaken for new data.
func (s *Stack) ephemeralPort(laddr, raddr header.IPv4Addr, rport uint16) (uint16, error) {
	n := ephemeralHigh - ephemeralLow + 1
	start := rand.IntN(n)
	var reuse *conn
	for i := 0; i < n; i++ {
		p := uint16(ephemeralLow + (start+i)%n)
		if len(s.listeners[p]) > 0 {
			continue
		}
		k := tupleKey{laddr: laddr, raddr: raddr, lport: p, rport: rport}
		c := s.demux[k]
		if c == nil {
			return p, nil
		}
		if reuse == nil && c.closed {
			if tc := s.tab.conn(c.slot); tc.State() == tcp.StateTimeWait && tc.Info().TS {
				reuse = c
			}
		}
	}
	if reuse != nil {
		p := reuse.key.lport
		s.stats.TimeWaitRecycled++
		s.free(reuse)
		return p, nil
	}
	return 0, syscall.EADDRNOTAVAIL
}

// listenPort picks a free port for a listener asking for port 0.
func (s *Stack) listenPort() (uint16, error) {
	n := ephemeralHigh - ephemeralLow + 1
	start := rand.IntN(n)
	for i := 0; i < n; i++ {
		p := uint16(ephemeralLow + (start+i)%n)
		if len(s.listeners[p]) == 0 {
			return p, nil
		}
	}
	return 0, syscall.EADDRINUSE
}
