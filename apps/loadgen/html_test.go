package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// page is what a test reads back from a report's HTML: the embedded JSON
// and, for each plot, the series' paths.
type page struct {
	json  []byte
	paths map[string]map[string][]point // plot id -> series name -> points
	texts []string                      // every text node, for labels
}

// parsePage parses the page as XML, strictly: it must be well-formed, with
// HTML's named entities allowed.
func parsePage(t *testing.T, html []byte) *page {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(html))
	d.Strict, d.Entity = true, xml.HTMLEntity
	p := &page{paths: map[string]map[string][]point{}}
	var svg string
	var inScript bool
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the report is not well-formed: %v\n%s", err, html)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			attr := func(name string) string {
				for _, a := range tok.Attr {
					if a.Name.Local == name {
						return a.Value
					}
				}
				return ""
			}
			switch tok.Name.Local {
			case "svg":
				svg = attr("id")
				p.paths[svg] = map[string][]point{}
			case "path":
				pts := parsePath(t, attr("d"))
				if n, _ := strconv.Atoi(attr("data-points")); n != len(pts) {
					t.Errorf("%s/%s: data-points %s, path has %d", svg, attr("data-series"), attr("data-points"), len(pts))
				}
				p.paths[svg][attr("data-series")] = pts
			case "script":
				inScript = attr("id") == "loadgen-report" && attr("type") == "application/json"
			case "link", "img", "iframe":
				t.Errorf("the page loads something: <%s %v>", tok.Name.Local, tok.Attr)
			}
			for _, a := range tok.Attr {
				if strings.Contains(a.Value, "http://") && a.Name.Local != "xmlns" || strings.Contains(a.Value, "https://") {
					t.Errorf("the page refers to the network: <%s %s=%q>", tok.Name.Local, a.Name.Local, a.Value)
				}
			}
		case xml.CharData:
			if inScript {
				p.json = append(p.json, tok...)
			} else if s := strings.TrimSpace(string(tok)); s != "" {
				p.texts = append(p.texts, s)
			}
		case xml.EndElement:
			if tok.Name.Local == "script" {
				inScript = false
			}
		}
	}
	return p
}

// parsePath reads "Mx,y Lx,y ..." back into points (ok false before each M
// but the first, for a gap).
func parsePath(t *testing.T, d string) []point {
	t.Helper()
	var pts []point
	for _, f := range strings.Fields(d) {
		if f == "l0,0" {
			continue // a lone point's dot
		}
		var x, y float64
		if _, err := fmt.Sscanf(f[1:], "%g,%g", &x, &y); err != nil || (f[0] != 'M' && f[0] != 'L') {
			t.Fatalf("path step %q: %v", f, err)
		}
		pts = append(pts, point{x: x, y: y, ok: f[0] == 'L'})
	}
	return pts
}

// TestReportHTML: the page is well-formed, self-contained, embeds the
// report's own JSON, and its plots hold the report's numbers: one point
// per percentile of the distribution, rising to the maximum; one per
// interval of the timeline, whose requests and errors add up to the
// report's.
func TestReportHTML(t *testing.T) {
	// Every 50th response is a 500, so that errors show over time.
	s := startTestServer(t, func(n int64, w *bufio.Writer) bool {
		status := "200 OK"
		if n%50 == 0 {
			status = "500 Internal Server Error"
		}
		fmt.Fprintf(w, "HTTP/1.1 %s\r\nContent-Length: 5\r\n\r\nhello", status)
		return false
	})
	rep := run(t, Config{URL: "http://" + s.addr + "/", Connections: 4, Duration: 700 * time.Millisecond})
	if rep.Requests == 0 || rep.Errors.Status == 0 {
		t.Fatalf("the run: %d requests, %d status errors", rep.Requests, rep.Errors.Status)
	}

	// The report's own consistency: what the plots are drawn from.
	var reqs, errs int64
	for i, iv := range rep.Timeline {
		reqs += iv.Requests
		errs += iv.Errors
		if iv.Start != time.Duration(i)*rep.TimelineStep {
			t.Errorf("interval %d starts at %v, step %v", i, iv.Start, rep.TimelineStep)
		}
		if iv.Requests > 0 && !(iv.P50 <= iv.P90 && iv.P90 <= iv.P99 && iv.P99 <= iv.Max && iv.Max <= rep.Latency.Max*101/100) {
			t.Errorf("interval %d: %+v (run's max %v)", i, iv, rep.Latency.Max)
		}
	}
	if reqs != rep.Requests || errs != rep.Errors.Total() {
		t.Errorf("the timeline adds up to %d requests and %d errors; the report has %d and %d", reqs, errs, rep.Requests, rep.Errors.Total())
	}
	if n := len(rep.Timeline); n < 5 || time.Duration(n-1)*rep.TimelineStep >= rep.Elapsed+rep.TimelineStep {
		t.Errorf("%d intervals of %v for a run of %v", n, rep.TimelineStep, rep.Elapsed)
	}
	dist := rep.Distribution
	if len(dist) < 10 {
		t.Fatalf("distribution of %d points: %+v", len(dist), dist)
	}
	sawP50 := false
	for i, q := range dist {
		if i > 0 && (q.Percentile <= dist[i-1].Percentile || q.Latency < dist[i-1].Latency || q.Count < dist[i-1].Count) {
			t.Errorf("distribution not increasing at %d: %+v after %+v", i, q, dist[i-1])
		}
		if !sawP50 && q.Percentile >= 50 {
			sawP50 = true
			if q.Latency != rep.Latency.P50 {
				t.Errorf("first point at or past 50%%: %+v; p50 is %v", q, rep.Latency.P50)
			}
		}
	}
	if last := dist[len(dist)-1]; last.Percentile != 100 || last.Latency != rep.Latency.Max || last.Count != rep.Requests {
		t.Errorf("last point %+v; want 100%% at the max %v over %d requests", last, rep.Latency.Max, rep.Requests)
	}

	// The report's own keys appear once in its JSON, timeline and all:
	// scripts grep them.
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"requests_per_sec"`, `"requests"`, `"errors"`, `"p50_ns"`, `"p99_ns"`, `"max_ns"`, `"bytes_per_sec"`} {
		if n := bytes.Count(js, []byte(key)); n != 1 {
			t.Errorf("%s appears %d times in the report's JSON", key, n)
		}
	}

	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	p := parsePage(t, html.Bytes())

	// The embedded JSON is the report's.
	want, _ := json.Marshal(rep)
	var back Report
	if err := json.Unmarshal(p.json, &back); err != nil {
		t.Fatalf("embedded JSON: %v\n%s", err, p.json)
	}
	if got, _ := json.Marshal(&back); !bytes.Equal(got, want) {
		t.Errorf("embedded JSON differs from the report's:\n%s\n%s", got, want)
	}

	// The percentile plot: a point per percentile, left to right, rising.
	lat := p.paths["percentiles"]["latency"]
	if len(lat) != len(dist) {
		t.Fatalf("percentile plot has %d points, the distribution %d", len(lat), len(dist))
	}
	for i := 1; i < len(lat); i++ {
		if lat[i].x < lat[i-1].x || lat[i].y > lat[i-1].y || !lat[i].ok {
			t.Errorf("percentile plot point %d %+v after %+v", i, lat[i], lat[i-1])
		}
	}
	if lat[len(lat)-1].y > lat[0].y-1 {
		t.Errorf("the maximum (%v) is drawn no higher than the minimum", rep.Latency.Max)
	}
	// Throughput: a point per interval, the busiest highest; errors drawn.
	tp := p.paths["throughput"]["requests/s"]
	if len(tp) != len(rep.Timeline) {
		t.Fatalf("throughput plot has %d points, the timeline %d", len(tp), len(rep.Timeline))
	}
	busiest := 0
	for i, iv := range rep.Timeline {
		if iv.RequestsPerSec > rep.Timeline[busiest].RequestsPerSec {
			busiest = i
		}
	}
	for i := range tp {
		if tp[i].y < tp[busiest].y {
			t.Errorf("interval %d (%g/s) drawn above the busiest, %d (%g/s)", i, rep.Timeline[i].RequestsPerSec, busiest, rep.Timeline[busiest].RequestsPerSec)
		}
	}
	if len(p.paths["throughput"]["errors/s"]) != len(rep.Timeline) {
		t.Errorf("no errors/s series, with %d errors", rep.Errors.Total())
	}
	// Latency over time: a point per interval with responses, per series.
	withResponses := 0
	for _, iv := range rep.Timeline {
		if iv.Requests > 0 {
			withResponses++
		}
	}
	for _, name := range []string{"p50", "p90", "p99", "max"} {
		if n := len(p.paths["latency"][name]); n != withResponses {
			t.Errorf("latency plot's %s has %d points, %d intervals have responses", name, n, withResponses)
		}
	}
	for _, want := range []string{"99%", "requests/s", "Latency by percentile", rep.URL} {
		found := false
		for _, s := range p.texts {
			found = found || strings.Contains(s, want)
		}
		if !found {
			t.Errorf("the page does not say %q", want)
		}
	}
}

// TestReportHTMLNoResponses: a run against nothing still makes a valid
// page, which says there were no responses.
func TestReportHTMLNoResponses(t *testing.T) {
	rep := run(t, Config{URL: "http://127.0.0.1:1/", Requests: 20, Timeout: time.Second})
	if rep.Requests != 0 || rep.Errors.Connect == 0 {
		t.Fatalf("%+v", rep)
	}
	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	p := parsePage(t, html.Bytes())
	if !strings.Contains(html.String(), "no responses") || len(p.paths["percentiles"]) != 0 {
		t.Errorf("page for no responses: %+v", p.paths)
	}
	if n := len(p.paths["throughput"]["errors/s"]); n == 0 {
		t.Error("errors are not drawn over time")
	}
}

// TestTimelineBounded: a long run's timeline keeps at most maxIntervals,
// merging neighbours and doubling its step, and loses no count.
func TestTimelineBounded(t *testing.T) {
	tl := newTimeline()
	const runFor = 100 * time.Second
	var n int64
	for at := time.Duration(0); at < runFor; at += 7 * time.Millisecond {
		tl.add(sample{at: at, latency: int64(at/time.Millisecond%1000) + 1, failed: at%(70*time.Millisecond) == 0})
		n++
	}
	if len(tl.intervals) > maxIntervals || tl.step != 400*time.Millisecond {
		t.Fatalf("%d intervals of %v", len(tl.intervals), tl.step)
	}
	var reqs, errs int64
	for _, iv := range tl.report(runFor) {
		reqs += iv.Requests
		errs += iv.Errors
		if iv.Requests > 0 && (iv.RequestsPerSec < 100 || iv.RequestsPerSec > 200) {
			t.Errorf("interval at %v: %g/s, want about 143", iv.Start, iv.RequestsPerSec)
		}
	}
	if reqs != n || errs != (n+9)/10 {
		t.Errorf("%d requests and %d errors, want %d and %d", reqs, errs, n, (n+9)/10)
	}
}

// TestReportInChromium opens a report in headless Chromium and checks that
// the plots are drawn: their colours are on the screenshot. It needs
// chromium, and is a long test.
func TestReportInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("long test: opens the report in headless Chromium")
	}
	var browser string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("no chromium here (apt-get install chromium): the report is not opened in a browser")
	}
	s := startTestServer(t, okResponse("hello"))
	rep := run(t, Config{URL: "http://" + s.addr + "/", Connections: 2, Duration: 500 * time.Millisecond})
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	var html bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, html.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a browser that hangs fails the test, not the suite
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--window-size=1100,1700", "--screenshot="+shot, "file://"+file)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", browser, err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// The series colours: the percentile and throughput lines (#1f77b4),
	// and p50 over time (#2ca02c), drawn over the others: each line is some
	// thousand pixels, its legend's swatch about a hundred.
	for _, c := range [][3]uint8{{0x1f, 0x77, 0xb4}, {0x2c, 0xa0, 0x2c}} {
		n := countColour(img, c)
		t.Logf("colour %x: %d pixels", c, n)
		if n < 500 {
			t.Errorf("colour %x: %d pixels on the screenshot; the plots are not drawn", c, n)
		}
	}
}

func countColour(img image.Image, c [3]uint8) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r>>8, c[0]) && near(g>>8, c[1]) && near(bl>>8, c[2]) {
				n++
			}
		}
	}
	return n
}

func near(v uint32, c uint8) bool { return v+8 >= uint32(c) && v <= uint32(c)+8 }

// TestProgressRate: the progress's rate is over the time since the last
// snapshot; the first's and the last's are over the whole run.
func TestProgressRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := &worker{}
	r := &runner{start: t0, workers: []*worker{w}}
	for _, step := range []struct {
		at        time.Duration
		responses int64
		final     bool
		want      float64
	}{
		{time.Second, 100, false, 100},
		{1500 * time.Millisecond, 400, false, 600},
		{2 * time.Second, 400, false, 0},
		{4 * time.Second, 1000, true, 250},
	} {
		w.responses.Store(step.responses)
		if p := r.progress(step.final, t0.Add(step.at)); p.Rate != step.want || p.Responses != step.responses || p.Elapsed != step.at {
			t.Errorf("at %v with %d responses: %+v, want a rate of %g", step.at, step.responses, p, step.want)
		}
	}
}

// TestTimelineTail: a tail shorter than half a step joins the last whole
// interval, whose rate is then over its whole length; a longer one is an
// interval of its own, its rate over what it lasted.
func TestTimelineTail(t *testing.T) {
	for _, tt := range []struct {
		elapsed  time.Duration
		n        int
		lastRate float64
	}{
		{1020 * time.Millisecond, 10, 12 / 0.12}, // 10 ms per response: 12 in the last 120 ms
		{1070 * time.Millisecond, 11, 7 / 0.07},
		{0, 1, 0},
	} {
		tl := newTimeline()
		var n int64
		for at := time.Duration(0); at < tt.elapsed; at += 10 * time.Millisecond {
			tl.add(sample{at: at, latency: 5})
			n++
		}
		ivs := tl.report(tt.elapsed)
		var sum int64
		for _, iv := range ivs {
			sum += iv.Requests
		}
		last := ivs[len(ivs)-1]
		if len(ivs) != tt.n || sum != n || math.Abs(last.RequestsPerSec-tt.lastRate) > 0.01 {
			t.Errorf("run of %v: %d intervals, %d of %d requests, last %+v; want %d intervals, the last at %g/s",
				tt.elapsed, len(ivs), sum, n, last, tt.n, tt.lastRate)
		}
	}
}
