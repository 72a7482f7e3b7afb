package webserver

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
)

// TestCert is a self-signed certificate for 127.0.0.1 and localhost,
// written as PEM files; Pool trusts it. Exported for the end-to-end tests.
type TestCert struct {
	CertFile, KeyFile string
	Pool              *x509.CertPool
	CommonName        string
}

// WriteTestCert makes a fresh key and self-signed certificate named cn and
// writes them into dir as cn.crt and cn.key.
func WriteTestCert(t testing.TB, dir, cn string) TestCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: it is its own issuer, which curl's --cacert needs
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	tc := TestCert{CertFile: filepath.Join(dir, cn+".crt"), KeyFile: filepath.Join(dir, cn+".key"), Pool: x509.NewCertPool(), CommonName: cn}
	if err := os.WriteFile(tc.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tc.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	tc.Pool.AddCert(cert)
	return tc
}

// startTLS serves the test tree over TLS on l's listener with a fresh
// certificate.
func startTLS(t *testing.T, l func(testing.TB) net.Listener, cfg Config) (*Certificate, TestCert, string) {
	t.Helper()
	tc := WriteTestCert(t, t.TempDir(), "one")
	cert, err := LoadCertificate(tc.CertFile, tc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startServerOn(t, cfg, tls.NewListener(l(t), cert.TLSConfig()))
	return cert, tc, addr
}

func tlsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, DisableCompression: true, MaxIdleConnsPerHost: 1}}
}

// TestTLS serves over crypto/tls on both kinds of connection: files small
// and large, ranges, keep-alive (the second request reuses the first's
// connection after it went idle, which on appproc's connections is where a
// plain connection would park; a TLS one does not), and a plain HTTP
// request on the TLS port, answered 400.
func TestTLS(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			_, tc, addr := startTLS(t, l.listen, Config{IndexFile: "index.html"})
			client := tlsClient(tc.Pool)
			defer client.CloseIdleConnections()
			base := "https://" + addr
			var reused []bool
			get := func(path string, hdr ...string) (int, []byte) {
				t.Helper()
				req, _ := http.NewRequest("GET", base+path, nil)
				for i := 0; i+1 < len(hdr); i += 2 {
					req.Header.Set(hdr[i], hdr[i+1])
				}
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(i httptrace.GotConnInfo) { reused = append(reused, i.Reused) }}))
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				defer resp.Body.Close()
				if resp.TLS == nil || !resp.TLS.HandshakeComplete {
					t.Errorf("GET %s: TLS state %+v", path, resp.TLS)
				}
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("GET %s body: %v", path, err)
				}
				return resp.StatusCode, b
			}
			if st, b := get("/hello.txt"); st != 200 || string(b) != "hello, world\n" {
				t.Errorf("hello.txt: %d %q", st, b)
			}
			if st, b := get("/big.bin"); st != 200 || !bytes.Equal(b, bigData) {
				t.Errorf("big.bin: %d, %d bytes", st, len(b))
			}
			if st, b := get("/big.bin", "Range", "bytes=70000-70009"); st != 206 || !bytes.Equal(b, bigData[70000:70010]) {
				t.Errorf("range: %d %q", st, b)
			}
			if st, b := get("/"); st != 200 || string(b) != "<h1>home</h1>\n" {
				t.Errorf("index: %d %q", st, b)
			}
			for i, r := range reused[1:] {
				if !r {
					t.Errorf("request %d did not reuse the kept-alive connection", i+2)
				}
			}

			c := DialRaw(t, addr)
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != 400 {
				t.Fatalf("plain HTTP on the TLS port: %v %v", resp, err)
			}
		})
	}
}

// TestTLSReload: Reload swaps the certificate for new handshakes; an
// established connection goes on; a reload that fails keeps the pair in
// use.
func TestTLSReload(t *testing.T) {
	cert, tc, addr := startTLS(t, appprocListen, Config{})
	dir := filepath.Dir(tc.CertFile)
	presented := func(pool *x509.CertPool) string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := presented(tc.Pool); cn != "one" {
		t.Fatalf("presented %q", cn)
	}
	client := tlsClient(tc.Pool)
	defer client.CloseIdleConnections()
	fetch := func() {
		t.Helper()
		resp, err := client.Get("https://" + addr + "/digits.txt")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "0123456789" {
			t.Fatalf("body %q", b)
		}
	}
	fetch() // a kept-alive connection made with the first certificate

	two := WriteTestCert(t, dir, "two")
	os.Rename(two.CertFile, tc.CertFile)
	os.Rename(two.KeyFile, tc.KeyFile)
	if err := cert.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := presented(two.Pool); cn != "two" {
		t.Fatalf("after Reload: presented %q", cn)
	}
	fetch() // over the connection made before

	three := WriteTestCert(t, dir, "three")
	os.Rename(three.KeyFile, tc.KeyFile) // two's certificate, three's key
	err := cert.Reload()
	if err == nil || !strings.Contains(err.Error(), "does not match") || !strings.Contains(err.Error(), tc.KeyFile) {
		t.Fatalf("reload with a key of another certificate: %v", err)
	}
	if cn := presented(two.Pool); cn != "two" {
		t.Fatalf("after a failed Reload: presented %q", cn)
	}
}

func TestLoadCertificateErrors(t *testing.T) {
	dir := t.TempDir()
	one, two := WriteTestCert(t, dir, "one"), WriteTestCert(t, dir, "two")
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("not PEM\n"), 0o644)
	for _, tt := range []struct {
		name, cert, key, want string
	}{
		{"missing certificate", filepath.Join(dir, "nope.crt"), one.KeyFile, "nope.crt: no such file"},
		{"missing key", one.CertFile, filepath.Join(dir, "nope.key"), "nope.key: no such file"},
		{"key of another", one.CertFile, two.KeyFile, "private key does not match public key"},
		{"not PEM", garbage, one.KeyFile, "failed to find any PEM data in certificate input"},
		{"swapped", one.KeyFile, one.CertFile, "certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCertificate(tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
	c, err := LoadCertificate(one.CertFile, one.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(c.NotAfter()); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("NotAfter %v", c.NotAfter())
	}
}

// TestTLSHandshakeTimeout: a client that connects and never says hello is
// dropped after HeaderTimeout; Shutdown does not wait for one that is
// mid-handshake.
func TestTLSHandshakeTimeout(t *testing.T) {
	_, _, addr := startTLS(t, kernelListen, Config{HeaderTimeout: 200 * time.Millisecond})
	c := DialRaw(t, addr)
	defer c.Close()
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d, %v; want the server to hang up", n, err)
	}
}

func TestTLSShutdownIdle(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			tc := WriteTestCert(t, t.TempDir(), "one")
			cert, err := LoadCertificate(tc.CertFile, tc.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(Config{Root: testFS(), HeaderTimeout: time.Hour, IdleTimeout: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			ln := tls.NewListener(l.listen(t), cert.TLSConfig())
			served := make(chan error, 1)
			go func() { served <- s.Serve(ln) }()
			client := tlsClient(tc.Pool)
			defer client.CloseIdleConnections()
			resp, err := client.Get("https://" + ln.Addr().String() + "/digits.txt")
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			// One connection idle after a request, one mid-handshake.
			hs, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer hs.Close()
			waitActive(t, s, 2)
			if err := s.Shutdown(t.Context()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if err := <-served; err != ErrServerClosed {
				t.Fatalf("Serve: %v", err)
			}
		})
	}
}

// TestCurlHTTPS: the real curl, verifying the certificate against its own
// trust in it (--cacert), over several URLs on one connection.
func TestCurlHTTPS(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (apt-get install curl)")
	}
	_, tc, addr := startTLS(t, appprocListen, Config{})
	base := "https://" + addr
	out, err := exec.Command(curl, "-sS", "-v", "--max-time", "10", "--cacert", tc.CertFile, base+"/hello.txt", base+"/digits.txt").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	for _, w := range []string{"hello, world", "0123456789", "Re-using existing connection", "SSL certificate verify ok", "ALPN: server accepted http/1.1"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("curl's output lacks %q:\n%s", w, out)
		}
	}
	// Without trusting the certificate, curl refuses it.
	if out, err := exec.Command(curl, "-sS", "--max-time", "10", base+"/hello.txt").CombinedOutput(); err == nil {
		t.Errorf("curl accepted an untrusted certificate:\n%s", out)
	}
}

// waitActive waits until s serves n connections.
func waitActive(t *testing.T, s *Server, n int) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.active) == n
	}, "%d connections served", n)
}

// TestTLSIdleTimeout: an idle TLS connection, which does not park, is
// still closed by IdleTimeout, with a close_notify, on both kinds of
// connection.
func TestTLSIdleTimeout(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			_, tc, addr := startTLS(t, l.listen, Config{IdleTimeout: 300 * time.Millisecond})
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: tc.Pool})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET /digits.txt HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != "0123456789" || resp.Close {
				t.Fatalf("%q, close %v", b, resp.Close)
			}
			// Now idle: the server hangs up, cleanly, well before our deadline.
			if n, err := br.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("idle: read %d, %v; want the server's close_notify (EOF)", n, err)
			}
		})
	}
}
