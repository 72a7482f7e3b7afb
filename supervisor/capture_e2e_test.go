package supervisor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"saturn/internal/testkit"
	"saturn/proto"
)

// `saturn capture` end to end: an instance on the usertcp backend, real
// clients in its namespace, and the capture files checked by tshark.

// needUserTCP skips a test that needs the usertcp backend (root,
// /dev/net/tun and iproute2) and curl.
func needUserTCP(t *testing.T) {
	t.Helper()
	testkit.NeedTUN(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("needs curl (scripts/deps.sh installs it)")
	}
}

// needTshark skips a test that checks capture files with tshark.
func needTshark(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("needs tshark to check the capture files (scripts/deps.sh installs it)")
	}
}

var userTCPInstances atomic.Int32

// userTCPInstance starts an instance whose netproc runs saturn's own stack
// in a namespace and a /24 of its own, with the built-in web server on
// :8080 and the echo example on :7007. It returns the instance, the
// namespace and saturn's address there. The namespace must be gone once
// the instance has stopped: the test fails if not, and removes it.
func userTCPInstance(t *testing.T) (*testkit.Instance, string, netip.Addr) {
	t.Helper()
	n, pid := userTCPInstances.Add(1), os.Getpid()
	ns := fmt.Sprintf("scap%d-%d", pid, n) // at most 15 characters
	pfx := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.2/24", 100+pid%50, n%250))
	// Registered before the instance's own cleanup, so it runs after it.
	t.Cleanup(func() { testkit.NoNamespaceLeft(t, ns) })
	in := testkit.NewInstance(t, fmt.Sprintf(`
[netproc]
backend = "usertcp"
netns = %q
address = %q

[diskproc]
root = "site"
sample_site = true

[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", ":8080"]
`, ns, pfx))
	in.Start()
	echo := testkit.Build(t, "./examples/echo")
	in.MustRun("attach", "--name", "echo", "--", echo, "--listen", ":7007")
	if st, ok := in.WaitFor(10*time.Second, running("netproc", "web", "echo")); !ok {
		t.Fatalf("the instance did not come up: %+v", st)
	}
	return in, ns, pfx.Addr()
}

// echoOnce sends n random bytes to the echo app from the namespace (the
// kernel's TCP) and checks what comes back: segments both ways, GSO ones
// among them.
func echoOnce(ns string, addr netip.Addr, n int) error {
	c, err := testkit.DialInNamespace(ns, netip.AddrPortFrom(addr, 7007).String(), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	out := make([]byte, n)
	rand.Read(out)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(out)
		errc <- err
	}()
	back := make([]byte, n)
	if _, err := io.ReadFull(c, back); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(out, back) {
		return errors.New("echo differs")
	}
	return nil
}

// traffic fetches a page and a file with curl in the namespace and
// echoes data, over and over, until stop is closed; it returns the first
// error.
func traffic(ns string, addr netip.Addr, stop <-chan struct{}) <-chan error {
	done := make(chan error, 1)
	go func() {
		var first error
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- first
				return
			default:
			}
			url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(addr, 8080))
			if i%2 == 1 {
				url += "files/100k.bin"
			}
			out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sS", "-o", "/dev/null", "--max-time", "10", "-w", "%{http_code}", url).CombinedOutput()
			if err == nil && string(out) != "200" {
				err = fmt.Errorf("curl %s: status %s", url, out)
			}
			if err == nil {
				err = echoOnce(ns, addr, 256<<10)
			}
			if err != nil && first == nil {
				first = err
			}
		}
	}()
	return done
}

// runCapture runs cmd (a `saturn capture`) while traffic flows, until it
// exits or timeout passes. With interruptWhen, it sends the capture SIGINT
// once interruptWhen holds, with traffic still flowing.
func runCapture(t *testing.T, cmd *exec.Cmd, ns string, addr netip.Addr, timeout time.Duration, interruptWhen func() bool) error {
	t.Helper()
	capture := testkit.Start(t, cmd)
	stop := make(chan struct{})
	gen := traffic(ns, addr, stop)
	defer func() {
		close(stop)
		if terr := <-gen; terr != nil {
			t.Errorf("traffic during the capture: %v", terr)
		}
	}()
	deadline := time.After(timeout)
	if interruptWhen != nil {
		testkit.Until(timeout, func() bool {
			select {
			case <-capture.Exited():
				return true
			default:
				return interruptWhen()
			}
		})
		cmd.Process.Signal(syscall.SIGINT)
	}
	select {
	case <-capture.Exited():
		return capture.Err()
	case <-deadline:
		cmd.Process.Kill()
		<-capture.Exited()
		return fmt.Errorf("saturn capture still running after %v", timeout)
	}
}

// pcapCount reads a capture with gopacket and returns its packets, failing
// the test on any error (a truncated last record included).
func pcapCount(t *testing.T, data []byte) int {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a pcap stream: %v", err)
	}
	if r.LinkType() != layers.LinkTypeRaw {
		t.Errorf("link type %v, want raw IP", r.LinkType())
	}
	n := 0
	for {
		_, _, err := r.ReadPacketData()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("record %d: %v", n+1, err)
		}
		n++
	}
}

// tshark runs tshark on file and returns its standard output.
func tshark(t *testing.T, file string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", append([]string{"-r", file}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s %s: %v\n%s", file, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// checkWithTshark has tshark read file, which must hold want packets
// (want < 0: any number), none malformed, none with an error, and every
// IP and TCP checksum right. It returns the packets' lines of fields:
// source, destination and IP total length.
func checkWithTshark(t *testing.T, file string, want int) []string {
	t.Helper()
	lines := strings.Fields(tshark(t, file, "-T", "fields", "-E", "separator=,", "-e", "ip.src", "-e", "ip.dst", "-e", "ip.len"))
	if want >= 0 && len(lines) != want {
		t.Errorf("tshark reads %d packets in %s, want %d", len(lines), file, want)
	}
	bad := tshark(t, file, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
		"-Y", `_ws.malformed || _ws.expert.severity == error || tcp.checksum.status == "Bad" || ip.checksum.status == "Bad"`)
	if strings.TrimSpace(bad) != "" {
		t.Errorf("tshark finds malformed packets, errors or bad checksums in %s:\n%s", file, bad)
	}
	return lines
}

var capturedRE = regexp.MustCompile(`saturn: (\d+) packets captured to `)

// capturedCount is the count `saturn capture` reports on standard error.
func capturedCount(t *testing.T, stderr string) int {
	t.Helper()
	m := capturedRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("saturn capture does not say how many packets it captured:\n%s", stderr)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestCaptureUserTCP: on the usertcp backend, `saturn capture` writes what
// netproc sends and receives while curl and a Go client in the namespace
// talk to saturn's apps, and tshark reads it without a complaint: to a
// file until --count, to standard output, and until SIGINT. status shows
// the stack and its counters; ping reaches saturn.
func TestCaptureUserTCP(t *testing.T) {
	needUserTCP(t)
	needTshark(t)
	in, ns, addr := userTCPInstance(t)
	dir := t.TempDir()

	t.Run("status and ping", func(t *testing.T) {
		np := testkit.Component(in.Status(), "netproc")
		for k, want := range map[string]string{"backend": "usertcp", "netns": ns, "address": addr.String() + "/24"} {
			if np.Info[k] != want {
				t.Errorf("status: netproc %s = %q, want %q", k, np.Info[k], want)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", addr.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("ping from the namespace: %v\n%s", err, out)
		}
		// The counters are published every so often: wait for them.
		st, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
			return testkit.Component(st, "netproc").Counters["icmp.out_echo_reps"] >= 3
		})
		if !ok {
			t.Errorf("status: no echo replies counted after ping: %v", testkit.Component(st, "netproc").Counters)
		}
		// --json gives counters as numbers, apart from the description.
		var raw struct {
			Components []struct {
				Name     string
				Info     map[string]any
				Counters map[string]any
			}
		}
		if err := json.Unmarshal([]byte(in.MustRun("status", "--json")), &raw); err != nil {
			t.Fatal(err)
		}
		for _, c := range raw.Components {
			if c.Name != "netproc" {
				continue
			}
			for _, k := range []string{"tcp.in_segs", "tcp.passive_opens", "tcp.in_csum_errors", "ip.in_receives", "ip.drop_bad_checksum", "link.rx_packets", "icmp.out_echo_reps"} {
				if v, ok := c.Counters[k].(float64); !ok || k == "icmp.out_echo_reps" && v < 3 {
					t.Errorf("status --json: netproc counter %s is %#v, want a number", k, c.Counters[k])
				}
				if _, ok := c.Info[k]; ok {
					t.Errorf("status --json: netproc counter %s also in info", k)
				}
			}
			if c.Info["backend"] != "usertcp" {
				t.Errorf("status --json: netproc info %v", c.Info)
			}
		}
		// The table leaves counters out; --metrics has them.
		if out := in.MustRun("status"); strings.Contains(out, "tcp.in_segs") || !strings.Contains(out, "backend=usertcp") {
			t.Errorf("status table:\n%s", out)
		}
		if out := in.MustRun("status", "--metrics"); !regexp.MustCompile(`(?m)^saturn_icmp_out_echo_reps\{component="netproc"\} [3-9]`).MatchString(out) {
			t.Errorf("status --metrics:\n%s", out)
		}
	})

	t.Run("file and count", func(t *testing.T) {
		const count = 300
		file := filepath.Join(dir, "count.pcap")
		var stderr bytes.Buffer
		cmd := in.Command("capture", "-w", file, "--count", strconv.Itoa(count))
		cmd.Stderr = &stderr
		if err := runCapture(t, cmd, ns, addr, time.Minute, nil); err != nil {
			t.Fatalf("saturn capture -w %s --count %d: %v\n%s", file, count, err, stderr.String())
		}
		if n := capturedCount(t, stderr.String()); n != count {
			t.Errorf("saturn capture says %d packets, want %d", n, count)
		}
		lines := checkWithTshark(t, file, count)
		// Both directions, and segments beyond the MTU (GSO) among them:
		// tshark took those too.
		var from, to, largeFrom, largeTo int
		for _, l := range lines {
			f := strings.Split(l, ",")
			if len(f) != 3 {
				continue
			}
			large := 0
			if n, _ := strconv.Atoi(f[2]); n > 1500 {
				large = 1
			}
			if f[0] == addr.String() {
				from++
				largeFrom += large
			}
			if f[1] == addr.String() {
				to++
				largeTo += large
			}
		}
		t.Logf("%d packets from saturn (%d beyond the MTU), %d to it (%d beyond the MTU)", from, largeFrom, to, largeTo)
		if from == 0 || to == 0 || from+to != count {
			t.Errorf("%d packets from saturn and %d to it, of %d", from, to, count)
		}
		if largeFrom == 0 || largeTo == 0 {
			t.Errorf("no GSO packets both ways: %d from saturn, %d to it", largeFrom, largeTo)
		}
	})

	t.Run("stdout", func(t *testing.T) {
		const count = 40
		var stdout, stderr bytes.Buffer
		cmd := in.Command("capture", "--count", strconv.Itoa(count))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := runCapture(t, cmd, ns, addr, time.Minute, nil); err != nil {
			t.Fatalf("saturn capture --count %d: %v\n%s", count, err, stderr.String())
		}
		if n := pcapCount(t, stdout.Bytes()); n != count {
			t.Errorf("standard output holds %d packets, want %d", n, count)
		}
		if !strings.Contains(stderr.String(), "captured to standard output") {
			t.Errorf("stderr: %q", stderr.String())
		}
		file := filepath.Join(dir, "stdout.pcap")
		os.WriteFile(file, stdout.Bytes(), 0o644)
		checkWithTshark(t, file, count)
	})

	t.Run("interrupt", func(t *testing.T) {
		file := filepath.Join(dir, "interrupt.pcap")
		var stderr bytes.Buffer
		cmd := in.Command("capture", "-w", file)
		cmd.Stderr = &stderr
		// Interrupted once packets are in the file.
		err := runCapture(t, cmd, ns, addr, time.Minute, func() bool {
			fi, err := os.Stat(file)
			return err == nil && fi.Size() > 64<<10
		})
		if err != nil {
			t.Fatalf("saturn capture -w %s, interrupted: %v\n%s", file, err, stderr.String())
		}
		n := capturedCount(t, stderr.String())
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if got := pcapCount(t, data); got != n || n == 0 {
			t.Errorf("the file holds %d packets; saturn capture said %d", got, n)
		}
		checkWithTshark(t, file, n)
		// The capture is over: another one can start.
		var again bytes.Buffer
		cmd = in.Command("capture", "--count", "5")
		cmd.Stdout = &again
		if err := runCapture(t, cmd, ns, addr, time.Minute, nil); err != nil {
			t.Fatalf("a capture after the interrupted one: %v", err)
		}
		if got := pcapCount(t, again.Bytes()); got != 5 {
			t.Errorf("the next capture holds %d packets, want 5", got)
		}
	})

	// Stopping the instance removes the namespace (checked in cleanup).
	in.MustRun("supervisor", "stop")
}

// TestCaptureKernelBackend: with the kernel backend there is nothing to
// capture, and the CLI says so, and why, at once.
func TestCaptureKernelBackend(t *testing.T) {
	in := startInstance(t)
	file := filepath.Join(t.TempDir(), "k.pcap")
	start := time.Now()
	out, err := in.Run("capture", "-w", file, "--count", "10")
	if err == nil {
		t.Fatalf("saturn capture on the kernel backend succeeded:\n%s", out)
	}
	for _, want := range []string{`backend = "usertcp"`, "kernel backend", "tcpdump"} {
		if !strings.Contains(out, want) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("saturn capture took %v to fail", el)
	}
	// The instance is unharmed.
	if c := testkit.Component(in.Status(), "netproc"); c.State != proto.StateRunning || c.Restarts != 0 {
		t.Errorf("netproc after the refused capture: %+v", c)
	}
}
