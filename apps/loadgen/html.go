package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// WriteHTML writes the report as one self-contained HTML page: the summary,
// the latency distribution as an HDR percentile plot (latency against
// percentile on a scale of 1/(1-p), so that the tail gets the room it
// matters for), and throughput and latency over the run. The plots are
// inline SVG drawn here; the page loads nothing, runs no script, and opens
// in a browser without a network. The report itself is embedded as JSON
// (<script type="application/json" id="loadgen-report">) for tools.
//
// The page is well-formed XML as well as HTML, so that it can be checked
// with an XML parser.
func (r *Report) WriteHTML(w io.Writer) error {
	js, err := json.Marshal(r) // escapes <, > and &: safe inside <script>
	if err != nil {
		return err
	}
	page := htmlPage{
		R:        r,
		Title:    "saturn loadgen: " + r.URL,
		Mode:     "closed loop",
		Summary:  strings.TrimRight(r.String(), "\n"),
		JSON:     template.JS(js),
		Elapsed:  round(r.Elapsed).String(),
		Generate: time.Now().UTC().Format(time.RFC3339),
	}
	if r.Rate > 0 {
		page.Mode = fmt.Sprintf("open loop at %g req/s", r.Rate)
	}
	page.Plots = []svgPlot{percentilePlot(r), throughputPlot(r), latencyPlot(r)}
	var buf bytes.Buffer
	if err := htmlTemplate.Execute(&buf, page); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

type htmlPage struct {
	R        *Report
	Title    string
	Mode     string
	Summary  string
	JSON     template.JS
	Elapsed  string
	Generate string
	Plots    []svgPlot
}

// Plot geometry, in SVG user units: the plotting area, with margins for
// the axes' labels and, on the right, the legend.
const (
	plotW, plotH                       = 960.0, 360.0
	marginL, marginR, marginT, marginB = 80.0, 150.0, 20.0, 50.0
	innerW, innerH                     = plotW - marginL - marginR, plotH - marginT - marginB
	plotX0, plotY0                     = marginL, marginT
	plotX1, plotY1                     = marginL + innerW, marginT + innerH
	legendX, legendDY                  = plotX1 + 15, 20.0
	// The percentile plot's axis reaches 99% at least, 99.99999% at most.
	minNines, maxNines = 2, 7
)

type svgPlot struct {
	ID, Title, XLabel, YLabel string
	XTicks, YTicks            []svgTick
	Series                    []svgSeries
	Empty                     bool
	// Geometry for the template.
	W, H, X0, Y0, X1, Y1, LegendX float64
}

type svgTick struct {
	Pos   float64
	Label string
}

type svgSeries struct {
	Name, Color string
	Path        string // SVG path data: M x,y L x,y ... (M again after a gap)
	Points      int    // how many points the path has
	LegendY     float64
}

func newPlot(id, title, xlabel, ylabel string) svgPlot {
	return svgPlot{ID: id, Title: title, XLabel: xlabel, YLabel: ylabel,
		W: plotW, H: plotH, X0: plotX0, Y0: plotY0, X1: plotX1, Y1: plotY1, LegendX: legendX}
}

// point is a value to plot; ok false makes a gap.
type point struct {
	x, y float64
	ok   bool
}

// addSeries scales points from [0,xmax]×[0,ymax] into the plot.
func (p *svgPlot) addSeries(name, color string, pts []point, xmax, ymax float64) {
	var b strings.Builder
	n := 0
	for i, pt := range pts {
		if !pt.ok {
			continue
		}
		x := plotX0 + pt.x/xmax*innerW
		y := plotY1 - pt.y/ymax*innerH
		cmd := "L"
		if i == 0 || !pts[i-1].ok {
			cmd = "M"
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s%.2f,%.2f", cmd, x, y)
		if cmd == "M" && (i+1 == len(pts) || !pts[i+1].ok) {
			// A point alone: a segment of no length, which the round
			// cap draws as a dot.
			b.WriteString(" l0,0")
		}
		n++
	}
	p.Series = append(p.Series, svgSeries{Name: name, Color: color, Path: b.String(), Points: n,
		LegendY: plotY0 + 10 + float64(len(p.Series))*legendDY})
}

// yAxis sets ticks for values from 0 to max, as durations when dur, and
// returns the top of the axis.
func (p *svgPlot) yAxis(max float64, label func(float64) string) float64 {
	if max <= 0 {
		max = 1
	}
	step := niceStep(max, 5)
	top := math.Ceil(max/step) * step
	for v := 0.0; v <= top+step/2; v += step {
		p.YTicks = append(p.YTicks, svgTick{Pos: plotY1 - v/top*innerH, Label: label(v)})
	}
	return top
}

// niceStep is a step of 1, 2 or 5 times a power of ten that cuts span into
// about n parts.
func niceStep(span float64, n int) float64 {
	raw := span / float64(n)
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*pow {
			return m * pow
		}
	}
	return 10 * pow
}

// durationLabel formats a tick of a duration axis whose unit suits top.
func durationLabel(top time.Duration) func(float64) string {
	unit, name := time.Microsecond, "µs"
	switch {
	case top >= 2*time.Second:
		unit, name = time.Second, "s"
	case top >= 2*time.Millisecond:
		unit, name = time.Millisecond, "ms"
	}
	return func(v float64) string {
		return trimFloat(v/float64(unit)) + " " + name
	}
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// percentileX is where percentile p (0 to 100) goes on an HDR plot's axis:
// log10(1/(1-p)), so 90% is 1, 99% is 2, 99.9% is 3. p is capped at what
// count samples can tell apart (one in count).
func percentileX(p float64, count int64) float64 {
	q := p / 100
	if limit := 1 - 1/float64(max(count, 1)); q > limit {
		q = limit
	}
	if q <= 0 {
		return 0
	}
	return math.Log10(1 / (1 - q))
}

func percentilePlot(r *Report) svgPlot {
	p := newPlot("percentiles", "Latency by percentile", "percentile", "latency")
	if len(r.Distribution) == 0 {
		p.Empty = true
		return p
	}
	total := r.Distribution[len(r.Distribution)-1].Count
	nines := int(math.Ceil(math.Log10(float64(max(total, 1)))))
	nines = min(max(nines, minNines), maxNines)
	xmax := float64(nines)
	for k := 0; k <= nines; k++ {
		label := "0%"
		if k > 0 {
			label = strings.TrimSuffix(fmt.Sprintf("%.*f", max(k-2, 0), 100*(1-math.Pow(10, -float64(k)))), ".") + "%"
		}
		p.XTicks = append(p.XTicks, svgTick{Pos: plotX0 + float64(k)/xmax*innerW, Label: label})
	}
	maxLat := r.Distribution[len(r.Distribution)-1].Latency
	top := p.yAxis(float64(maxLat), durationLabel(maxLat))
	pts := make([]point, len(r.Distribution))
	for i, q := range r.Distribution {
		pts[i] = point{x: min(percentileX(q.Percentile, total), xmax), y: float64(q.Latency), ok: true}
	}
	p.addSeries("latency", "#1f77b4", pts, xmax, top)
	return p
}

// timeAxis sets the x ticks of a plot over the run and returns its end.
func (p *svgPlot) timeAxis(r *Report) float64 {
	end := r.Elapsed
	if n := len(r.Timeline); n > 0 {
		end = max(end, r.Timeline[n-1].Start+r.TimelineStep)
	}
	if end <= 0 {
		end = time.Second
	}
	label := durationLabel(end)
	step := niceStep(float64(end), 8)
	for v := 0.0; v <= float64(end)+step/100; v += step {
		p.XTicks = append(p.XTicks, svgTick{Pos: plotX0 + v/float64(end)*innerW, Label: label(v)})
	}
	return float64(end)
}

// mid is where an interval's point goes: its middle.
func mid(r *Report, iv Interval) float64 { return float64(iv.Start + r.TimelineStep/2) }

func throughputPlot(r *Report) svgPlot {
	p := newPlot("throughput", "Throughput over time", "time", "requests/s")
	if len(r.Timeline) == 0 {
		p.Empty = true
		return p
	}
	xmax := p.timeAxis(r)
	var peak float64
	for _, iv := range r.Timeline {
		peak = max(peak, iv.RequestsPerSec, iv.ErrorsPerSec)
	}
	top := p.yAxis(peak, func(v float64) string { return trimFloat(v) })
	reqs := make([]point, len(r.Timeline))
	errs := make([]point, len(r.Timeline))
	anyErr := false
	for i, iv := range r.Timeline {
		reqs[i] = point{x: mid(r, iv), y: iv.RequestsPerSec, ok: true}
		errs[i] = point{x: mid(r, iv), y: iv.ErrorsPerSec, ok: true}
		anyErr = anyErr || iv.Errors > 0
	}
	p.addSeries("requests/s", "#1f77b4", reqs, xmax, top)
	if anyErr {
		p.addSeries("errors/s", "#d62728", errs, xmax, top)
	}
	return p
}

func latencyPlot(r *Report) svgPlot {
	p := newPlot("latency", "Latency over time", "time", "latency")
	var peak time.Duration
	for _, iv := range r.Timeline {
		peak = max(peak, iv.Max)
	}
	if peak == 0 {
		p.Empty = true
		return p
	}
	xmax := p.timeAxis(r)
	top := p.yAxis(float64(peak), durationLabel(peak))
	for _, s := range []struct {
		name, color string
		get         func(Interval) time.Duration
	}{
		// From the top down, so that a lower line that meets a higher one
		// is drawn over it, and the legend reads as the lines stack.
		{"max", "#d62728", func(iv Interval) time.Duration { return iv.Max }},
		{"p99", "#ff7f0e", func(iv Interval) time.Duration { return iv.P99 }},
		{"p90", "#1f77b4", func(iv Interval) time.Duration { return iv.P90 }},
		{"p50", "#2ca02c", func(iv Interval) time.Duration { return iv.P50 }},
	} {
		pts := make([]point, len(r.Timeline))
		for i, iv := range r.Timeline {
			// An interval without responses has no latency: a gap.
			pts[i] = point{x: mid(r, iv), y: float64(s.get(iv)), ok: iv.Requests > 0}
		}
		p.addSeries(s.name, s.color, pts, xmax, top)
	}
	return p
}

var htmlTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.3em; word-break: break-all; }
h2 { font-size: 1.1em; margin-top: 2em; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
svg { display: block; background: #fff; }
.grid { stroke: #e3e3e3; stroke-width: 1; }
.axis { stroke: #444; stroke-width: 1; }
.tick { font-size: 12px; fill: #444; }
.label { font-size: 13px; fill: #222; }
.series { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
.empty { font-size: 16px; fill: #888; }
footer { margin-top: 2em; font-size: 0.8em; color: #777; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.R.Connections}} connections, {{.Mode}}, {{.Elapsed}}.</p>
<pre id="summary">{{.Summary}}</pre>
{{range .Plots}}
<h2>{{.Title}}</h2>
<svg id="{{.ID}}" xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="{{.H}}" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Title}}">
{{- $p := .}}
{{- range .YTicks}}
<line class="grid" x1="{{$p.X0}}" y1="{{.Pos}}" x2="{{$p.X1}}" y2="{{.Pos}}"/>
<text class="tick" x="{{$p.X0}}" y="{{.Pos}}" dx="-6" dy="4" text-anchor="end">{{.Label}}</text>
{{- end}}
{{- range .XTicks}}
<line class="grid" x1="{{.Pos}}" y1="{{$p.Y0}}" x2="{{.Pos}}" y2="{{$p.Y1}}"/>
<text class="tick" x="{{.Pos}}" y="{{$p.Y1}}" dy="18" text-anchor="middle">{{.Label}}</text>
{{- end}}
<line class="axis" x1="{{.X0}}" y1="{{.Y1}}" x2="{{.X1}}" y2="{{.Y1}}"/>
<line class="axis" x1="{{.X0}}" y1="{{.Y0}}" x2="{{.X0}}" y2="{{.Y1}}"/>
<text class="label" x="{{.X1}}" y="{{.H}}" dy="-6" text-anchor="end">{{.XLabel}}</text>
<text class="label" x="12" y="{{.Y0}}" dy="4" transform="rotate(-90 12 {{.Y0}})" text-anchor="end">{{.YLabel}}</text>
{{- if .Empty}}
<text class="empty" x="{{.X0}}" y="{{.Y0}}" dx="20" dy="40">no responses</text>
{{- end}}
{{- range .Series}}
<path class="series" data-series="{{.Name}}" data-points="{{.Points}}" stroke="{{.Color}}" d="{{.Path}}"/>
<line x1="{{$p.LegendX}}" y1="{{.LegendY}}" x2="{{$p.LegendX}}" y2="{{.LegendY}}" stroke="{{.Color}}" stroke-width="10" stroke-linecap="square"/>
<text class="label" x="{{$p.LegendX}}" y="{{.LegendY}}" dx="14" dy="4">{{.Name}}</text>
{{- end}}
</svg>
{{end}}
<footer>Written by saturn's load generator at {{.Generate}}. The report as JSON is in the page (script#loadgen-report).</footer>
<script type="application/json" id="loadgen-report">{{.JSON}}</script>
</body>
</html>
`))
