package netproc_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"saturn/configs"
	"saturn/internal/testkit"
	"saturn/proto"
)

// TestHostReachesSaturn: with usertcp, the host reaches the web server at
// saturn's address (the host route, without `ip netns exec`) and at the
// published port of the host's loopback, before and after netproc is
// killed; `supervisor start` says where; stopping the instance takes the
// host's link and route away. Every request from the host first checks
// with `ip route get` that saturn's address leads into the instance's own
// link: an address the host does not route there leaves the machine.
func TestHostReachesSaturn(t *testing.T) {
	testkit.NeedTUN(t)
	_, prefix := testkit.TestNet()
	ns := testkit.InstanceNamespace(t, "satrch")
	hostPort := testkit.FreePort(t)
	// A second published port that something else holds: the instance
	// starts anyway, and status says that port is not published.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	in := testkit.NewInstance(t, fmt.Sprintf(`
[netproc]
backend = "usertcp"
netns = %q
address = %q
publish = ["127.0.0.1:%d:8080", %q]
backoff = "20ms"

[diskproc]
sample_site = true

[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", ":8080"]
`, ns, prefix, hostPort, taken.Addr().String()+":8080"))
	out := in.MustRun("supervisor", "start", "--detach", "--config", in.Config)
	published := fmt.Sprintf("http://127.0.0.1:%d/", hostPort)
	if !strings.Contains(out, "open "+published) {
		t.Errorf("supervisor start does not point at the published port %s:\n%s", published, out)
	}
	np := testkit.Component(in.Status(), "netproc")
	hr := np.Info["host_route"]
	_, linkName, ok := strings.Cut(hr, " via ")
	if !ok || !strings.HasPrefix(hr, prefix.Masked().String()) {
		t.Fatalf("netproc's host_route is %q: want %v via the instance's link", hr, prefix.Masked())
	}
	if pub := np.Info["publish"]; !strings.HasPrefix(pub, fmt.Sprintf("127.0.0.1:%d->8080, %s->8080 (not published: ", hostPort, taken.Addr())) {
		t.Errorf("netproc's publish is %q: want the first port published and the taken one said not to be", pub)
	}
	addr := prefix.Addr().String()
	direct := fmt.Sprintf("http://%s:8080/files/1k.bin", addr)
	want := configs.SamplePattern(1024)
	get := func(url string) error {
		if strings.Contains(url, addr) {
			route, err := exec.Command("ip", "route", "get", addr).CombinedOutput()
			if err != nil || !strings.Contains(string(route), "dev "+linkName+" ") {
				t.Fatalf("the host does not route %s into %s; not sending: %s %v", addr, linkName, route, err)
			}
		}
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, want) {
			return fmt.Errorf("%s: %d, %d bytes, %v", url, resp.StatusCode, len(body), err)
		}
		return nil
	}
	for _, url := range []string{direct, published + "files/1k.bin"} {
		if err := get(url); err != nil {
			t.Errorf("from the host: %v", err)
		}
	}
	// And with curl, as a user on the host would (the route checked by
	// get's first call above, and again here).
	if _, err := exec.LookPath("curl"); err == nil {
		for _, url := range []string{published, fmt.Sprintf("http://%s:8080/", addr)} {
			if strings.Contains(url, addr) {
				if route, _ := exec.Command("ip", "route", "get", addr).CombinedOutput(); !strings.Contains(string(route), "dev "+linkName+" ") {
					t.Fatalf("the host does not route %s into %s; not sending: %s", addr, linkName, route)
				}
			}
			out, err := exec.Command("curl", "-sS", "--max-time", "10", url).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "saturn is serving") {
				t.Errorf("curl %s: %v\n%s", url, err, out)
			}
		}
	} else {
		t.Log("curl is not installed; fetched with Go's client only")
	}

	before := np.PID
	in.MustRun("kill", "netproc")
	if _, ok := in.WaitFor(20*time.Second, func(st *proto.StatusReply) bool {
		c := testkit.Component(st, "netproc")
		return c != nil && c.PID != before && c.State == proto.StateRunning
	}); !ok {
		t.Fatal("netproc did not come back")
	}
	for _, url := range []string{direct, published + "files/1k.bin"} {
		var err error
		if !testkit.Until(10*time.Second, func() bool { err = get(url); return err == nil }) {
			t.Errorf("after netproc's restart: %v", err)
		}
	}

	in.MustRun("supervisor", "stop")
	if !testkit.Until(10*time.Second, func() bool {
		_, err := netlink.LinkByName(linkName)
		return err != nil
	}) {
		t.Errorf("%s outlived the instance", linkName)
	}
	if route, _ := exec.Command("ip", "route", "get", addr).CombinedOutput(); strings.Contains(string(route), linkName) {
		t.Errorf("the host still routes %s into the instance's link: %s", addr, route)
	}
}
