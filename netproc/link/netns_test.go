package link

import (
	"net/netip"
	"testing"
)

func TestDerivePeer(t *testing.T) {
	tests := []struct {
		prefix string
		want   string
	}{
		{"10.77.0.2/24", "10.77.0.1"},
		{"10.77.0.1/24", "10.77.0.2"},
		{"10.77.0.200/24", "10.77.0.1"},
		{"192.168.1.129/25", "192.168.1.130"},
		{"192.168.1.130/25", "192.168.1.129"},
		{"10.0.0.1/30", "10.0.0.2"},
		{"10.0.0.0/31", "10.0.0.1"}, // RFC 3021
		{"10.0.0.1/31", "10.0.0.0"},
		{"10.0.0.1/32", ""},
		{"10.77.0.0/24", ""},   // network address
		{"10.77.0.255/24", ""}, // broadcast
		{"fd00::2/64", ""},
	}
	for _, tt := range tests {
		got, err := DerivePeer(netip.MustParsePrefix(tt.prefix))
		if tt.want == "" {
			if err == nil {
				t.Errorf("%s: got %v, want an error", tt.prefix, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("%s: got %v %v, want %s", tt.prefix, got, err, tt.want)
		}
	}
}

func TestValidNamespaceName(t *testing.T) {
	for name, ok := range map[string]bool{"saturn": true, "saturn-test-1-2": true, "": false, ".": false, "..": false, "a/b": false, "a\x00": false} {
		if err := validNamespaceName(name); (err == nil) != ok {
			t.Errorf("%q: err %v", name, err)
		}
	}
}
