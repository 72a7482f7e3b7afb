package loadgen

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Report is the outcome of a run. Its JSON form uses the field tags;
// durations are in nanoseconds.
type Report struct {
	URL         string        `json:"url"`
	Connections int           `json:"connections"`
	Rate        float64       `json:"rate,omitempty"` // requested, per second; 0 for closed loop
	Elapsed     time.Duration `json:"elapsed_ns"`

	// Requests counts completed requests (a whole response received),
	// whatever the status, as wrk does; Errors.Status counts those among
	// them whose status was not 2xx or 3xx.
	Requests       int64   `json:"requests"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	// Bytes counts every byte read from the server, heads included.
	Bytes       int64   `json:"bytes"`
	BytesPerSec float64 `json:"bytes_per_sec"`

	Latency     Latency       `json:"latency"`
	Errors      Errors        `json:"errors"`
	StatusCodes map[int]int64 `json:"status_codes"`

	// Distribution is the latency by percentile, from the same histogram
	// as Latency (its last point is the maximum).
	Distribution []Quantile `json:"distribution,omitempty"`
	// Timeline is the run in steps of TimelineStep (100 ms, doubled as
	// often as it takes to keep at most 256 steps): responses, errors and
	// latency as they came. Its requests add up to Requests, its errors to
	// Errors.Total().
	TimelineStep time.Duration `json:"timeline_step_ns,omitempty"`
	Timeline     []Interval    `json:"timeline,omitempty"`
}

// Latency summarises the latency of complete responses, from an HDR
// histogram with three significant digits (microsecond resolution). In an
// open-loop run it is measured from each request's scheduled send time.
type Latency struct {
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p99_9_ns"`
	P9999 time.Duration `json:"p99_99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Errors counts failed requests by kind. Each request counts once: a
// request that fails is not retried.
type Errors struct {
	Connect   int64 `json:"connect"`   // could not open a connection for it
	Read      int64 `json:"read"`      // reading failed, or the response was cut short (a truncated body)
	Write     int64 `json:"write"`     // sending the request failed
	Timeout   int64 `json:"timeout"`   // no whole response within Config.Timeout
	Status    int64 `json:"status"`    // a whole response whose status was not 2xx or 3xx
	Malformed int64 `json:"malformed"` // a response that is not valid HTTP/1.1
}

// Total is the number of failed requests.
func (e Errors) Total() int64 {
	return e.Connect + e.Read + e.Write + e.Timeout + e.Status + e.Malformed
}

func (e *Errors) add(o Errors) {
	e.Connect += o.Connect
	e.Read += o.Read
	e.Write += o.Write
	e.Timeout += o.Timeout
	e.Status += o.Status
	e.Malformed += o.Malformed
}

// JSON returns the report as indented JSON.
func (r *Report) JSON() ([]byte, error) { return json.MarshalIndent(r, "", "  ") }

// String is the report for people, in the manner of wrk's.
func (r *Report) String() string {
	var b strings.Builder
	mode := "closed loop"
	if r.Rate > 0 {
		mode = fmt.Sprintf("open loop at %g req/s", r.Rate)
	}
	fmt.Fprintf(&b, "%s: %d connections, %s, %.2fs\n", r.URL, r.Connections, mode, r.Elapsed.Seconds())
	fmt.Fprintf(&b, "  requests   %d (%.1f/s)\n", r.Requests, r.RequestsPerSec)
	fmt.Fprintf(&b, "  bytes      %s (%s/s)\n", byteSize(float64(r.Bytes)), byteSize(r.BytesPerSec))
	l := r.Latency
	fmt.Fprintf(&b, "  latency    p50 %v  p90 %v  p99 %v  p99.9 %v  p99.99 %v  max %v  (mean %v)\n",
		round(l.P50), round(l.P90), round(l.P99), round(l.P999), round(l.P9999), round(l.Max), round(l.Mean))
	codes := make([]int, 0, len(r.StatusCodes))
	for c := range r.StatusCodes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d: %d", c, r.StatusCodes[c]))
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, "  status     %s\n", strings.Join(parts, ", "))
	}
	e := r.Errors
	fmt.Fprintf(&b, "  errors     %d (connect %d, read %d, write %d, timeout %d, status %d, malformed %d)\n",
		e.Total(), e.Connect, e.Read, e.Write, e.Timeout, e.Status, e.Malformed)
	return b.String()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func byteSize(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%.2f %s", n, units[i])
}

// Histogram bounds, in microseconds: 1 µs to 1 hour. A latency above is
// recorded as the maximum.
const (
	histMin = 1
	histMax = int64(time.Hour / time.Microsecond)
)

func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, 3) }

func summarize(h *hdrhistogram.Histogram) Latency {
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Mean:  time.Duration(h.Mean() * float64(time.Microsecond)),
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		P9999: us(h.ValueAtQuantile(99.99)),
		Max:   us(h.Max()),
	}
}
