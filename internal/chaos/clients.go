package chaos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"saturn/apps/loadgen"
)

// Outcome classifies one request.
type Outcome int

const (
	OK          Outcome = iota // the whole, right body
	Refused                    // the connection was refused
	Unreachable                // no route: the link was down (usertcp: netproc's TUN device died with it)
	Reset                      // the connection was reset or closed before the whole response
	Truncated                  // the body ended before its length, and the client was told
	Hung                       // no answer within the hang bound: a broken promise
	Corrupt                    // a complete response with the wrong bytes: a broken promise
	Other                      // any other error
	numOutcomes
)

func (o Outcome) String() string {
	return [...]string{"ok", "refused", "unreachable", "reset", "truncated", "hung", "corrupt", "other"}[o]
}

// Clean reports whether o keeps the promises (success or a clean error).
func (o Outcome) Clean() bool { return o != Hung && o != Corrupt }

// event is one request's result, with when it started.
type event struct {
	start, end time.Time
	outcome    Outcome
	path       string
	err        string
	client     string
}

// recorder collects events from every client, and the load generator's
// failures as its progress reports them.
type recorder struct {
	mu         sync.Mutex
	events     []event
	loadErrs   []loadError
	loadFailed int64 // the load generator's failures reported so far
}

// loadError is failures of the load generator, seen by at.
type loadError struct {
	at time.Time
	n  int
}

// loadProgress is the load generator's progress callback (one goroutine).
func (r *recorder) loadProgress(p loadgen.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.Errors > r.loadFailed {
		r.loadErrs = append(r.loadErrs, loadError{at: time.Now(), n: int(p.Errors - r.loadFailed)})
		r.loadFailed = p.Errors
	}
}

func (r *recorder) loadErrors() []loadError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.loadErrs)
}

func (r *recorder) add(e event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

// classify maps a client error to an outcome.
func classify(err error) Outcome {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return Unreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
		return Reset
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Truncated
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT), isTimeout(err):
		return Hung
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "connection reset"), strings.Contains(s, "server closed idle connection"),
		strings.Contains(s, "EOF"):
		return Reset
	case strings.Contains(s, "connection refused"):
		return Refused
	}
	return Other
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// goClient fetches random files with Go's HTTP client until ctx ends, half
// the time on a fresh connection (always, when fresh), and checks every
// body against its sum.
func goClient(ctx context.Context, name string, o Options, seed uint64, fresh bool, rec *recorder) {
	base, files, hang := o.Base, o.Files, o.Hang
	rng := rand.New(rand.NewPCG(seed, 7))
	paths := sortedPaths(files)
	keep := &http.Transport{MaxIdleConnsPerHost: 1, ResponseHeaderTimeout: hang, DialContext: o.Dial}
	perRequest := &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: hang, DialContext: o.Dial}
	defer keep.CloseIdleConnections()
	for ctx.Err() == nil {
		path := paths[rng.IntN(len(paths))]
		tr := keep
		if fresh || rng.IntN(2) == 0 {
			tr = perRequest
		}
		start := time.Now()
		out, err := fetch(ctx, &http.Client{Transport: tr, Timeout: hang}, base+path, files[path])
		if ctx.Err() != nil && out != OK {
			return // cut off by the end of the run, not by a kill
		}
		e := event{start: start, end: time.Now(), outcome: out, path: path, client: name}
		if err != nil {
			e.err = err.Error()
		}
		rec.add(e)
		if out != OK {
			keep.CloseIdleConnections()
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func fetch(ctx context.Context, c *http.Client, url string, sum [32]byte) (Outcome, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return classify(err), err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return Other, fmt.Errorf("status %d", resp.StatusCode)
	}
	h := sha256.New()
	if _, err := io.Copy(h, resp.Body); err != nil {
		return classify(err), err
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		return Corrupt, fmt.Errorf("%s: %d bytes with the wrong checksum", url, resp.ContentLength)
	}
	return OK, nil
}

// curlClient does the same with curl, which checks lengths on its own, and
// classifies its exit codes.
func curlClient(ctx context.Context, name string, o Options, seed uint64, rec *recorder) {
	base, files, hang := o.Base, o.Files, o.Hang
	rng := rand.New(rand.NewPCG(seed, 9))
	paths := sortedPaths(files)
	for ctx.Err() == nil {
		path := paths[rng.IntN(len(paths))]
		start := time.Now()
		argv := append(slices.Clone(o.Prefix), "curl", "-sS", "--max-time", fmt.Sprint(int(hang.Seconds())), base+path)
		cmd := exec.Command(argv[0], argv[1:]...)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		err := cmd.Run()
		if ctx.Err() != nil {
			return
		}
		e := event{start: start, end: time.Now(), path: path, client: name}
		var ee *exec.ExitError
		switch {
		case err == nil:
			if sha256.Sum256(out.Bytes()) != files[path] {
				e.outcome, e.err = Corrupt, fmt.Sprintf("curl: %d bytes with the wrong checksum", out.Len())
			}
		case errors.As(err, &ee):
			e.err = strings.TrimSpace(stderr.String())
			switch ee.ExitCode() {
			case 7:
				e.outcome = Refused // or no route: curl tells them apart only in words
			case 52, 56, 55:
				e.outcome = Reset // empty reply, receive or send failure
			case 18:
				e.outcome = Truncated // curl saw the body end short
			case 28:
				e.outcome = Hung
			default:
				e.outcome = Other
			}
		default:
			e.outcome, e.err = Other, err.Error()
		}
		rec.add(e)
		if e.outcome != OK {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func sortedPaths(files map[string][32]byte) []string {
	var ps []string
	for p := range files {
		ps = append(ps, p)
	}
	for i := range ps { // insertion sort: a handful of paths
		for j := i; j > 0 && ps[j] < ps[j-1]; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
	return ps
}

func sumHash() interface {
	io.Writer
	Sum([]byte) []byte
} {
	return sha256.New()
}
