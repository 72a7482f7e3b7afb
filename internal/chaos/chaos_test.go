package chaos

import (
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
)

var (
	kills = flag.Int("chaos.kills", 8, "events (kills and graceful restarts) in TestChaos and TestChaosUserTCP (the suite's short run: 8, two of each kind)")
	gap   = flag.Duration("chaos.gap", 700*time.Millisecond, "longest pause between kills")
	seed  = flag.Uint64("chaos.seed", 0, "seed (0: from the clock)")
)

func TestMain(m *testing.M) { testkit.Main(m) }

// policy is every component's restart policy in a chaos run. Kills here
// are deliberate and frequent: keep the back-off short, and the intensity
// limit out of the way, so that every kill is followed by a prompt restart
// and the recovery figures measure saturn, not the policy.
const policy = "backoff = \"20ms\"\nmax_backoff = \"40ms\"\nintensity = 1000\nperiod = \"60s\"\n"

// setup is what differs between the backends: netproc's section of the
// config, where the web server listens, and how the clients reach it.
type setup struct {
	netproc string // the [netproc] section's body, policy aside
	listen  string // the web server's --listen
	base    string // its URL
	opts    func(*Options)
	// beforeStop and afterStop add the backend's own leak checks.
	beforeStop, afterStop func(t *testing.T)
	// netprocKillsLoseNothing: a kill of netproc must fail no request of
	// any client (docs/restart.md), as a graceful restart of the web
	// server must on every backend. Set where the backend keeps every
	// connection and listener across netproc's death.
	netprocKillsLoseNothing bool
}

// TestChaos kills netproc, diskproc and the web server in turn, at random
// moments, and restarts the web server gracefully (`saturn restart web`),
// under load (keep-alive connections and a new connection per request), on
// the kernel-socket backend. A graceful restart must fail no request.
func TestChaos(t *testing.T) {
	port := testkit.FreePort(t)
	runChaos(t, setup{
		netproc: "backend = \"kernel\"\n",
		listen:  fmt.Sprintf("127.0.0.1:%d", port),
		base:    fmt.Sprintf("http://127.0.0.1:%d", port),
		// The supervisor holds every socket across netproc's death
		// (netproc/kernel's resume.go, docs/restart.md).
		netprocKillsLoseNothing: true,
		afterStop: func(t *testing.T) {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
				c.Close()
				t.Errorf("port %d still accepts after stop", port)
			} else if !strings.Contains(err.Error(), "refused") {
				t.Errorf("port %d after stop: %v", port, err)
			}
		},
	})
}

// TestChaosUserTCP is TestChaos on the usertcp backend: saturn's own TCP
// stack over a TUN device in a namespace of the test's own, with every
// client (Go's, curl, the load generator) inside that namespace. Beyond
// TestChaos's checks: after each netproc restart, status shows the same
// backend, namespace and address; at the end the namespace holds one TUN
// device (no dead incarnation's lingers), and after stop the namespace is
// gone and no persistent TUN device was left anywhere.
func TestChaosUserTCP(t *testing.T) { chaosUserTCP(t, false) }

// TestChaosUserTCPResume is TestChaosUserTCP with resume on, the default
// (see docs/restart.md): connections, listeners and the calls in flight
// ride out netproc's deaths, so a kill of netproc must fail no request of
// any client, keep-alive or a new connection per request; every check of
// TestChaos still holds.
func TestChaosUserTCPResume(t *testing.T) { chaosUserTCP(t, true) }

func chaosUserTCP(t *testing.T, resume bool) {
	testkit.NeedTUN(t)
	ns := testkit.InstanceNamespace(t, "satchaos")
	const addr, peer = "10.97.0.2/24", "10.97.0.1"
	persistent := persistentTUNs(t)
	var dialer *NetnsDialer
	t.Cleanup(func() {
		if dialer != nil {
			dialer.Close()
		}
	})
	runChaos(t, setup{
		netproc:                 fmt.Sprintf("backend = \"usertcp\"\nnetns = %q\naddress = %q\nresume = %v\n", ns, addr, resume),
		netprocKillsLoseNothing: resume,
		listen:                  ":8080",
		base:                    "http://10.97.0.2:8080",
		opts: func(o *Options) {
			var err error
			if dialer, err = NewNetnsDialer(ns); err != nil {
				t.Fatal(err)
			}
			o.Dial = dialer.DialContext
			o.Prefix = []string{"ip", "netns", "exec", ns}
			o.NetprocInfo = map[string]string{"backend": "usertcp", "netns": ns, "address": addr, "peer": peer}
		},
		beforeStop: func(t *testing.T) {
			devs, err := testkit.TUNDevices(ns)
			if err != nil {
				t.Fatalf("TUN devices in %s: %v", ns, err)
			}
			if len(devs) != 1 {
				t.Errorf("namespace %s holds TUN devices %v after the kills; want one, the live netproc's", ns, devs)
			}
		},
		afterStop: func(t *testing.T) {
			dialer.Close()
			testkit.Until(3*time.Second, func() bool { return !testkit.NamespaceExists(ns) })
			testkit.NoNamespaceLeft(t, ns)
			for name := range persistentTUNs(t) {
				if !persistent[name] {
					t.Errorf("a persistent TUN device %s was left behind", name)
				}
			}
		},
	})
}

// persistentTUNs lists this namespace's persistent TUN devices.
func persistentTUNs(t *testing.T) map[string]bool {
	devs, err := testkit.TUNDevices("")
	if err != nil {
		t.Fatalf("TUN devices: %v", err)
	}
	persistent := map[string]bool{}
	for name, tun := range devs {
		if tun.Persistent {
			persistent[name] = true
		}
	}
	return persistent
}

// webConfig is the configuration of a chaos instance: netproc's section
// (its body), diskproc serving the sample site from root, and the web
// server listening on listen; every component under policy.
func webConfig(netproc, root, listen string) string {
	return fmt.Sprintf(`
[netproc]
%s%s
[diskproc]
root = %q
sample_site = true
%s
[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", %q]
%s`, netproc, policy, root, policy, listen, policy)
}

func runChaos(t *testing.T, su setup) {
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -chaos.seed=%d)", s, s)
	root := filepath.Join(t.TempDir(), "site")
	in := testkit.NewInstance(t, webConfig(su.netproc, root, su.listen))
	in.Start()
	// A larger file too, so that some kills land mid-transfer.
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	if err := os.WriteFile(filepath.Join(root, "files", "3m.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	sums, err := Sums(root)
	if err != nil {
		t.Fatal(err)
	}
	sup := in.SupervisorPID()
	fdsBefore, regionsBefore, err := SettledDescriptors(sup, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	targetsBefore, _ := DescriptorTargets(sup)

	o := Options{
		Base: su.base, Files: sums,
		Victims: []string{"netproc", "diskproc", "web"}, Graceful: []string{"web"}, Kills: *kills,
		Gap: [2]time.Duration{*gap / 3, *gap}, Recover: 10 * time.Second, Hang: 20 * time.Second,
		Clients: 3, Fresh: 2, Load: 8, Seed: s,
		Lossless: func(k Kill) bool {
			return k.Graceful || k.Victim == "netproc" && su.netprocKillsLoseNothing
		},
	}
	if su.opts != nil {
		su.opts(&o)
	}
	rep := Run(t, in, o)
	t.Logf("\n%s", rep.Table())

	// Nothing leaked in the supervisor: the same descriptors and regions as
	// before (the web server's channels were replaced, not added to).
	var fdsAfter, regionsAfter int
	testkit.Until(3*time.Second, func() bool {
		fdsAfter, regionsAfter, _ = Descriptors(sup)
		return fdsAfter == fdsBefore && regionsAfter == regionsBefore
	})
	if fdsAfter != fdsBefore || regionsAfter != regionsBefore {
		targetsAfter, _ := DescriptorTargets(sup)
		t.Errorf("supervisor held %d descriptors (%d regions), TCP sockets aside, before the kills and %d (%d) after: %s",
			fdsBefore, regionsBefore, fdsAfter, regionsAfter, DescriptorChange(targetsBefore, targetsAfter))
	}
	if su.beforeStop != nil {
		su.beforeStop(t)
	}
	pids := in.Processes()
	in.MustRun("supervisor", "stop")
	if alive := testkit.WaitGone(pids, 3*time.Second); len(alive) > 0 {
		t.Errorf("processes %v outlived the instance", alive)
	}
	if left := in.Processes(); len(left) > 0 {
		t.Errorf("processes %v of the instance run after stop", left)
	}
	if su.afterStop != nil {
		su.afterStop(t)
	}
}
