package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testServer is a raw HTTP/1.1 server on loopback whose every response is
// written by respond, so that tests control framing down to the byte. It
// counts the requests it has read.
type testServer struct {
	addr     string
	requests atomic.Int64
}

// respond writes the response to request n (counted from 1) and says
// whether to close the connection after it.
type respondFunc func(n int64, w *bufio.Writer) (close bool)

func startTestServer(t *testing.T, respond respondFunc) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br, bw := bufio.NewReader(c), bufio.NewWriter(c)
				for {
					for { // the request head
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					closeAfter := respond(s.requests.Add(1), bw)
					if bw.Flush() != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	return s
}

func okResponse(body string) respondFunc {
	return func(_ int64, w *bufio.Writer) bool {
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return false
	}
}

// rawResponse answers every request with raw, and then closes the
// connection if closeAfter.
func rawResponse(raw string, closeAfter bool) respondFunc {
	return func(_ int64, w *bufio.Writer) bool {
		io.WriteString(w, raw)
		return closeAfter
	}
}

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestCountedOnce: in a count-limited run, every request is answered and
// counted exactly once, by the server and by the report.
func TestCountedOnce(t *testing.T) {
	tests := []struct {
		name    string
		respond respondFunc
		conns   int
		head    bool
	}{
		{"content-length", okResponse("hello"), 8, false},
		{"one connection", okResponse(strings.Repeat("x", 100<<10)), 1, false},
		{"chunked", rawResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nTrailer: x\r\n\r\n", false), 4, false},
		{"connection close", rawResponse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true), 4, false},
		{"HTTP/1.0 read to close", rawResponse("HTTP/1.0 200 OK\r\n\r\nbody until close", true), 4, false},
		{"interim 100", rawResponse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", false), 2, false},
		{"HEAD", rawResponse("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", false), 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startTestServer(t, tt.respond)
			const n = 500
			cfg := Config{URL: "http://" + s.addr + "/x", Connections: tt.conns, Requests: n}
			if tt.head {
				cfg.Method = "HEAD"
			}
			rep := run(t, cfg)
			if rep.Requests != n || rep.Errors.Total() != 0 || s.requests.Load() != n || rep.StatusCodes[rep.firstCode()] != n {
				t.Fatalf("responses %d, errors %+v, server saw %d, want %d each:\n%s", rep.Requests, rep.Errors, s.requests.Load(), n, rep)
			}
			if rep.Latency.P50 <= 0 || rep.Latency.Max < rep.Latency.P99 || rep.Bytes == 0 {
				t.Errorf("implausible report:\n%s", rep)
			}
		})
	}
}

func (r *Report) firstCode() int {
	for c := range r.StatusCodes {
		return c
	}
	return 0
}

// TestErrorKinds: broken responses count as errors of the right kind and
// never as successes; the total still equals the requests made.
func TestErrorKinds(t *testing.T) {
	tests := []struct {
		name    string
		respond respondFunc
		check   func(e Errors) int64
	}{
		{"truncated body", rawResponse("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", true), func(e Errors) int64 { return e.Read }},
		{"truncated chunked", rawResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort", true), func(e Errors) int64 { return e.Read }},
		{"chunked without last chunk", rawResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n", true), func(e Errors) int64 { return e.Read }},
		{"truncated head", rawResponse("HTTP/1.1 200 OK\r\nContent-Len", true), func(e Errors) int64 { return e.Read }},
		{"closed without answer", func(int64, *bufio.Writer) bool { return true }, func(e Errors) int64 { return e.Read }},
		{"garbage", rawResponse("SSH-2.0-OpenSSH\r\n\r\n", true), func(e Errors) int64 { return e.Malformed }},
		{"bad chunk size", rawResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", true), func(e Errors) int64 { return e.Malformed }},
		{"conflicting lengths", rawResponse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", true), func(e Errors) int64 { return e.Malformed }},
		{"status 500", rawResponse("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", false), func(e Errors) int64 { return e.Status }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startTestServer(t, tt.respond)
			const n = 50
			rep := run(t, Config{URL: "http://" + s.addr + "/", Connections: 3, Requests: n})
			if got := tt.check(rep.Errors); got != n || rep.Errors.Total() != n {
				t.Fatalf("errors %+v, want %d of the expected kind:\n%s", rep.Errors, n, rep)
			}
			if tt.name != "status 500" && rep.Requests != 0 {
				t.Errorf("%d broken responses counted as responses", rep.Requests)
			}
		})
	}
}

// TestConnectErrors: a dialer that fails makes connect errors, one per
// request.
func TestConnectErrors(t *testing.T) {
	dial := func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("no route") }
	rep := run(t, Config{URL: "http://192.0.2.1/", Dial: dial, Connections: 2, Requests: 20})
	if rep.Errors.Connect != 20 || rep.Requests != 0 {
		t.Fatalf("errors %+v, responses %d", rep.Errors, rep.Requests)
	}
}

// TestTimeout: a server that never answers produces timeouts.
func TestTimeout(t *testing.T) {
	s := startTestServer(t, func(int64, *bufio.Writer) bool { time.Sleep(time.Second); return true })
	rep := run(t, Config{URL: "http://" + s.addr + "/", Connections: 2, Requests: 4, Timeout: 100 * time.Millisecond})
	if rep.Errors.Timeout != 4 {
		t.Fatalf("errors %+v", rep.Errors)
	}
}

// TestDuration: a timed run ends on time, and requests cut off by its end
// are not counted as errors.
func TestDuration(t *testing.T) {
	s := startTestServer(t, okResponse("hi"))
	start := time.Now()
	var calls, finals atomic.Int64
	rep := run(t, Config{URL: "http://" + s.addr + "/", Connections: 4, Duration: 300 * time.Millisecond,
		ProgressInterval: 50 * time.Millisecond, Progress: func(p Progress) {
			calls.Add(1)
			if p.Final {
				finals.Add(1)
				if p.Fraction != 1 {
					t.Errorf("final fraction %v", p.Fraction)
				}
			}
		}})
	// What this catches is a run that does not stop at its duration;
	// the slack is for a loaded machine under the race detector.
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("run took %v", el)
	}
	if rep.Requests == 0 || rep.Errors.Total() != 0 {
		t.Errorf("report:\n%s", rep)
	}
	if calls.Load() < 3 || finals.Load() != 1 {
		t.Errorf("progress called %d times, %d final", calls.Load(), finals.Load())
	}
	if d := rep.Elapsed; d < 250*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("elapsed %v", d)
	}
}

// TestSchedule: the connections' timetables (due) together send one request
// every 1/rate seconds, rate × duration of them in a run, none twice. The
// run's start is passed in: no clock.
func TestSchedule(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, tc := range []struct {
		conns int
		rate  float64
	}{{1, 10}, {4, 200}, {3, 1000}, {7, 49}} {
		var times []time.Duration
		for id := range tc.conns {
			for k := 0; ; k++ {
				at := due(start, id, k, tc.conns, tc.rate)
				if !at.Before(start.Add(time.Second)) {
					break
				}
				times = append(times, at.Sub(start))
			}
		}
		if len(times) != int(tc.rate) {
			t.Errorf("%d connections at %v/s: %d requests due in 1s, want %v", tc.conns, tc.rate, len(times), tc.rate)
			continue
		}
		slices.Sort(times)
		gap := time.Duration(float64(time.Second) / tc.rate)
		for i := 1; i < len(times); i++ {
			if d := times[i] - times[i-1]; d < gap-time.Microsecond || d > gap+time.Microsecond {
				t.Errorf("%d connections at %v/s: requests %d and %d due %v apart, want %v", tc.conns, tc.rate, i-1, i, d, gap)
				break
			}
		}
	}
}

// TestProgressFraction: a run's progress at a given time (passed in, not
// read), by duration, by requests, and final.
func TestProgressFraction(t *testing.T) {
	start := time.Unix(1000, 0)
	r := &runner{cfg: Config{Duration: 10 * time.Second}, start: start, workers: []*worker{{}}}
	if p := r.progress(false, start.Add(2500*time.Millisecond)); p.Fraction != 0.25 || p.Elapsed != 2500*time.Millisecond {
		t.Errorf("a quarter of the duration: %+v", p)
	}
	if p := r.progress(false, start.Add(time.Minute)); p.Fraction != 1 {
		t.Errorf("past the duration: %+v", p)
	}
	r = &runner{cfg: Config{Requests: 8}, start: start, workers: []*worker{{}, {}}}
	r.workers[0].responses.Store(3)
	r.workers[1].failures.Store(1)
	if p := r.progress(false, start.Add(time.Hour)); p.Fraction != 0.5 || p.Responses != 3 || p.Errors != 1 {
		t.Errorf("half the requests: %+v", p)
	}
	if p := r.progress(true, start); p.Fraction != 1 || !p.Final {
		t.Errorf("final: %+v", p)
	}
}

// TestOpenLoop: at a constant rate the run sends no more than its
// timetable (TestSchedule checks the timetable itself); and against a
// server slower than the schedule, latency is measured from the scheduled
// time, so it grows with the queue instead of staying at the service time
// as a closed loop would report. The bounds hold however slow the machine
// is: a slow machine sends fewer requests, and makes both loops slower.
func TestOpenLoop(t *testing.T) {
	s := startTestServer(t, okResponse("x"))
	rep := run(t, Config{URL: "http://" + s.addr + "/", Connections: 4, Rate: 200, Duration: time.Second})
	if rep.Requests == 0 || rep.Requests > 200 {
		t.Errorf("%d responses at 200/s for 1s; want some, and at most 200", rep.Requests)
	}

	const service = 20 * time.Millisecond
	slow := startTestServer(t, func(n int64, w *bufio.Writer) bool {
		time.Sleep(service)
		return okResponse("x")(n, w)
	})
	closed := run(t, Config{URL: "http://" + slow.addr + "/", Connections: 1, Requests: 20})
	open := run(t, Config{URL: "http://" + slow.addr + "/", Connections: 1, Requests: 20, Rate: 200}) // one every 5ms
	// The 20th request was due at 95ms and is answered at 400ms at the
	// earliest; the 10th at 45ms and 200ms.
	if open.Latency.Max < 250*time.Millisecond || open.Latency.P50 < 4*service {
		t.Errorf("open loop latency not corrected: %+v", open.Latency)
	}
	// A closed loop reports the service time: less than the open loop's
	// queueing, whatever the machine's speed.
	if closed.Latency.P50 >= open.Latency.P50 {
		t.Errorf("closed loop median latency %v, not below the open loop's %v", closed.Latency.P50, open.Latency.P50)
	}
}

// TestReportForms: the text report names every figure; JSON round-trips.
func TestReportForms(t *testing.T) {
	s := startTestServer(t, okResponse("hello"))
	rep := run(t, Config{URL: "http://" + s.addr + "/", Requests: 10})
	text := rep.String()
	for _, w := range []string{"requests   10", "p50", "p99.99", "max", "200: 10", "errors     0"} {
		if !strings.Contains(text, w) {
			t.Errorf("text report lacks %q:\n%s", w, text)
		}
	}
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil || back.Requests != 10 || back.Latency.P50 != rep.Latency.P50 || back.StatusCodes[200] != 10 {
		t.Errorf("JSON round trip: %v\n%s", err, js)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "https://example.com/"},
		{URL: "ftp://x/"},
		{URL: "http:///nohost"},
		{URL: "http://x/", Method: "POST"},
		{URL: "http://x/", Rate: -1},
		{URL: "http://x/", Header: map[string]string{"X": "a\r\nEvil: 1"}},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
