package loadgen_test

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"testing/fstest"

	"saturn/apps/loadgen"
	"saturn/apps/webserver"
)

// lineCounter counts the access log's lines: one per response the web
// server sent.
type lineCounter struct {
	mu sync.Mutex
	n  int64
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.n += int64(bytes.Count(p, []byte("\n")))
	c.mu.Unlock()
	return len(p), nil
}

// TestAgainstWebServer drives saturn's web server through a dialer (as on
// saturn's stack): the responses the load generator counts are exactly the
// ones the server logged, in both loops.
func TestAgainstWebServer(t *testing.T) {
	var log lineCounter
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := webserver.New(webserver.Config{
		Root:      fstest.MapFS{"f.txt": {Data: bytes.Repeat([]byte("x"), 5000)}},
		AccessLog: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	var dials sync.Map
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Store(addr, true)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	for _, cfg := range []loadgen.Config{
		{Connections: 16, Requests: 3000},
		{Connections: 4, Requests: 400, Rate: 2000},
		{Connections: 4, Requests: 300, Method: "HEAD"},
	} {
		log.mu.Lock()
		log.n = 0
		log.mu.Unlock()
		cfg.URL = "http://" + ln.Addr().String() + "/f.txt"
		cfg.Dial = dial
		rep, err := loadgen.Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		log.mu.Lock()
		logged := log.n
		log.mu.Unlock()
		if rep.Requests != cfg.Requests || rep.Errors.Total() != 0 || rep.StatusCodes[200] != cfg.Requests || logged != cfg.Requests {
			t.Errorf("%+v: responses %d, errors %+v, server logged %d\n%s", cfg, rep.Requests, rep.Errors, logged, rep)
		}
	}
	if _, ok := dials.Load(ln.Addr().String()); !ok {
		t.Error("the dial function was not used")
	}
}
