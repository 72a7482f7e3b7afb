package loadgen

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// readBufSize is each connection's read buffer: response heads must fit in
// it; bodies pass through it in pieces of this size.
const readBufSize = 64 << 10

// latencyBatch is how many latencies a connection collects before adding
// them to the shared histogram under its lock: one histogram for the run
// instead of one per connection (each is about 200 KiB), without a lock
// per request.
const latencyBatch = 256

// connectBackoff is the pause after a failed connect, so that a run
// against a dead server counts errors instead of spinning.
const connectBackoff = 10 * time.Millisecond

// aLongTimeAgo, set as a deadline, makes blocked I/O return at once.
var aLongTimeAgo = time.Unix(1, 0)

// Run runs the load described by cfg and reports on it. It returns early,
// with the report so far, when ctx ends. The error is for a configuration
// that cannot run; failed requests are counted in the report, not returned.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	t, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, t: t, hist: newHistogram(), timeline: newTimeline(), start: time.Now()}
	r.remaining.Store(cfg.Requests)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Duration > 0 {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithDeadline(ctx, r.start.Add(cfg.Duration))
		defer cancelT()
	}

	r.workers = make([]*worker, cfg.Connections)
	var wg sync.WaitGroup
	for i := range r.workers {
		w := &worker{r: r, id: i, status: map[int]int64{}}
		r.workers[i] = w
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx) }()
	}
	progressDone := make(chan struct{})
	if cfg.Progress != nil {
		go r.reportProgress(ctx, progressDone)
	} else {
		close(progressDone)
	}
	wg.Wait()
	elapsed := time.Since(r.start)
	if cfg.Duration > 0 {
		elapsed = min(elapsed, cfg.Duration)
	}
	cancel()
	<-progressDone

	rep := &Report{
		URL:         cfg.URL,
		Connections: cfg.Connections,
		Rate:        cfg.Rate,
		Elapsed:     elapsed,
		StatusCodes: map[int]int64{},
		Latency:     summarize(r.hist),
		// The workers have ended: nothing adds to these any more.
		Distribution: distribution(r.hist),
		TimelineStep: r.timeline.step,
		Timeline:     r.timeline.report(elapsed),
	}
	for _, w := range r.workers {
		rep.Requests += w.responses.Load()
		rep.Bytes += w.bytes.Load()
		rep.Errors.add(w.errs)
		for code, n := range w.status {
			rep.StatusCodes[code] += n
		}
	}
	if s := elapsed.Seconds(); s > 0 {
		rep.RequestsPerSec = float64(rep.Requests) / s
		rep.BytesPerSec = float64(rep.Bytes) / s
	}
	if cfg.Progress != nil {
		cfg.Progress(r.progress(true, time.Now()))
	}
	return rep, nil
}

// runner is one run's shared state.
type runner struct {
	cfg       Config
	t         target
	start     time.Time
	remaining atomic.Int64 // requests not yet claimed, when cfg.Requests > 0
	workers   []*worker

	mu       sync.Mutex // guards hist and timeline
	hist     *hdrhistogram.Histogram
	timeline *timeline

	// The progress goroutine's own: the last snapshot, for the rate.
	lastAt        time.Duration
	lastResponses int64
}

// claim takes the right to send one more request.
func (r *runner) claim() bool {
	if r.cfg.Requests <= 0 {
		return true
	}
	return r.remaining.Add(-1) >= 0
}

func (r *runner) record(batch []sample) {
	r.mu.Lock()
	for _, s := range batch {
		if s.latency >= 0 {
			r.hist.RecordValue(s.latency) // values are clamped to the histogram's range
		}
		r.timeline.add(s)
	}
	r.mu.Unlock()
}

// progress is the run's progress at now.
func (r *runner) progress(final bool, now time.Time) Progress {
	p := Progress{Elapsed: now.Sub(r.start), Final: final}
	for _, w := range r.workers {
		p.Responses += w.responses.Load()
		p.Errors += w.failures.Load()
	}
	if d := r.cfg.Duration; d > 0 {
		p.Fraction = min(p.Elapsed.Seconds()/d.Seconds(), 1)
	}
	if n := r.cfg.Requests; n > 0 {
		p.Fraction = max(p.Fraction, min(float64(p.Responses+p.Errors)/float64(n), 1))
	}
	if final {
		p.Fraction = 1
	}
	// The rate since the last snapshot; over the whole run for the first
	// and the last.
	since, n := p.Elapsed-r.lastAt, p.Responses-r.lastResponses
	if final || r.lastAt == 0 {
		since, n = p.Elapsed, p.Responses
	}
	if since > 0 {
		p.Rate = float64(n) / since.Seconds()
	}
	r.lastAt, r.lastResponses = p.Elapsed, p.Responses
	return p
}

func (r *runner) reportProgress(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(r.cfg.ProgressInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.cfg.Progress(r.progress(false, time.Now()))
		}
	}
}

// worker drives one connection (re-dialled whenever it closes). Its
// counters are read by the progress goroutine, so the two it shares are
// atomic; the rest are merged after it ends.
type worker struct {
	r         *runner
	id        int
	responses atomic.Int64
	failures  atomic.Int64
	bytes     atomic.Int64

	errs   Errors
	status map[int]int64
	batch  []sample // outcomes not yet given to the runner

	conn net.Conn
	rr   *respReader
	// deadline is the connection's current deadline. Setting one costs a
	// timer update in Go's runtime on every request; since Timeout is long
	// next to a request, it is moved on only once a quarter of it has
	// passed, so a request still fails within 1.25 Timeouts.
	deadline time.Time
	stop     func() bool // unregisters the context's interruption of conn
}

func (w *worker) run(ctx context.Context) {
	defer w.closeConn()
	defer func() { w.r.record(w.batch) }()
	r := w.r
	var timer *time.Timer
	if r.cfg.Rate > 0 {
		timer = time.NewTimer(time.Hour)
		defer timer.Stop()
	}
	for k := 0; ctx.Err() == nil && r.claim(); k++ {
		var intended time.Time
		if r.cfg.Rate > 0 {
			intended = due(r.start, w.id, k, r.cfg.Connections, r.cfg.Rate)
			if r.cfg.Duration > 0 && !intended.Before(r.start.Add(r.cfg.Duration)) {
				return // due when the run has ended
			}
			if d := time.Until(intended); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		}
		w.request(ctx, intended)
	}
}

// due is when the kth request of connection id is due in an open-loop run
// that started at start. Each of the conns connections carries rate/conns
// requests per second, staggered so that together they send one every
// 1/rate seconds rather than in bursts: request n of the run (n = id +
// k×conns) is due n/rate seconds after the start, computed from n rather
// than by adding intervals, so that rounding does not drift.
func due(start time.Time, id, k, conns int, rate float64) time.Time {
	n := float64(id) + float64(k)*float64(conns)
	return start.Add(time.Duration(n / rate * float64(time.Second)))
}

// request sends one request and reads its response, counting the outcome
// exactly once, unless the run ended while it was in flight (then it is
// not counted at all). intended is the scheduled send time in an
// open-loop run, zero otherwise.
func (w *worker) request(ctx context.Context, intended time.Time) {
	r := w.r
	if w.conn == nil {
		if err := w.dial(ctx); err != nil {
			if ctx.Err() == nil {
				w.fail(kindConnect)
				time.Sleep(connectBackoff)
			}
			return
		}
	}
	start := time.Now()
	if intended.IsZero() {
		intended = start
	}
	if w.deadline.Sub(start) < r.cfg.Timeout*3/4 {
		w.deadline = start.Add(r.cfg.Timeout)
		w.conn.SetDeadline(w.deadline)
		if ctx.Err() != nil {
			return // see dial: the interruption may have been overwritten
		}
	}
	if _, err := w.conn.Write(r.t.request); err != nil {
		w.closeConn()
		if ctx.Err() == nil {
			if errors.Is(err, errDeadline) {
				w.fail(kindTimeout)
			} else {
				w.fail(kindWrite)
			}
		}
		return
	}
	resp, rerr := w.rr.readResponse(r.t.head)
	w.bytes.Store(w.rr.total)
	if rerr != nil {
		w.closeConn()
		if ctx.Err() == nil {
			w.fail(rerr.kind)
		}
		return
	}
	now := time.Now()
	lat := now.Sub(intended).Microseconds()
	w.status[resp.status]++
	w.responses.Add(1)
	failed := resp.status >= 400
	if failed {
		w.errs.Status++
		w.failures.Add(1)
	}
	w.note(sample{at: now.Sub(r.start), latency: max(lat, histMin), failed: failed})
	if resp.close {
		w.closeConn()
	}
}

// note batches an outcome for the runner.
func (w *worker) note(s sample) {
	w.batch = append(w.batch, s)
	if len(w.batch) == latencyBatch {
		w.r.record(w.batch)
		w.batch = w.batch[:0]
	}
}

func (w *worker) fail(k errorKind) {
	w.note(sample{at: time.Since(w.r.start), latency: -1, failed: true})
	switch k {
	case kindConnect:
		w.errs.Connect++
	case kindRead:
		w.errs.Read++
	case kindWrite:
		w.errs.Write++
	case kindTimeout:
		w.errs.Timeout++
	default:
		w.errs.Malformed++
	}
	w.failures.Add(1)
}

func (w *worker) dial(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, w.r.cfg.Timeout)
	defer cancel()
	c, err := w.r.cfg.Dial(dctx, "tcp", w.r.t.addr)
	if err != nil {
		return err
	}
	w.conn = c
	w.deadline = time.Time{}
	if w.rr == nil {
		w.rr = newRespReader(c, readBufSize)
	} else {
		*w.rr = respReader{r: c, buf: w.rr.buf, total: w.rr.total}
	}
	// When the run ends, cut short whatever the connection is blocked on.
	// request re-checks ctx after each SetDeadline, since a deadline set
	// after this fires would undo it.
	w.stop = context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	return nil
}

func (w *worker) closeConn() {
	if w.conn == nil {
		return
	}
	w.stop()
	w.conn.Close()
	w.conn = nil
}
