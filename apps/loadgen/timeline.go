package loadgen

import (
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The run over time: every outcome is counted in the interval of the run in
// which it came (a response when its last byte arrived, a failure when it
// was seen), with a small latency histogram per interval, so that the report
// can show throughput and latency as they went, not only in sum.
//
// Memory is bounded whatever the run's length: intervals start at
// timelineStep and there are at most maxIntervals of them; when the run
// outgrows them, neighbours merge in pairs and the step doubles. An
// interval's histogram has two significant digits (about 26 KiB), enough
// for percentiles over time; the run's own histogram keeps three.

const (
	timelineStep = 100 * time.Millisecond
	maxIntervals = 256
)

// sample is one request's outcome, as a worker batches it.
type sample struct {
	at      time.Duration // since the run's start
	latency int64         // microseconds; -1 when no response came
	failed  bool          // counted among the errors
}

type interval struct {
	responses, errors int64
	hist              *hdrhistogram.Histogram // nil until a response comes
}

// add counts o's responses, errors and latencies into iv. iv may take o's
// histogram over: o is not used after.
func (iv *interval) add(o interval) {
	iv.responses += o.responses
	iv.errors += o.errors
	switch {
	case iv.hist == nil:
		iv.hist = o.hist
	case o.hist != nil:
		iv.hist.Merge(o.hist)
	}
}

// timeline is the run's intervals. Not safe for concurrent use: the runner
// adds to it under its lock.
type timeline struct {
	step      time.Duration
	intervals []interval
}

func newTimeline() *timeline { return &timeline{step: timelineStep} }

func (tl *timeline) add(s sample) {
	i := int(s.at / tl.step)
	for i >= maxIntervals {
		tl.halve()
		i = int(s.at / tl.step)
	}
	if i >= len(tl.intervals) {
		tl.intervals = append(tl.intervals, make([]interval, i+1-len(tl.intervals))...)
	}
	iv := &tl.intervals[i]
	if s.failed {
		iv.errors++
	}
	if s.latency >= 0 {
		iv.responses++
		if iv.hist == nil {
			iv.hist = hdrhistogram.New(histMin, histMax, 2)
		}
		iv.hist.RecordValue(s.latency)
	}
}

// halve merges neighbouring intervals in pairs and doubles the step.
func (tl *timeline) halve() {
	merged := tl.intervals[:0:0]
	for i := 0; i < len(tl.intervals); i += 2 {
		iv := tl.intervals[i]
		if i+1 < len(tl.intervals) {
			iv.add(tl.intervals[i+1])
		}
		merged = append(merged, iv)
	}
	tl.intervals = merged
	tl.step *= 2
}

// Interval is one step of the run's timeline in the report. Latencies are
// of the responses that ended in it (zero when none did). Its JSON keys
// differ from the report's own, so that a script that greps the report's
// JSON for "requests_per_sec" (as bench/webserver.sh does) still finds one
// line.
type Interval struct {
	Start          time.Duration `json:"start_ns"`
	Requests       int64         `json:"responses"`
	Errors         int64         `json:"failures"`
	RequestsPerSec float64       `json:"responses_per_sec"`
	ErrorsPerSec   float64       `json:"failures_per_sec"`
	P50            time.Duration `json:"lat_p50_ns"`
	P90            time.Duration `json:"lat_p90_ns"`
	P99            time.Duration `json:"lat_p99_ns"`
	Max            time.Duration `json:"lat_max_ns"`
}

// report turns the timeline into the report's intervals, over elapsed. A
// tail shorter than half a step is folded into the last whole interval
// (with anything that ended after elapsed), so that the last point's rate
// is over at least half a step rather than a sliver of one. It is called
// once, at the end of the run: it may merge the timeline's histograms.
func (tl *timeline) report(elapsed time.Duration) []Interval {
	n := max(int((elapsed+tl.step/2)/tl.step), 1)
	for len(tl.intervals) > n {
		last := len(tl.intervals) - 1
		tl.intervals[last-1].add(tl.intervals[last])
		tl.intervals = tl.intervals[:last]
	}
	out := make([]Interval, n)
	for i := range out {
		start := time.Duration(i) * tl.step
		out[i].Start = start
		length := tl.step
		if i == n-1 && elapsed-start > 0 {
			length = elapsed - start
		}
		if i >= len(tl.intervals) {
			continue
		}
		iv := tl.intervals[i]
		out[i].Requests, out[i].Errors = iv.responses, iv.errors
		out[i].RequestsPerSec = float64(iv.responses) / length.Seconds()
		out[i].ErrorsPerSec = float64(iv.errors) / length.Seconds()
		if h := iv.hist; h != nil {
			out[i].P50 = us(h.ValueAtQuantile(50))
			out[i].P90 = us(h.ValueAtQuantile(90))
			out[i].P99 = us(h.ValueAtQuantile(99))
			out[i].Max = us(h.Max())
		}
	}
	return out
}

// Quantile is one point of the latency distribution: Percentile of the
// responses took at most Latency.
type Quantile struct {
	Percentile float64       `json:"percentile"`
	Latency    time.Duration `json:"latency_ns"`
	Count      int64         `json:"count"` // responses at or below Latency
}

// distribution is the run's latency by percentile, in the manner of
// HdrHistogram's percentile output: points closer together as they near
// 100% (five per halving of what is left), which is what a plot on a scale
// of 1/(1-p) needs.
func distribution(h *hdrhistogram.Histogram) []Quantile {
	if h.TotalCount() == 0 {
		return nil
	}
	var out []Quantile
	for _, b := range h.CumulativeDistributionWithTicks(5) {
		q := Quantile{Percentile: b.Quantile, Latency: us(b.ValueAt), Count: b.Count}
		if n := len(out); n > 0 && out[n-1].Percentile == q.Percentile {
			out[n-1] = q
			continue
		}
		if math.IsNaN(q.Percentile) {
			continue
		}
		out = append(out, q)
	}
	return out
}

func us(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
