package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// DialFunc opens a connection, as net.Dialer.DialContext does. On saturn's
// stack it is appproc's dialer (an active open through netproc); nil means
// the kernel's sockets.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config describes a load run.
type Config struct {
	// URL is the target, "http://host[:port]/path[?query]". Only plain
	// HTTP: TLS is out of scope.
	URL string
	// Dial opens connections; nil means net.Dialer.DialContext.
	Dial DialFunc
	// Connections is the number of keep-alive connections, each with one
	// request outstanding at a time. Default 1.
	Connections int
	// Duration ends the run after this long; Requests ends it after that
	// many requests. With both, whichever comes first; with neither, the
	// run lasts DefaultDuration.
	Duration time.Duration
	Requests int64
	// Rate, when positive, makes the run open-loop: requests are scheduled
	// at Rate per second in total, spread evenly over the connections, and
	// each latency is measured from the request's scheduled time, not from
	// when it could be sent (the coordinated-omission correction of wrk2).
	// Zero is closed-loop, like wrk: each connection sends its next request
	// when the previous response ends.
	Rate float64
	// Timeout bounds connecting and each request's wait for its whole
	// response. Default 10s.
	Timeout time.Duration
	// Method is GET (the default) or HEAD.
	Method string
	// Header adds request header fields (Host and User-Agent are set
	// unless given here).
	Header map[string]string

	// Progress, when set, is called from one goroutine every
	// ProgressInterval (default 200ms) and once at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Progress is a snapshot of a run in progress, for a progress bar.
type Progress struct {
	Elapsed   time.Duration
	Responses int64   // complete responses so far
	Errors    int64   // failed requests so far (status errors included)
	Rate      float64 // responses per second since the last call (over the run in the first and last)
	Fraction  float64 // of the run done, 0..1, by time or count
	Final     bool    // the last call
}

// DefaultDuration is the length of a run with neither Duration nor Requests.
const DefaultDuration = 10 * time.Second

// target is a parsed URL and the request bytes every connection sends.
type target struct {
	addr    string // host:port to dial
	request []byte
	head    bool
}

func (c *Config) normalize() (target, error) {
	var t target
	if c.Connections <= 0 {
		c.Connections = 1
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		c.Duration = DefaultDuration
	}
	if c.Rate < 0 {
		return t, errors.New("loadgen: negative rate")
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 200 * time.Millisecond
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	switch c.Method {
	case "", "GET":
		c.Method = "GET"
	case "HEAD":
		t.head = true
	default:
		return t, fmt.Errorf("loadgen: method %q: only GET and HEAD", c.Method)
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return t, fmt.Errorf("loadgen: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return t, fmt.Errorf("loadgen: %q: want an http:// URL with a host", c.URL)
	}
	t.addr = u.Host
	if u.Port() == "" {
		t.addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var b strings.Builder
	b.WriteString(c.Method + " " + u.RequestURI() + " HTTP/1.1\r\n")
	if !hasKey(c.Header, "Host") {
		b.WriteString("Host: " + u.Host + "\r\n")
	}
	if !hasKey(c.Header, "User-Agent") {
		b.WriteString("User-Agent: saturn-loadgen\r\n")
	}
	for k, v := range c.Header {
		if strings.ContainsAny(k+v, "\r\n") {
			return t, fmt.Errorf("loadgen: header %q holds a line break", k)
		}
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("\r\n")
	t.request = []byte(b.String())
	return t, nil
}

func hasKey(h map[string]string, key string) bool {
	for k := range h {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}
