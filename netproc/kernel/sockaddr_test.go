package kernel

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSockaddr(t *testing.T) {
	for _, tc := range []struct {
		in     string
		family int
		back   string
	}{
		{"127.0.0.1:80", unix.AF_INET, "127.0.0.1:80"},
		{"[::ffff:10.0.0.1]:443", unix.AF_INET, "10.0.0.1:443"}, // mapped goes out as IPv4
		{"[::1]:8080", unix.AF_INET6, "[::1]:8080"},
		{"[fe80::1%2]:22", unix.AF_INET6, "[fe80::1%2]:22"},
		{"[::]:0", unix.AF_INET6, "[::]:0"},
	} {
		family, sa := sockaddr(netip.MustParseAddrPort(tc.in))
		if family != tc.family {
			t.Errorf("%s: family %d, want %d", tc.in, family, tc.family)
		}
		if back := addrPort(sa).String(); back != tc.back {
			t.Errorf("%s: back as %s, want %s", tc.in, back, tc.back)
		}
	}
	// A dual-stack socket reports IPv4 peers mapped; we show them as IPv4.
	mapped := &unix.SockaddrInet6{Port: 9, Addr: netip.MustParseAddr("::ffff:192.0.2.7").As16()}
	if got := addrPort(mapped).String(); got != "192.0.2.7:9" {
		t.Errorf("mapped peer shown as %s", got)
	}
}
