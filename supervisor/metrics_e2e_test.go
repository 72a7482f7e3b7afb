package supervisor_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"saturn/internal/testkit"
	"saturn/proto"
)

// families is one scrape, parsed by Prometheus's own text parser.
type families map[string]*dto.MetricFamily

func parseMetrics(t *testing.T, r io.Reader) families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return mf
}

// scrape GETs url and parses what it serves.
func scrape(t *testing.T, url string) families {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape %s: %s, Content-Type %q", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	return parseMetrics(t, resp.Body)
}

// value is the value of the series of family name whose labels include
// labels; ok is false when there is none.
func (f families) value(name string, labels map[string]string) (v float64, ok bool) {
	mf := f[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, want := range labels {
			if have[k] != want {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func (f families) must(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := f.value(name, labels)
	if !ok {
		t.Fatalf("no series %s%v in the scrape", name, labels)
	}
	return v
}

// TestMetricsEndpoint scrapes /metrics while the instance works: states,
// restarts that go up after a kill, channels whose counts grow, and the
// servers' counters, parsed with Prometheus's own parser.
func TestMetricsEndpoint(t *testing.T) {
	config := "[supervisor]\nmetrics = \"127.0.0.1:0\"\n"
	userTCP := testkit.NoTUN() == ""
	if userTCP {
		// saturn's stack, whose counters the endpoint carries, in a
		// namespace of the test's own.
		// (TestNet's namespace names are longer than netproc takes.)
		_, pfx := testkit.TestNet()
		ns := testkit.InstanceNamespace(t, "smet")
		config += fmt.Sprintf("[netproc]\nbackend = \"usertcp\"\nnetns = %q\naddress = %q\n", ns, pfx)
	}
	in := testkit.NewInstance(t, config)
	ping := testkit.Build(t, "./examples/ping")
	out := in.MustRun("supervisor", "start", "--detach", "--config", in.Config)
	st := in.Status()
	if !strings.HasPrefix(st.Metrics, "http://127.0.0.1:") || !strings.HasSuffix(st.Metrics, "/metrics") || st.MetricsError != "" {
		t.Fatalf("status names metrics %q (error %q)", st.Metrics, st.MetricsError)
	}
	if !strings.Contains(out, st.Metrics) {
		t.Errorf("supervisor start does not say where the metrics are:\n%s", out)
	}
	if table := in.MustRun("status"); !strings.Contains(table, "metrics at "+st.Metrics) {
		t.Errorf("status does not say where the metrics are:\n%s", table)
	}
	in.MustRun("attach", "--name", "ping", "--", ping, "--every", "20ms")

	m := scrape(t, st.Metrics)
	for _, c := range []string{"netproc", "diskproc", "ping"} {
		for _, state := range []string{"starting", "running", "restarting", "failed", "stopped"} {
			want := 0.0
			if state == "running" {
				want = 1
			}
			if v := m.must(t, "saturn_component_state", map[string]string{"component": c, "state": state}); v != want {
				t.Errorf("saturn_component_state{component=%q,state=%q} = %v, want %v", c, state, v, want)
			}
		}
		if v := m.must(t, "saturn_component_restarts_total", map[string]string{"component": c}); v != 0 {
			t.Errorf("%s restarts %v before any kill", c, v)
		}
	}
	if m["saturn_component_restarts_total"].GetType() != dto.MetricType_COUNTER || m["saturn_channel_sq_depth"].GetType() != dto.MetricType_GAUGE {
		t.Errorf("types: restarts %v, sq depth %v", m["saturn_component_restarts_total"].GetType(), m["saturn_channel_sq_depth"].GetType())
	}
	if v := m.must(t, "saturn_supervisor_info", map[string]string{"saturn_instance": in.Name}); v != 1 {
		t.Errorf("saturn_supervisor_info %v", v)
	}
	if m["process_cpu_seconds_total"] == nil || m["go_goroutines"] == nil {
		t.Errorf("no process or Go runtime metrics of the supervisor")
	}
	ch := map[string]string{"app": "ping", "server": "diskproc"}
	m.must(t, "saturn_channel_sq_depth", ch)
	m.must(t, "saturn_channel_cq_depth", ch)
	first := m.must(t, "saturn_channel_completed_total", ch)
	// ping's round trips go on: its channel's counts grow from scrape to
	// scrape.
	testkit.Eventually(t, 10*time.Second, func() bool {
		v, _ := scrape(t, st.Metrics).value("saturn_channel_completed_total", ch)
		return v > first
	}, "ping's diskproc channel to complete more than %v", first)

	// A kill shows as a restart.
	in.MustRun("kill", "netproc")
	testkit.Eventually(t, 10*time.Second, func() bool {
		m := scrape(t, st.Metrics)
		r, _ := m.value("saturn_component_restarts_total", map[string]string{"component": "netproc"})
		up, _ := m.value("saturn_component_state", map[string]string{"component": "netproc", "state": "running"})
		return r == 1 && up == 1
	}, "netproc's restart to show in the metrics")
	m = scrape(t, st.Metrics)
	if v := m.must(t, "saturn_channel_server_epoch", map[string]string{"app": "ping", "server": "netproc"}); v < 2 {
		t.Errorf("ping's netproc channel in epoch %v after netproc's restart", v)
	}

	// The servers' counters, where the backend keeps them (usertcp), as
	// status reports them.
	st = in.Status()
	np := testkit.Component(st, "netproc")
	if userTCP {
		testkit.Eventually(t, 10*time.Second, func() bool {
			np := testkit.Component(in.Status(), "netproc")
			v, ok := scrape(t, st.Metrics).value("saturn_tcp_passive_opens", map[string]string{"component": "netproc"})
			return ok && v == float64(np.Counters["tcp.passive_opens"])
		}, "saturn_tcp_passive_opens to match status")
		for k := range np.Counters {
			name := "saturn_" + strings.NewReplacer(".", "_").Replace(k)
			if _, ok := m.value(name, map[string]string{"component": "netproc"}); !ok {
				t.Errorf("counter %s (%s) is not in the scrape", k, name)
			}
		}
	} else {
		t.Logf("no TUN device here (%s): netproc on the kernel backend keeps no counters of its own", testkit.NoTUN())
	}
	// diskproc's, on every backend.
	dp := testkit.Component(in.Status(), "diskproc")
	if len(dp.Counters) == 0 {
		t.Errorf("diskproc reports no counters: %+v", dp)
	}
	after := scrape(t, st.Metrics) // counters only grow: no less than status said before
	for k, v := range dp.Counters {
		name := "saturn_" + strings.NewReplacer(".", "_").Replace(k)
		if got, ok := after.value(name, map[string]string{"component": "diskproc"}); !ok || got < float64(v) {
			t.Errorf("diskproc's %s: %v in the scrape (ok %v), %d in status before it", k, got, ok, v)
		}
	}

	// `saturn status --metrics` prints the same families, but the
	// supervisor's process and runtime.
	local := parseMetrics(t, strings.NewReader(in.MustRun("status", "--metrics")))
	for name := range m {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "promhttp_") || name == "saturn_supervisor_info" {
			continue
		}
		if local[name] == nil {
			t.Errorf("status --metrics lacks %s", name)
		}
	}

	// Off after stop.
	in.MustRun("supervisor", "stop")
	if _, err := (&http.Client{Timeout: 2 * time.Second}).Get(st.Metrics); err == nil {
		t.Errorf("the endpoint still answers after stop")
	}
}

// TestMetricsPortTaken: an address already taken does not stop the
// instance; the log and status say why there is no endpoint.
func TestMetricsPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	in := testkit.NewInstance(t, testkit.TestConfig+fmt.Sprintf("[supervisor]\nmetrics = %q\n", ln.Addr().String()))
	out := in.MustRun("supervisor", "start", "--detach", "--config", in.Config)
	if !strings.Contains(out, "no metrics endpoint") || !strings.Contains(out, "address already in use") {
		t.Errorf("start does not say the endpoint is missing:\n%s", out)
	}
	var st proto.StatusReply
	if err := json.Unmarshal([]byte(in.MustRun("status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Metrics != "" || !strings.Contains(st.MetricsError, "address already in use") {
		t.Errorf("status: metrics %q, error %q", st.Metrics, st.MetricsError)
	}
	if c := testkit.Component(&st, "netproc"); c == nil || c.State != proto.StateRunning {
		t.Errorf("netproc: %+v", c)
	}
	if log := in.Log("supervisor"); !strings.Contains(log, "metrics endpoint not started") {
		t.Errorf("the log does not say the endpoint is missing:\n%s", log)
	}

	// And "" turns it off without a word.
	off := testkit.NewInstance(t, testkit.TestConfig+"[supervisor]\nmetrics = \"\"\n")
	off.Start()
	if st := off.Status(); st.Metrics != "" || st.MetricsError != "" {
		t.Errorf("metrics = \"\": status says %q, %q", st.Metrics, st.MetricsError)
	}
}
