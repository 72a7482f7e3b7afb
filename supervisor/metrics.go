package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"saturn/proto"
)

// The metrics endpoint ([supervisor] metrics): every component's state,
// restarts and uptime, every channel's ring depths and counts, what each app
// holds in netproc, and the servers' own counters, in Prometheus's text
// format, read from the same snapshot as `saturn status` at every scrape.
// Rates are Prometheus's to compute from the counters
// (rate(saturn_channel_submitted_total[1m])).

// Metrics endpoint budgets: a scrape is one call into the loop and a few
// kilobytes of text, and the endpoint is on loopback by default; these only
// keep a stuck or hostile client from holding the supervisor's goroutines
// and descriptors.
const (
	metricsReadHeaderTimeout = 5 * time.Second
	metricsWriteTimeout      = 10 * time.Second
	metricsIdleTimeout       = 60 * time.Second
	metricsMaxInFlight       = 4 // scrapes served at once; more get 503
	metricsMaxHeaderBytes    = 8 << 10
)

// stateNames are the states a component can be in, each a series of
// saturn_component_state (1 for the one it is in), as Prometheus's
// state sets have it.
var stateNames = []string{proto.StateStarting, proto.StateRunning, proto.StateRestarting, proto.StateFailed, proto.StateStopped}

var (
	descState = family("saturn_component_state",
		"The component's state: 1 for the state it is in, 0 for the others.", "component", "kind", "state")
	descRestarts = family("saturn_component_restarts_total",
		"Restarts of the component, by its policy or on request.", "component", "kind")
	descUptime = family("saturn_component_uptime_seconds",
		"How long the component's current process has run (0 when it has none).", "component", "kind")
	descSQDepth = family("saturn_channel_sq_depth",
		"Submissions waiting in the channel's submission ring.", "app", "server", "channel")
	descCQDepth = family("saturn_channel_cq_depth",
		"Completions waiting in the channel's completion ring.", "app", "server", "channel")
	descSubmitted = family("saturn_channel_submitted_total",
		"Entries the app submitted on the channel.", "app", "server", "channel")
	descCompleted = family("saturn_channel_completed_total",
		"Completions the server posted on the channel.", "app", "server", "channel")
	descEpoch = family("saturn_channel_server_epoch",
		"The server incarnation serving the channel.", "app", "server", "channel")
	descSockets = family("saturn_app_sockets",
		"Sockets (connections and listeners) the app holds in the server.", "app", "server")
	descSocketLimit = family("saturn_app_socket_limit",
		"The app's socket limit in the server (0: none).", "app", "server")
	descMemory = family("saturn_app_memory_bytes",
		"Memory the server spends on the app's sockets.", "app", "server")
	descMemoryLimit = family("saturn_app_memory_limit_bytes",
		"The app's memory limit in the server (0: none).", "app", "server")
	descWaiting = family("saturn_app_waiting",
		"The app's operations waiting on its sockets in the server.", "app", "server")
)

// reservedFamilies are the families the collector makes itself, which no
// component's counter may take (see family).
var reservedFamilies = map[string]bool{"saturn_supervisor_info": true}

// family makes the Desc of one of the collector's own families, and
// reserves its name.
func family(name, help string, labels ...string) *prometheus.Desc {
	reservedFamilies[name] = true
	return prometheus.NewDesc(name, help, labels, nil)
}

// StatusCollector exposes an instance's status, as snapshot returns it, as
// Prometheus metrics. The servers' counters ("tcp.in_segs") become
// saturn_tcp_in_segs{component="netproc"}, untyped: a server reports counts
// and levels alike, and does not say which is which. `saturn status
// --metrics` and the endpoint both use it, so they print the same series.
type StatusCollector struct {
	snapshot func() (*proto.StatusReply, error)
}

// NewStatusCollector returns a collector that calls snapshot at every
// collection.
func NewStatusCollector(snapshot func() (*proto.StatusReply, error)) *StatusCollector {
	return &StatusCollector{snapshot: snapshot}
}

// Describe sends nothing: the series depend on the components and channels
// of the moment, which makes this an unchecked collector.
func (sc *StatusCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (sc *StatusCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := sc.snapshot()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descState, err)
		return
	}
	for _, c := range st.Components {
		for _, s := range stateNames {
			v := 0.0
			if c.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, c.Name, c.Kind, s)
		}
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(c.Restarts), c.Name, c.Kind)
		ch <- prometheus.MustNewConstMetric(descUptime, prometheus.GaugeValue, c.Uptime, c.Name, c.Kind)
		for _, chs := range c.Channels {
			labels := []string{chs.App, chs.Server, strconv.FormatUint(chs.ID, 10)}
			ch <- prometheus.MustNewConstMetric(descSQDepth, prometheus.GaugeValue, float64(chs.SQDepth), labels...)
			ch <- prometheus.MustNewConstMetric(descCQDepth, prometheus.GaugeValue, float64(chs.CQDepth), labels...)
			ch <- prometheus.MustNewConstMetric(descSubmitted, prometheus.CounterValue, float64(chs.Submitted), labels...)
			ch <- prometheus.MustNewConstMetric(descCompleted, prometheus.CounterValue, float64(chs.Completed), labels...)
			ch <- prometheus.MustNewConstMetric(descEpoch, prometheus.GaugeValue, float64(chs.Epoch), labels...)
			if u := chs.Usage; u != nil {
				al := []string{chs.App, chs.Server}
				ch <- prometheus.MustNewConstMetric(descSockets, prometheus.GaugeValue, float64(u.Sockets), al...)
				ch <- prometheus.MustNewConstMetric(descSocketLimit, prometheus.GaugeValue, float64(u.SocketLimit), al...)
				ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(u.Memory), al...)
				ch <- prometheus.MustNewConstMetric(descMemoryLimit, prometheus.GaugeValue, float64(u.MemoryLimit), al...)
				ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(u.Waiting), al...)
			}
		}
		// A server's counter names are its own to choose: one that is not
		// a valid metric name, that would take a family of the
		// supervisor's, or that comes out the same as another of its
		// counters ("tcp.a-b", "tcp.a_b") is left out rather than spoil
		// the whole scrape.
		seen := map[string]bool{}
		for k, v := range c.Counters {
			name := CounterMetricName(k)
			if name == "" || reservedFamilies[name] || seen[name] {
				continue
			}
			seen[name] = true
			d := prometheus.NewDesc(name, "The component's "+k+" counter, as it reports it.", []string{"component"}, nil)
			ch <- prometheus.MustNewConstMetric(d, prometheus.UntypedValue, float64(v), c.Name)
		}
	}
}

// CounterMetricName is the Prometheus name of a component's counter:
// "tcp.in_segs" is saturn_tcp_in_segs. A name that would not be a valid
// metric name gives "" (it is left out).
func CounterMetricName(counter string) string {
	name := "saturn_" + strings.NewReplacer(".", "_", "-", "_").Replace(counter)
	for i, r := range name {
		ok := r == '_' || r == ':' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && '0' <= r && r <= '9'
		if !ok {
			return ""
		}
	}
	return name
}

// metricsServer is the running endpoint.
type metricsServer struct {
	srv  *http.Server
	addr string // where it listens, its port resolved
	done chan struct{}
}

// startMetrics listens on addr and serves /metrics from the loop's status.
// A taken address (or any other listen error) does not stop the instance:
// it is logged and returned, and the instance runs without the endpoint
// (docs/design.md, "Metrics").
func (s *Supervisor) startMetrics(addr string) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewStatusCollector(func() (*proto.StatusReply, error) {
			st, ok := call(s, s.status)
			if !ok {
				return nil, errors.New("the instance is stopping")
			}
			return st, nil
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "saturn_supervisor_info", Help: "The supervisor of this saturn instance (always 1).",
			ConstLabels: prometheus.Labels{"saturn_instance": s.opts.Paths.Instance},
		}, func() float64 { return 1 }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError, // what could be gathered, and the error logged
		MaxRequestsInFlight: metricsMaxInFlight,
		Timeout:             metricsWriteTimeout,
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "saturn instance %s: metrics at /metrics\n", s.opts.Paths.Instance)
	})
	m := &metricsServer{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: metricsReadHeaderTimeout,
			WriteTimeout:      metricsWriteTimeout,
			IdleTimeout:       metricsIdleTimeout,
			MaxHeaderBytes:    metricsMaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		},
		addr: ln.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("metrics endpoint stopped", "addr", m.addr, "err", err)
		}
	}()
	s.log.Info("metrics endpoint", "url", "http://"+m.addr+"/metrics")
	return m, nil
}

// close stops the endpoint: scrapes in progress get a second to finish.
func (m *metricsServer) close() {
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if m.srv.Shutdown(ctx) != nil {
		m.srv.Close()
	}
	<-m.done
}
