package main

import (
	"strings"
	"testing"

	"saturn/proto"
)

// TestPrintReach: where `supervisor start` tells the user to go, for each
// way netproc can make an app reachable.
func TestPrintReach(t *testing.T) {
	web := proto.ComponentStatus{Name: "web", Kind: proto.KindApp, Info: map[string]string{"listen": "[::]:8080", "tls_listen": "[::]:8443"}}
	netproc := func(info map[string]string) proto.ComponentStatus {
		base := map[string]string{"backend": "usertcp", "netns": "saturn-default", "address": "10.77.0.2/24"}
		for k, v := range info {
			base[k] = v
		}
		return proto.ComponentStatus{Name: "netproc", Kind: proto.KindServer, Info: base}
	}
	tests := []struct {
		name    string
		netproc proto.ComponentStatus
		want    []string
	}{
		{"kernel backend", proto.ComponentStatus{Name: "netproc", Info: map[string]string{"backend": "kernel"}},
			[]string{"open http://127.0.0.1:8080/", "try: curl http://127.0.0.1:8080/", "open https://127.0.0.1:8443/", "try: curl -k https://127.0.0.1:8443/"}},
		{"usertcp, namespace only", netproc(map[string]string{"host_route": "none: no TUN"}),
			[]string{"open http://10.77.0.2:8080/", "try: ip netns exec saturn-default curl http://10.77.0.2:8080/", "try: ip netns exec saturn-default curl -k https://10.77.0.2:8443/"}},
		{"usertcp, routed from the host", netproc(map[string]string{"host_route": "10.77.0.0/24 via sat12345678"}),
			[]string{"try: curl http://10.77.0.2:8080/", "try: curl -k https://10.77.0.2:8443/"}},
		{"usertcp, published", netproc(map[string]string{"host_route": "10.77.0.0/24 via sat12345678", "publish": "127.0.0.1:8080->8080, 127.0.0.1:9000->9000 (not published: address already in use)"}),
			[]string{"published on the host at 127.0.0.1:8080: open http://127.0.0.1:8080/", "try: curl -k https://10.77.0.2:8443/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reachString(&proto.StatusReply{Components: []proto.ComponentStatus{tt.netproc, web}})
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
			if tt.name != "usertcp, namespace only" && strings.Contains(got, "ip netns exec") {
				t.Errorf("sends the user through the namespace although the host reaches saturn:\n%s", got)
			}
		})
	}
}
