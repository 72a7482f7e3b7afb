package supervisor

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"saturn/proto"
)

func TestCounterMetricName(t *testing.T) {
	for in, want := range map[string]string{
		"tcp.in_segs":          "saturn_tcp_in_segs",
		"link.impair-rx.drops": "saturn_link_impair_rx_drops",
		"disk.read_bytes":      "saturn_disk_read_bytes",
		"tcp.in segs":          "",
		"tcp.ümlaut":           "",
		"x.{evil}":             "",
	} {
		if got := CounterMetricName(in); got != want {
			t.Errorf("CounterMetricName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCollectorHostileCounters: counters a server names badly, twice, or
// after the collector's own families are left out, and the rest of the
// scrape is whole.
func TestCollectorHostileCounters(t *testing.T) {
	st := &proto.StatusReply{Instance: "t", Components: []proto.ComponentStatus{{
		Name: "netproc", Kind: proto.KindServer, State: proto.StateRunning, Restarts: 2,
		Counters: map[string]uint64{
			"tcp.in_segs":      7,
			"tcp.a-b":          1, // both come out as saturn_tcp_a_b: one is kept
			"tcp.a_b":          1,
			"component.state":  9, // saturn_component_state is the collector's
			"channel.sq_depth": 9,
			"bad name.x":       9,
		},
		Channels: []proto.ChannelStatus{{ID: 3, App: "web", Server: "netproc", Submitted: 10, Completed: 9, SQDepth: 1}},
	}}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewStatusCollector(func() (*proto.StatusReply, error) { return st, nil }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	if mf := byName["saturn_tcp_in_segs"]; mf == nil || mf.Metric[0].GetUntyped().GetValue() != 7 {
		t.Errorf("saturn_tcp_in_segs: %v", mf)
	}
	if mf := byName["saturn_tcp_a_b"]; mf == nil || len(mf.Metric) != 1 {
		t.Errorf("saturn_tcp_a_b: %v", mf)
	}
	if mf := byName["saturn_component_state"]; mf == nil || len(mf.Metric) != 5 || mf.GetType() != dto.MetricType_GAUGE {
		t.Errorf("saturn_component_state taken over: %v", mf)
	}
	if mf := byName["saturn_channel_submitted_total"]; mf == nil || mf.Metric[0].GetCounter().GetValue() != 10 {
		t.Errorf("saturn_channel_submitted_total: %v", mf)
	}
	for name := range byName {
		if strings.Contains(name, " ") {
			t.Errorf("family %q", name)
		}
	}
}
