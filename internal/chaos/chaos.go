package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"saturn/apps/loadgen"
	"saturn/internal/testkit"
	"saturn/proto"
)

// Options shape a run.
type Options struct {
	Base    string              // the web server's URL, "http://host:port"
	Files   map[string][32]byte // paths under Base and their SHA-256
	Victims []string            // components to kill (SIGKILL), in turn (shuffled per cycle)
	// Graceful are components restarted with `saturn restart` (SIGTERM,
	// then the next incarnation), in turn with the kills.
	Graceful []string
	Kills    int              // total events, kills and graceful restarts
	Gap      [2]time.Duration // random pause between kills: [min, max)
	Recover  time.Duration    // each victim must run again within this
	Hang     time.Duration    // a request unanswered this long is a hang
	Clients  int              // Go checking clients (plus one curl client when curl exists)
	Fresh    int              // Go checking clients that open a new connection per request
	Load     int              // load generator connections (0: none)
	Seed     uint64
	// Dial opens every connection of the Go clients, the probes and the
	// load generator (nil: this process's own sockets); Prefix goes in
	// front of curl (ip netns exec NS). With the usertcp backend the web
	// server is reached from inside saturn's namespace: see NetnsDialer.
	Dial   loadgen.DialFunc
	Prefix []string
	// NetprocInfo, when set, is what status must show of netproc after
	// each of its restarts (its backend, netns and address).
	NetprocInfo map[string]string
	// Lossless, when set, says which events must fail no request at all,
	// of the checking clients or of the load generator: a failed request
	// after one of them is a broken promise.
	Lossless func(Kill) bool
}

// Kill is one event, a kill or a graceful restart, and what followed.
type Kill struct {
	Victim   string
	Graceful bool // `saturn restart`, not `saturn kill`
	At       time.Time
	Recovery time.Duration // from the kill to the first request served again
	Back     time.Duration // from the kill to the victim running again in status
	// Failed counts the checking clients' requests that failed (cleanly)
	// from the kill to the next event (or the end of the run), LoadFailed
	// the load generator's: every failure is counted against the event
	// it followed.
	Failed, LoadFailed int
	failures           []string // the first few, for the report of a lossless event
}

// Event names the event: the victim for a kill, "restart VICTIM" for a
// graceful restart.
func (k Kill) Event() string {
	if k.Graceful {
		return "restart " + k.Victim
	}
	return k.Victim
}

// Report is a run's result.
type Report struct {
	Kills    []Kill
	Outcomes map[string][numOutcomes]int // per client
	Load     *loadgen.Report
	Broken   []string // broken promises, one line each
}

// Run drives the instance in. It fails t on any broken promise.
func Run(t testing.TB, in *testkit.Instance, o Options) *Report {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &recorder{}
	wait := startTraffic(ctx, t, o, rec)

	rep := &Report{Outcomes: map[string][numOutcomes]int{}}
	restarts := rep.killInTurn(t, in, o)
	time.Sleep(o.Gap[0]) // let the last recovery carry traffic
	cancel()
	runEnd := time.Now()
	rep.Load = wait()

	rep.judge(rec.snapshot(), rec.loadErrors(), runEnd, o.Lossless)
	rep.Broken = append(rep.Broken, checkRestarts(in, o.Victims, restarts)...)
	for _, b := range rep.Broken {
		t.Error(b)
	}
	return rep
}

// startTraffic starts the checking clients (o.Clients and o.Fresh in Go,
// and one curl client when curl exists) and the load generator (when
// o.Load), which record into rec until ctx ends. wait waits for them all, after ctx has
// ended, and returns the load generator's report (nil without one).
func startTraffic(ctx context.Context, t testing.TB, o Options, rec *recorder) (wait func() *loadgen.Report) {
	var wg sync.WaitGroup
	for i := range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			goClient(ctx, fmt.Sprintf("go%d", i), o, o.Seed+uint64(i), false, rec)
		}()
	}
	for i := range o.Fresh {
		wg.Add(1)
		go func() {
			defer wg.Done()
			goClient(ctx, fmt.Sprintf("fresh%d", i), o, o.Seed+uint64(50+i), true, rec)
		}()
	}
	if _, err := exec.LookPath("curl"); err == nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			curlClient(ctx, "curl", o, o.Seed+99, rec)
		}()
	}
	loadDone := make(chan *loadgen.Report, 1)
	if o.Load > 0 {
		go func() {
			// Its failures are timed by its progress reports, every
			// 10 ms, so that each is counted against the event it
			// followed.
			r, err := loadgen.Run(ctx, loadgen.Config{URL: o.Base + "/files/1k.bin", Connections: o.Load, Duration: 24 * time.Hour, Timeout: o.Hang, Dial: o.Dial,
				Progress: rec.loadProgress, ProgressInterval: 10 * time.Millisecond})
			if err != nil {
				t.Logf("load generator: %v", err)
			}
			loadDone <- r
		}()
	}
	return func() *loadgen.Report {
		wg.Wait()
		if o.Load > 0 {
			return <-loadDone
		}
		return nil
	}
}

// killInTurn makes o.Kills events, each after a random gap: kills of the
// victims and graceful restarts of o.Graceful, in an order shuffled per
// cycle, recording each kill in rep.Kills and what
// went wrong in rep.Broken; it stops at the first kill that the instance
// does not recover from. It returns the restart count it expects in status
// per victim.
func (rep *Report) killInTurn(t testing.TB, in *testkit.Instance, o Options) map[string]int {
	rng := rand.New(rand.NewPCG(o.Seed, 1))
	var events, order []Kill
	restarts := map[string]int{}
	st := in.Status()
	for _, v := range o.Victims {
		restarts[v] = testkit.Component(st, v).Restarts
		events = append(events, Kill{Victim: v})
	}
	for _, v := range o.Graceful {
		restarts[v] = testkit.Component(st, v).Restarts
		events = append(events, Kill{Victim: v, Graceful: true})
	}
	for k := 0; k < o.Kills; k++ {
		if len(order) == 0 {
			order = slices.Clone(events)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		kill := order[0]
		order = order[1:]
		victim := kill.Victim
		time.Sleep(o.Gap[0] + time.Duration(rng.Int64N(int64(o.Gap[1]-o.Gap[0])+1)))
		kill.At = time.Now()
		if kill.Graceful {
			in.MustRun("restart", victim) // returns once the next incarnation runs
		} else {
			in.MustRun("kill", victim)
		}
		restarts[victim]++
		broken, ok := recoverFrom(in, o, k+1, &kill, restarts[victim])
		rep.Broken = append(rep.Broken, broken...)
		if !ok {
			break
		}
		rep.Kills = append(rep.Kills, kill)
		t.Logf("event %d: %s back in %v, serving after %v", k+1, kill.Event(), kill.Back.Round(time.Millisecond), kill.Recovery.Round(time.Millisecond))
	}
	return restarts
}

// recoverFrom waits for the instance to recover from kill number n: the
// victim running again with restarts restarts (kill.Back), then a request
// served (kill.Recovery). It returns the promises broken meanwhile, and
// false if the instance did not recover within o.Recover.
func recoverFrom(in *testkit.Instance, o Options, n int, kill *Kill, restarts int) (broken []string, ok bool) {
	victim := kill.Victim
	if _, ok := in.WaitFor(o.Recover, func(st *proto.StatusReply) bool {
		c := testkit.Component(st, victim)
		return c.State == proto.StateRunning && c.Restarts == restarts
	}); !ok {
		return []string{fmt.Sprintf("kill %d: %s not running again within %v", n, victim, o.Recover)}, false
	}
	kill.Back = time.Since(kill.At)
	if victim == "netproc" && !kill.Graceful {
		broken = checkInfo(in, n, o.NetprocInfo)
	}
	served, ok := probe(o, kill.At, o.Recover)
	if !ok {
		return append(broken, fmt.Sprintf("kill %d (%s): nothing served within %v", n, victim, o.Recover)), false
	}
	kill.Recovery = served.Sub(kill.At)
	return broken, true
}

// judge counts the outcomes of the clients' requests per client, reports
// every request that broke a promise, and counts the failures that
// followed each event until the next one (or end, the end of the run):
// the checking clients' by when each request ended, the load generator's
// by when it reported them (loadErrs). An event that lossless says must
// fail nothing and did is a broken promise.
func (rep *Report) judge(events []event, loadErrs []loadError, end time.Time, lossless func(Kill) bool) {
	for _, e := range events {
		c := rep.Outcomes[e.client]
		c[e.outcome]++
		rep.Outcomes[e.client] = c
		if !e.outcome.Clean() {
			rep.Broken = append(rep.Broken, fmt.Sprintf("%s %s at %s: %s (%s)", e.client, e.path, e.start.Format("15:04:05.000"), e.outcome, e.err))
		}
	}
	for i := range rep.Kills {
		k := &rep.Kills[i]
		until := end
		if i+1 < len(rep.Kills) {
			until = rep.Kills[i+1].At
		}
		for _, e := range events {
			if e.outcome != OK && !e.end.Before(k.At) && e.end.Before(until) {
				k.Failed++
				if len(k.failures) < 5 {
					k.failures = append(k.failures, fmt.Sprintf("%s %s at %s: %s (%s)", e.client, e.path, e.end.Format("15:04:05.000"), e.outcome, e.err))
				}
			}
		}
		for _, le := range loadErrs {
			if !le.at.Before(k.At) && le.at.Before(until) {
				k.LoadFailed += le.n
			}
		}
		if lossless != nil && lossless(*k) && k.Failed+k.LoadFailed > 0 {
			rep.Broken = append(rep.Broken, fmt.Sprintf("%s at %s must lose nothing: %d checking requests and %d of the load generator failed after it; first: %s",
				k.Event(), k.At.Format("15:04:05.000"), k.Failed, k.LoadFailed, strings.Join(k.failures, "; ")))
		}
	}
}

// checkRestarts checks that the restart counters in status equal the
// kills: want, per victim.
func checkRestarts(in *testkit.Instance, victims []string, want map[string]int) []string {
	var broken []string
	st := in.Status()
	for _, v := range victims {
		if got := testkit.Component(st, v).Restarts; got != want[v] {
			broken = append(broken, fmt.Sprintf("%s: status says %d restarts, we killed it to %d", v, got, want[v]))
		}
	}
	return broken
}

// probe fetches a small file on fresh connections until one is served
// whole by a request sent after since, and returns when it was served.
func probe(o Options, since time.Time, within time.Duration) (time.Time, bool) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: o.Dial}, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	sum := o.Files["/files/1k.bin"]
	deadline := since.Add(within)
	for time.Now().Before(deadline) {
		if out, _ := fetch(context.Background(), client, o.Base+"/files/1k.bin", sum); out == OK {
			return time.Now(), true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Time{}, false
}

// checkInfo compares what status shows of netproc with want.
func checkInfo(in *testkit.Instance, kill int, want map[string]string) []string {
	var broken []string
	got := testkit.Component(in.Status(), "netproc").Info
	for k, v := range want {
		if got[k] != v {
			broken = append(broken, fmt.Sprintf("kill %d: netproc's status shows %s=%q after its restart, want %q", kill, k, got[k], v))
		}
	}
	return broken
}

// Table renders the per-component figures.
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintln(&b, "| event | count | median recovery | worst recovery | median back in status | failed requests per event: checking clients | load generator |")
	fmt.Fprintln(&b, "| --- | --- | --- | --- | --- | --- | --- |")
	byVictim := map[string][]Kill{}
	var names []string
	for _, k := range r.Kills {
		if byVictim[k.Event()] == nil {
			names = append(names, k.Event())
		}
		byVictim[k.Event()] = append(byVictim[k.Event()], k)
	}
	slices.Sort(names)
	for _, n := range names {
		ks := byVictim[n]
		var rec, back []time.Duration
		failed, loadFailed := 0, 0
		for _, k := range ks {
			rec = append(rec, k.Recovery)
			back = append(back, k.Back)
			failed += k.Failed
			loadFailed += k.LoadFailed
		}
		slices.Sort(rec)
		slices.Sort(back)
		fmt.Fprintf(&b, "| %s | %d | %v | %v | %v | %.1f | %.1f |\n", n, len(ks), median(rec).Round(time.Millisecond),
			rec[len(rec)-1].Round(time.Millisecond), median(back).Round(time.Millisecond),
			float64(failed)/float64(len(ks)), float64(loadFailed)/float64(len(ks)))
	}
	fmt.Fprintln(&b)
	for client, c := range r.Outcomes {
		var parts []string
		for o := Outcome(0); o < numOutcomes; o++ {
			if c[o] > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", o, c[o]))
			}
		}
		fmt.Fprintf(&b, "client %s: %s\n", client, strings.Join(parts, ", "))
	}
	if r.Load != nil {
		fmt.Fprintf(&b, "load generator: %d responses (%.0f/s), errors %+v\n", r.Load.Requests, r.Load.RequestsPerSec, r.Load.Errors)
	}
	return b.String()
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)/2]
}

// Sums computes the SHA-256 of every file under root, keyed by URL path.
func Sums(root string) (map[string][32]byte, error) {
	out := map[string][32]byte{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sumHash()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		out["/"+filepath.ToSlash(rel)] = s
		return nil
	})
	return out, err
}
