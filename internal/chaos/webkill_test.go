package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// TestWebKillIdleKeepAlive: a crash of the web app (kill -9) costs only
// the requests in flight on it. Its idle keep-alive connections are closed
// cleanly by netproc when the app's channel is dropped, with a FIN, not a
// RST, so that clients take them for a server closing an idle connection
// and retry; Go's http.Transport does so on its own. On both backends
// (usertcp without and with resume), 16 idle keep-alive clients: after the
// kill each raw client reads end of stream (not a reset), and each Go
// client's next request succeeds, served by the next incarnation.
func TestWebKillIdleKeepAlive(t *testing.T) {
	for _, backend := range []string{"kernel", "usertcp", "usertcp-resume"} {
		t.Run(backend, func(t *testing.T) {
			in, base, dial := webInstance(t, backend)
			const n = 16
			var raws []net.Conn
			var clients []*http.Client
			for range n {
				c, err := dial(context.Background(), "tcp", base[len("http://"):])
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				br := bufio.NewReader(c)
				if err := keepAliveRequest(c, br); err != nil {
					t.Fatalf("raw client: %v", err)
				}
				raws = append(raws, c)
				tr := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 1}
				defer tr.CloseIdleConnections()
				cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
				if err := getOK(cl, base+"/files/1k.bin"); err != nil {
					t.Fatalf("Go client: %v", err)
				}
				clients = append(clients, cl)
			}
			restarts := testkit.Component(in.Status(), "web").Restarts
			in.MustRun("kill", "web")
			var resets, eofs int
			for _, c := range raws {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err := c.Read(make([]byte, 1))
				switch {
				case errors.Is(err, io.EOF):
					eofs++
				case errors.Is(err, syscall.ECONNRESET):
					resets++
				default:
					t.Errorf("an idle connection after the kill: %v, want end of stream", err)
				}
			}
			if resets > 0 {
				t.Errorf("%d of %d idle keep-alive connections were reset when the web app was killed, %d closed cleanly", resets, n, eofs)
			}
			if _, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
				c := testkit.Component(st, "web")
				return c.State == proto.StateRunning && c.Restarts == restarts+1
			}); !ok {
				t.Fatal("web not running again after the kill")
			}
			var wg sync.WaitGroup
			failed := make(chan error, n)
			for _, cl := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := getOK(cl, base+"/files/1k.bin"); err != nil {
						failed <- err
					}
				}()
			}
			wg.Wait()
			close(failed)
			for err := range failed {
				t.Errorf("a keep-alive client's next request after the kill: %v", err)
			}
		})
	}
}

// keepAliveRequest asks for a small file on c, keeping the connection, and
// reads the whole response.
func keepAliveRequest(c net.Conn, br *bufio.Reader) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /files/1k.bin HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.Close {
		return errors.New("the server did not keep the connection")
	}
	return nil
}

func getOK(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && (resp.StatusCode != 200 || n != 1024) {
		err = fmt.Errorf("status %d, %d bytes", resp.StatusCode, n)
	}
	return err
}

// webInstance starts an instance with the web server on the backend
// ("kernel", "usertcp" or "usertcp-resume"), and returns it, the web
// server's URL and the dialer that reaches it.
func webInstance(t *testing.T, backend string) (in *testkit.Instance, base string, dial func(context.Context, string, string) (net.Conn, error)) {
	var netprocConf, listen string
	var d net.Dialer
	dial = d.DialContext
	switch backend {
	case "kernel":
		port := testkit.FreePort(t)
		netprocConf, listen = "backend = \"kernel\"\n", fmt.Sprintf("127.0.0.1:%d", port)
		base = fmt.Sprintf("http://127.0.0.1:%d", port)
	default:
		testkit.NeedTUN(t)
		ns := testkit.InstanceNamespace(t, "satwk")
		netprocConf = fmt.Sprintf("backend = \"usertcp\"\nnetns = %q\naddress = \"10.96.0.2/24\"\nresume = %v\n", ns, backend == "usertcp-resume")
		listen, base = ":8080", "http://10.96.0.2:8080"
		t.Cleanup(func() { testkit.RemoveNamespace(ns) })
		defer func() { // once the instance has made the namespace
			dialer, err := NewNetnsDialer(ns)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(dialer.Close)
			dial = dialer.DialContext
		}()
	}
	root := filepath.Join(t.TempDir(), "site")
	in = testkit.NewInstance(t, webConfig(netprocConf, root, listen))
	in.Start()
	t.Cleanup(func() { in.Run("supervisor", "stop") })
	return in, base, dial
}
