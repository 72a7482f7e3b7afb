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
	Victims []string            // components to kill, in turn (shuffled per cycle)
	Kills   int                 // total kills
	Gap     [2]time.Duration    // random pause between kills: [min, max)
	Recover time.Duration       // each victim must run again within this
	Hang    time.Duration       // a request unanswered this long is a hang
	Clients int                 // Go checking clients (plus one curl client when curl exists)
	Load    int                 // load generator connections (0: none)
	Seed    uint64
	// Dial opens every connection of the Go clients, the probes and the
	// load generator (nil: this process's own sockets); Prefix goes in
	// front of curl (ip netns exec NS). With the usertcp backend the web
	// server is reached from inside saturn's namespace: see NetnsDialer.
	Dial   loadgen.DialFunc
	Prefix []string
	// NetprocInfo, when set, is what status must show of netproc after
	// each of its restarts (its backend, netns and address).
	NetprocInfo map[string]string
}

// Kill is one kill and what followed.
type Kill struct {
	Victim   string
	At       time.Time
	Recovery time.Duration // from the kill to the first request served again
	Back     time.Duration // from the kill to the victim running again in status
	Failed   int           // requests that failed (cleanly) between the kill and recovery
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
	var wg sync.WaitGroup
	for i := range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			goClient(ctx, fmt.Sprintf("go%d", i), o, o.Seed+uint64(i), rec)
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
			r, err := loadgen.Run(ctx, loadgen.Config{URL: o.Base + "/files/1k.bin", Connections: o.Load, Duration: 24 * time.Hour, Timeout: o.Hang, Dial: o.Dial})
			if err != nil {
				t.Logf("load generator: %v", err)
			}
			loadDone <- r
		}()
	}

	rep := &Report{Outcomes: map[string][numOutcomes]int{}}
	rng := rand.New(rand.NewPCG(o.Seed, 1))
	var order []string
	restarts := map[string]int{}
	st := in.Status()
	for _, v := range o.Victims {
		restarts[v] = testkit.Component(st, v).Restarts
	}
	for k := 0; k < o.Kills; k++ {
		if len(order) == 0 {
			order = slices.Clone(o.Victims)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		victim := order[0]
		order = order[1:]
		time.Sleep(o.Gap[0] + time.Duration(rng.Int64N(int64(o.Gap[1]-o.Gap[0])+1)))
		kill := Kill{Victim: victim, At: time.Now()}
		in.MustRun("kill", victim)
		restarts[victim]++
		want := restarts[victim]
		if _, ok := in.WaitFor(o.Recover, func(st *proto.StatusReply) bool {
			c := testkit.Component(st, victim)
			return c.State == proto.StateRunning && c.Restarts == want
		}); !ok {
			rep.Broken = append(rep.Broken, fmt.Sprintf("kill %d: %s not running again within %v", k+1, victim, o.Recover))
			break
		}
		kill.Back = time.Since(kill.At)
		if victim == "netproc" {
			rep.Broken = append(rep.Broken, checkInfo(in, k+1, o.NetprocInfo)...)
		}
		served, ok := probe(o, kill.At, o.Recover)
		if !ok {
			rep.Broken = append(rep.Broken, fmt.Sprintf("kill %d (%s): nothing served within %v", k+1, victim, o.Recover))
			break
		}
		kill.Recovery = served.Sub(kill.At)
		rep.Kills = append(rep.Kills, kill)
		t.Logf("kill %d: %s back in %v, serving after %v", k+1, victim, kill.Back.Round(time.Millisecond), kill.Recovery.Round(time.Millisecond))
	}
	time.Sleep(o.Gap[0]) // let the last recovery carry traffic
	cancel()
	wg.Wait()
	if o.Load > 0 {
		rep.Load = <-loadDone
	}

	// Count failures between each kill and its recovery, and check every
	// promise about single requests.
	events := rec.snapshot()
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
		until := k.At.Add(k.Recovery)
		for _, e := range events {
			if e.outcome != OK && !e.end.Before(k.At) && !e.start.After(until) {
				k.Failed++
			}
		}
	}
	// The restart counters equal the kills.
	st = in.Status()
	for _, v := range o.Victims {
		if got := testkit.Component(st, v).Restarts; got != restarts[v] {
			rep.Broken = append(rep.Broken, fmt.Sprintf("%s: status says %d restarts, we killed it to %d", v, got, restarts[v]))
		}
	}
	for _, b := range rep.Broken {
		t.Error(b)
	}
	return rep
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
	fmt.Fprintln(&b, "| component | kills | median recovery | worst recovery | median back in status | failed requests per kill |")
	fmt.Fprintln(&b, "| --- | --- | --- | --- | --- | --- |")
	byVictim := map[string][]Kill{}
	var names []string
	for _, k := range r.Kills {
		if byVictim[k.Victim] == nil {
			names = append(names, k.Victim)
		}
		byVictim[k.Victim] = append(byVictim[k.Victim], k)
	}
	slices.Sort(names)
	for _, n := range names {
		ks := byVictim[n]
		var rec, back []time.Duration
		failed := 0
		for _, k := range ks {
			rec = append(rec, k.Recovery)
			back = append(back, k.Back)
			failed += k.Failed
		}
		slices.Sort(rec)
		slices.Sort(back)
		fmt.Fprintf(&b, "| %s | %d | %v | %v | %v | %.1f |\n", n, len(ks), median(rec).Round(time.Millisecond),
			rec[len(rec)-1].Round(time.Millisecond), median(back).Round(time.Millisecond), float64(failed)/float64(len(ks)))
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
