package proto

import (
	"net/netip"
	"testing"
)

func TestListenGrants(t *testing.T) {
	for _, bad := range []string{"8080", "x:80", "*:0", "*:70000", "1.2.3.4:http", ""} {
		if _, err := ParseListenGrant(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	web := &ChannelGrants{Listen: []string{"*:80", "*:443", "127.0.0.1:*"}}
	none := &ChannelGrants{}
	for _, tt := range []struct {
		g    *ChannelGrants
		ap   string
		want bool
	}{
		{nil, "0.0.0.0:22", true}, // no grants at all: unrestricted
		{none, "0.0.0.0:8080", true},
		{none, "[::]:0", true},
		{none, "0.0.0.0:80", false},
		{none, "127.0.0.1:1023", false},
		{web, "[::]:80", true},
		{web, "10.0.0.1:443", true},
		{web, "0.0.0.0:8080", false},
		{web, "127.0.0.1:9000", true},
		{web, "127.0.0.1:25", false},
		{web, "[::ffff:127.0.0.1]:9000", true},
	} {
		if got := tt.g.MayListen(netip.MustParseAddrPort(tt.ap)); got != tt.want {
			t.Errorf("%+v may listen on %s: %v, want %v", tt.g, tt.ap, got, tt.want)
		}
	}
}

// FuzzListenGrant: any string either fails to parse or gives a grant
// that never lets a port below 1024 in unless it names that port.
func FuzzListenGrant(f *testing.F) {
	for _, s := range []string{"*:80", "127.0.0.1:*", "[::1]:8080", ":*", "x:1", "*:0", "[fe80::1%eth0]:22"} {
		f.Add(s, uint16(80))
	}
	f.Fuzz(func(t *testing.T, s string, port uint16) {
		g, err := ParseListenGrant(s)
		if err != nil {
			return
		}
		ap := netip.AddrPortFrom(netip.IPv4Unspecified(), port)
		if g.Addr.IsValid() {
			ap = netip.AddrPortFrom(g.Addr, port)
		}
		if g.Permits(ap) && port != 0 && port < FirstUnprivilegedPort && port != g.Port {
			t.Fatalf("%q lets port %d in without naming it", s, port)
		}
	})
}
