package supervisor

import (
	"maps"
	"testing"
)

func TestSplitInfo(t *testing.T) {
	info, counters := splitInfo(map[string]string{
		"backend":       "usertcp",
		"mtu":           "1500", // a setting, not a counter: no dot
		"tcp.in_segs":   "42",
		"ip.out_gso":    "0",
		"link.mode":     "vnet+csum", // dotted but not a number
		"tcp.negative":  "-1",
		"tcp.huge":      "18446744073709551615",
		"tcp.too_large": "18446744073709551616",
	})
	wantInfo := map[string]string{"backend": "usertcp", "mtu": "1500", "link.mode": "vnet+csum", "tcp.negative": "-1", "tcp.too_large": "18446744073709551616"}
	wantCounters := map[string]uint64{"tcp.in_segs": 42, "ip.out_gso": 0, "tcp.huge": 1<<64 - 1}
	if !maps.Equal(info, wantInfo) {
		t.Errorf("info %v, want %v", info, wantInfo)
	}
	if !maps.Equal(counters, wantCounters) {
		t.Errorf("counters %v, want %v", counters, wantCounters)
	}
	if info, counters := splitInfo(nil); info != nil || counters != nil {
		t.Errorf("nothing reported: %v %v", info, counters)
	}
}
