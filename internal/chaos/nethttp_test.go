package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"saturn/apps/loadgen"
	"saturn/internal/testkit"
	"saturn/proto"
)

// TestNetHTTPGracefulRestart: an app written with plain net/http and
// appproc (examples/httpserver: http.Server on an appproc listener,
// Shutdown on appproc.StopContext) restarted twice with `saturn restart`
// under load, Go clients that keep their connections alive and Go clients
// that open one per request: not one request fails. The old incarnation
// leaves its listener to netproc, so connections queue rather than being
// refused, and finishes what is in flight; Shutdown closes idle keep-alive
// connections cleanly, and a client whose request crossed that close
// retries it, as Go's Transport and browsers do.
//
// A load generator that never retries (loadgen, like wrk) runs beside
// them, and what it loses is logged, not held against the app: net/http
// closes idle connections at once, so a request that was on its way on
// one is lost to such a client (saturn's web server gives those a grace:
// webserver.Config.ShutdownGrace).
func TestNetHTTPGracefulRestart(t *testing.T) {
	bin := testkit.Build(t, "./examples/httpserver")
	port := testkit.FreePort(t)
	in := testkit.NewInstance(t, fmt.Sprintf(`
[netproc]
backend = "kernel"
%s
[diskproc]
%s`, policy, policy))
	in.Start()
	t.Cleanup(func() { in.Run("supervisor", "stop") })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	in.MustRun("attach", "--name", "hello", "--", bin, "--listen", addr)
	url := "http://" + addr + "/"

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loadDone := make(chan *loadgen.Report, 1)
	go func() {
		r, _ := loadgen.Run(ctx, loadgen.Config{URL: url, Connections: 4, Duration: time.Hour})
		loadDone <- r
	}()
	var requests, failed atomic.Int64
	var firstErrs sync.Map
	var wg sync.WaitGroup
	for i := range 8 {
		tr := &http.Transport{DisableKeepAlives: i%2 == 1, MaxIdleConnsPerHost: 1}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			for ctx.Err() == nil {
				err := helloOnce(ctx, client, url)
				if ctx.Err() != nil {
					return
				}
				requests.Add(1)
				if err != nil {
					failed.Add(1)
					kind := "keep-alive"
					if i%2 == 1 {
						kind = "a connection per request"
					}
					firstErrs.Store(kind+": "+err.Error(), true)
				}
			}
		}()
	}

	for i := range 2 {
		// Deliberate: the load runs on this incarnation a while, with
		// requests in flight, before the restart (the pause is the test).
		time.Sleep(700 * time.Millisecond)
		before := testkit.Component(in.Status(), "hello")
		in.MustRun("restart", "hello")
		if _, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
			c := testkit.Component(st, "hello")
			return c.State == proto.StateRunning && c.PID != before.PID && c.PID != 0
		}); !ok {
			t.Fatalf("restart %d: hello not running again", i+1)
		}
	}
	time.Sleep(500 * time.Millisecond) // deliberate: load on the last incarnation too
	cancel()
	wg.Wait()
	rep := <-loadDone

	t.Logf("Go clients: %d requests, %d failed; load generator (no retries): %d responses, errors %+v",
		requests.Load(), failed.Load(), rep.Requests, rep.Errors)
	if requests.Load() == 0 || rep.Requests == 0 {
		t.Fatal("no load got through")
	}
	if failed.Load() > 0 {
		var errs []string
		firstErrs.Range(func(k, _ any) bool { errs = append(errs, k.(string)); return len(errs) < 5 })
		t.Errorf("%d of %d requests failed across two graceful restarts: %s", failed.Load(), requests.Load(), strings.Join(errs, "; "))
	}
	if rep.Errors.Connect > 0 {
		t.Errorf("the load generator could not connect %d times: a listener was not kept", rep.Errors.Connect)
	}
}

func helloOnce(ctx context.Context, c *http.Client, url string) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && (resp.StatusCode != 200 || !strings.HasPrefix(string(b), "hello from ")) {
		err = fmt.Errorf("status %d, body %q", resp.StatusCode, b)
	}
	return err
}
