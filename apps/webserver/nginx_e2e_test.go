package webserver_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"saturn/apps/webserver"
	"saturn/configs"
	"saturn/internal/testkit"
	"saturn/proto"
)

// What nginx users expect of the web server, as saturn runs it (an app
// under the supervisor, files through diskproc, sockets in netproc): HTTPS
// with a certificate reloaded on SIGHUP, Expect: 100-continue, files that
// change while cached, and an access log in the common format.

// nginxJob is an instance whose web server listens for HTTP and HTTPS,
// keeps files open for an hour (so that a file changed on disk is still in
// the cache when it is fetched again), and logs in the common format.
type nginxJob struct {
	in                  *testkit.Instance
	http, https, accLog string
	cert                webserver.TestCert
	site                string
}

func startNginxJob(t *testing.T) *nginxJob {
	t.Helper()
	dir := t.TempDir()
	j := &nginxJob{cert: webserver.WriteTestCert(t, dir, "one"), accLog: filepath.Join(dir, "access.log")}
	httpPort, httpsPort := testkit.FreePort(t), testkit.FreePort(t)
	j.http = fmt.Sprintf("127.0.0.1:%d", httpPort)
	j.https = fmt.Sprintf("127.0.0.1:%d", httpsPort)
	// The app reads its key as the supervisor's user: a dynamic one (the
	// default when saturn runs as root) could not read a key in the test's
	// folder, as it should not.
	cfg := fmt.Sprintf(`[netproc]
backend = "kernel"

[diskproc]
root = "site"
sample_site = true

[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", %q, "--tls-listen", %q,
  "--tls-cert", %q, "--tls-key", %q, "--access-log", %q, "--access-log-format", "common", "--open-cache", "1h"]
restart = "always"
user = "inherit"
`, j.http, j.https, j.cert.CertFile, j.cert.KeyFile, j.accLog)
	j.in = testkit.NewInstance(t, cfg)
	j.in.Start()
	j.site = filepath.Join(filepath.Dir(j.in.Config), "site") // [diskproc] root, against the config's folder
	if _, ok := j.in.WaitFor(30*time.Second, func(st *proto.StatusReply) bool {
		c := testkit.Component(st, "web")
		return c != nil && c.State == proto.StateRunning
	}); !ok {
		out, _ := j.in.Run("logs", "web")
		t.Fatalf("web is not running:\n%s", out)
	}
	return j
}

func tlsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// presented is the common name of the certificate a fresh handshake gets.
func presented(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestNginxUsersExpect(t *testing.T) {
	j := startNginxJob(t)
	client := tlsClient(j.cert.Pool)
	defer client.CloseIdleConnections()
	requests := 0

	t.Run("https with curl", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl is not installed (apt-get install curl)")
		}
		url := "https://" + j.https + "/files/1k.bin"
		out, err := exec.Command("curl", "-sS", "--max-time", "10", "--cacert", j.cert.CertFile, "-o", "-", url, "-w", "\n%{http_code} %{ssl_verify_result}").Output()
		requests++
		want := string(configs.SamplePattern(1<<10)) + "\n200 0"
		if err != nil || string(out) != want {
			t.Fatalf("curl %s: %v\n%q", url, err, out)
		}
	})
	t.Run("https with Go", func(t *testing.T) {
		for range 2 {
			resp, body := webserver.GetWhole(t, client, "https://"+j.https+"/files/100k.bin")
			requests++
			if resp.StatusCode != 200 || !bytes.Equal(body, configs.SamplePattern(100<<10)) || resp.TLS == nil {
				t.Fatalf("%d, %d bytes, TLS %v", resp.StatusCode, len(body), resp.TLS != nil)
			}
		}
	})
	t.Run("plain HTTP beside it", func(t *testing.T) {
		resp, body := webserver.GetWhole(t, http.DefaultClient, "http://"+j.http+"/")
		requests++
		if resp.StatusCode != 200 || !strings.Contains(string(body), "saturn is serving") {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
	t.Run("plain HTTP on the HTTPS port", func(t *testing.T) {
		c := webserver.DialRaw(t, j.https)
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("%v %v", resp, err)
		}
	})

	t.Run("expect 100-continue", func(t *testing.T) {
		// A raw client that waits for 100 (Continue) or a final status
		// before it sends its content.
		c := webserver.DialRaw(t, j.http)
		defer c.Close()
		io.WriteString(c, "GET /files/1k.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no final status while the client holds its content back: %v", err)
		}
		requests++
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !resp.Close || !bytes.Equal(body, configs.SamplePattern(1<<10)) {
			t.Fatalf("%d, close %v, %d bytes", resp.StatusCode, resp.Close, len(body))
		}
		if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
			t.Fatalf("after the response: %q %v; want the server to close", rest, err)
		}
		c2 := webserver.DialRaw(t, j.http)
		defer c2.Close()
		io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\nConnection: close\r\n\r\n")
		resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
		requests++
		if err != nil || resp.StatusCode != 417 {
			t.Fatalf("another expectation: %v %v", resp, err)
		}
	})

	t.Run("files changed while cached", func(t *testing.T) {
		// big.bin is over the content cache's 1 MiB per file: its bytes
		// are read through diskproc at every request; small.bin's are
		// kept in memory.
		big, small := configs.SamplePattern(2<<20), configs.SamplePattern(10<<10)
		for name, data := range map[string][]byte{"big.bin": big, "small.bin": small} {
			if err := os.WriteFile(filepath.Join(j.site, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, body := webserver.GetWhole(t, http.DefaultClient, "http://"+j.http+"/"+name); !bytes.Equal(body, data) {
				t.Fatalf("%s before the change: %d bytes", name, len(body))
			}
			requests++
		}
		os.Truncate(filepath.Join(j.site, "big.bin"), 1500000)
		os.Truncate(filepath.Join(j.site, "small.bin"), 100)
		for _, c := range []*http.Client{http.DefaultClient, client} {
			scheme, addr := "http://", j.http
			if c == client {
				scheme, addr = "https://", j.https
			}
			resp, body := webserver.GetWhole(t, c, scheme+addr+"/big.bin")
			requests++
			if resp.StatusCode != 200 || !bytes.Equal(body, big[:1500000]) {
				t.Errorf("%sbig.bin truncated while cached: %d, %d bytes; want the file as it is now", scheme, resp.StatusCode, len(body))
			}
			resp, body = webserver.GetWhole(t, c, scheme+addr+"/small.bin")
			requests++
			if resp.StatusCode != 200 || !bytes.Equal(body, small) && !bytes.Equal(body, small[:100]) {
				t.Errorf("%ssmall.bin truncated while cached: %d, %d bytes; want it whole, as it was or as it is", scheme, resp.StatusCode, len(body))
			}
		}
	})

	t.Run("access log in the common format", func(t *testing.T) {
		common := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "(GET|HEAD) \S+ HTTP/1\.[01]" \d{3} \d+$`)
		var lines []string
		testkit.Eventually(t, 10*time.Second, func() bool {
			b, _ := os.ReadFile(j.accLog)
			lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			return len(lines) >= requests
		}, "the access log's lines")
		for _, l := range lines {
			if !common.MatchString(l) {
				t.Errorf("not the common format: %q", l)
			}
		}
	})

	t.Run("SIGHUP reloads the certificate and reopens the log", func(t *testing.T) {
		if cn := presented(t, j.https); cn != "one" {
			t.Fatalf("presented %q", cn)
		}
		two := webserver.WriteTestCert(t, t.TempDir(), "two")
		copyFile(t, two.CertFile, j.cert.CertFile)
		copyFile(t, two.KeyFile, j.cert.KeyFile)
		if err := os.Rename(j.accLog, j.accLog+".1"); err != nil { // as logrotate does
			t.Fatal(err)
		}
		j.in.MustRun("kill", "web", "--signal", "HUP")
		testkit.Eventually(t, 10*time.Second, func() bool { return presented(t, j.https) == "two" }, "the new certificate presented")
		if _, body := webserver.GetWhole(t, tlsClient(two.Pool), "https://"+j.https+"/files/1k.bin"); !bytes.Equal(body, configs.SamplePattern(1<<10)) {
			t.Fatal("after the reload: wrong body")
		}
		testkit.Eventually(t, 10*time.Second, func() bool {
			b, _ := os.ReadFile(j.accLog)
			return strings.Contains(string(b), `"GET /files/1k.bin HTTP/1.1" 200 1024`)
		}, "a line in the reopened access log")

		// A key that does not match: the certificate in use stays.
		three := webserver.WriteTestCert(t, t.TempDir(), "three")
		copyFile(t, three.KeyFile, j.cert.KeyFile)
		j.in.MustRun("kill", "web", "--signal", "HUP")
		testkit.Eventually(t, 10*time.Second, func() bool {
			out, _ := j.in.Run("logs", "web")
			return strings.Contains(out, "certificate not reloaded") && strings.Contains(out, "does not match")
		}, "the failed reload logged")
		if cn := presented(t, j.https); cn != "two" {
			t.Fatalf("after a failed reload: presented %q", cn)
		}
		// Neither signal restarted the web server.
		c := testkit.Component(j.in.Status(), "web")
		if c.State != proto.StateRunning || c.Restarts != 0 {
			t.Fatalf("web after SIGHUP: %s, %d restarts", c.State, c.Restarts)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestWebserverTLSStartErrors: a certificate that cannot be used fails the
// start, saying why, before the app attaches.
func TestWebserverTLSStartErrors(t *testing.T) {
	in := testkit.NewInstance(t, "")
	dir := t.TempDir()
	one, two := webserver.WriteTestCert(t, dir, "one"), webserver.WriteTestCert(t, dir, "two")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", filepath.Join(dir, "nope.crt"), "--tls-key", one.KeyFile}, "nope.crt: no such file or directory"},
		{[]string{"--tls-cert", one.CertFile, "--tls-key", two.KeyFile}, "private key does not match public key"},
		{[]string{"--tls-cert", one.CertFile}, "--tls-cert needs --tls-key"},
		{[]string{"--tls-listen", ":9443"}, "--tls-listen needs --tls-cert and --tls-key"},
		{[]string{"--listen", ""}, "nothing to listen on"},
		{[]string{"--access-log-format", "json"}, `"json": want "combined" or "common"`},
	} {
		out, err := in.Run(append([]string{"app", "webserver"}, tt.args...)...)
		if err == nil || !strings.Contains(out, tt.want) {
			t.Errorf("webserver %v: %v\n%s\nwant an error saying %q", tt.args, err, out, tt.want)
		}
	}
}
