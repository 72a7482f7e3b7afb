package configs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"saturn/proto"
	"saturn/ring"
)

func TestDefaultConfig(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Netproc.Backend != "auto" || c.Netproc.Netns != "saturn-default" || c.Netproc.Address != "10.77.0.2/24" {
		t.Errorf("netproc: %+v", c.Netproc)
	}
	if c.Netproc.Restart != RestartAlways || c.Netproc.Backoff.D() != 100*time.Millisecond || c.Netproc.Intensity != 5 {
		t.Errorf("netproc policy: %+v", c.Netproc.Policy)
	}
	c.Resolve("/run/saturn/default")
	if c.Diskproc.Root != "/run/saturn/default/site" {
		t.Errorf("embedded root resolves to %q", c.Diskproc.Root)
	}
}

// TestRootDefaulted: only a config that names no root leaves the choice
// to saturn (which may then create its folder); the built-in config names
// its root.
func TestRootDefaulted(t *testing.T) {
	for doc, want := range map[string]bool{
		"":                                    true,
		"[diskproc]\nbackend = \"threads\"\n": true,
		"[diskproc]\nroot = \"site\"\n":       false,
		"[diskproc]\nroot = \"/srv/www\"\n":   false,
	} {
		c, err := Parse([]byte(doc), "x.toml")
		if err != nil {
			t.Fatal(err)
		}
		if c.Diskproc.RootDefaulted != want || c.Diskproc.Root == "" {
			t.Errorf("%q: root %q, RootDefaulted %v; want %v", doc, c.Diskproc.Root, c.Diskproc.RootDefaulted, want)
		}
	}
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Diskproc.RootDefaulted || !c.Diskproc.SampleSite {
		t.Errorf("built-in config: RootDefaulted %v, SampleSite %v", c.Diskproc.RootDefaulted, c.Diskproc.SampleSite)
	}
}

func TestIssueExample(t *testing.T) {
	// The example config the supervisor issue gives, spelled as tests write it.
	doc := `
[netproc]
backend = "auto"            # "usertcp", "kernel" or "auto"
netns = "saturn-default"    # usertcp: the namespace that holds the TUN device
address = "10.77.0.2/24"    # usertcp: saturn's address
restart = "always"          # "always", "on-failure" or "never"

[diskproc]
root = "/srv/saturn"
backend = "auto"
restart = "always"

[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", ":8080"]
restart = "always"
env = { GOGC = "200" }
backoff = "50ms"
max_backoff = "2s"
intensity = 3
period = "30s"
`
	c, err := Parse([]byte(doc), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	a, ok := c.App("web")
	if !ok || a.Env["GOGC"] != "200" || a.Command[2] != "webserver" || a.Intensity != 3 || a.Period.D() != 30*time.Second || a.Backoff.D() != 50*time.Millisecond {
		t.Fatalf("app: %+v", a)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown key", "[netproc]\nbackend = \"auto\"\nbogus = 1\n", "x.toml:3: netproc.bogus: unknown key"},
		{"unknown table", "[nope]\na = 1\n", "x.toml:1: nope"},
		{"bad restart", "[[app]]\nname = \"a\"\ncommand = [\"x\"]\n[[app]]\nname = \"b\"\ncommand = [\"y\"]\nrestart = \"sometimes\"\n", "x.toml:7: app.restart"},
		{"bad duration", "[diskproc]\nbackoff = \"soon\"\n", "x.toml:2: diskproc.backoff"},
		{"wrong type", "[netproc]\nnetns = 5\n", "x.toml:2: netproc.netns"},
		{"bad backend", "[netproc]\nbackend = \"dpdk\"\n", "x.toml:2: netproc.backend: \"dpdk\""},
		{"bad disk backend", "\n[diskproc]\nbackend = \"aio\"\n", "x.toml:3: diskproc.backend"},
		{"bad address", "[netproc]\naddress = \"10.77.0.2\"\n", "x.toml:2: netproc.address"},
		{"bad netns", "[netproc]\nnetns = \"has space\"\n", "x.toml:2: netproc.netns"},
		{"bad mtu", "[netproc]\nmtu = 100\n", "x.toml:2: netproc.mtu: 100"},
		{"bad congestion", "[netproc]\ncongestion = \"vegas\"\n", "x.toml:2: netproc.congestion: \"vegas\""},
		{"bad time_wait", "[netproc]\ntime_wait = \"1h\"\n", "x.toml:2: netproc.time_wait"},
		{"bad impair_drop", "[netproc]\nimpair_drop = 120.0\n", "x.toml:2: netproc.impair_drop"},
		{"negative max_sockets", "[netproc]\nmax_sockets = -1\n", "x.toml:2: netproc.max_sockets"},
		{"bad max_memory", "[netproc]\nmax_memory = \"lots\"\n", "x.toml:2: netproc.max_memory: size \"lots\""},
		{"bad max_apps", "[supervisor]\nmax_apps = -1\n", "x.toml:2: supervisor.max_apps: -1"},
		{"bad log level", "[supervisor]\nlog_level = \"loud\"\n", "x.toml:2: supervisor.log_level: \"loud\": want"},
		{"metrics without port", "[supervisor]\nmetrics = \"127.0.0.1\"\n", "x.toml:2: supervisor.metrics: \"127.0.0.1\": want HOST:PORT"},
		{"metrics bad port", "[supervisor]\nmetrics = \"127.0.0.1:http\"\n", "x.toml:2: supervisor.metrics: \"127.0.0.1:http\": port"},
		{"metrics bad host", "[supervisor]\nmetrics = \"example.com:9464\"\n", "x.toml:2: supervisor.metrics: \"example.com:9464\": host"},
		{"bad app type", "[[app]]\nname = \"a\"\ncommand = [\"x\"]\ntype = \"forking\"\n", "x.toml:4: app.type: app type \"forking\""},
		{"tiny max_pinned", "[diskproc]\nmax_pinned = \"1MiB\"\n", "x.toml:2: diskproc.max_pinned"},
		{"bad user", "[[app]]\nname = \"a\"\ncommand = [\"x\"]\nuser = \"Root Beer\"\n", "x.toml:4: app.user"},
		{"unknown server", "[[app]]\nname = \"a\"\ncommand = [\"x\"]\nservers = [\"gpuproc\"]\n", "x.toml:4: app.servers: \"gpuproc\""},
		{"server twice", "[[app]]\nname = \"a\"\ncommand = [\"x\"]\nservers = [\"netproc\", \"netproc\"]\n", "x.toml:4: app.servers: \"netproc\" is named twice"},
		{"bad listen grant", "[[app]]\nname = \"a\"\ncommand = [\"x\"]\nlisten = [\"8080\"]\n", "x.toml:4: app.listen: listen grant \"8080\""},
		{"bad disk_write", "[[app]]\nname = \"a\"\ncommand = [\"x\"]\ndisk_write = [\"../etc\"]\n", "x.toml:4: app.disk_write"},
		{"small max_connections", "[netproc]\nmax_connections = 10\n", "x.toml:2: netproc.max_connections: 10"},
		{"tiny max_memory", "[netproc]\nmax_memory = \"4KiB\"\n", "x.toml:2: netproc.max_memory: 4096 bytes: want at least 1MiB"},
		{"app max_sockets", "[[app]]\nname = \"a\"\ncommand = [\"x\"]\nmax_sockets = -5\n", "x.toml:4: app.max_sockets"},
		{"app max_memory", "[[app]]\nname = \"a\"\ncommand = [\"x\"]\nmax_memory = \"-1GiB\"\n", "x.toml:4: app.max_memory"},
		{"duplicate app", "[[app]]\nname = \"a\"\ncommand = [\"x\"]\n[[app]]\nname = \"a\"\ncommand = [\"y\"]\n", "x.toml:5: app.name: \"a\" names two apps"},
		{"reserved name", "[[app]]\nname = \"netproc\"\ncommand = [\"x\"]\n", "x.toml:2: app.name"},
		{"no command", "[[app]]\nname = \"a\"\n", "x.toml: app.command: app a has no command"},
		{"max below initial", "[netproc]\nbackoff = \"2s\"\nmax_backoff = \"1s\"\n", "x.toml:3: netproc.max_backoff"},
		{"syntax", "[netproc\n", "x.toml:1"},

		{"sq not a power of two", "[channel]\nsq_entries = 100\n", "x.toml:2: channel.sq_entries: 100: want a power of two from 1 to 1048576"},
		{"cq not a power of two", "[channel]\nsq_entries = 64\n\ncq_entries = 1000\n", "x.toml:4: channel.cq_entries: 1000: want a power of two"},
		{"sq too many", "[channel]\nsq_entries = 2097152\n", "x.toml:2: channel.sq_entries: 2097152"},
		{"cq too many", "[channel]\ncq_entries = 4294967295\n", "x.toml:2: channel.cq_entries: 4294967295"},
		{"sq a string", "[channel]\nsq_entries = \"256\"\n", "x.toml:2: channel.sq_entries"},
		{"buffer below a page", "[channel]\nbuffer_size = 2048\n", "x.toml:2: channel.buffer_size: 2048: want a multiple of 4096 (4KiB) from 4096 to 16777216 (16MiB)"},
		{"buffer not whole pages", "[channel]\nbuffer_size = 6000\n", "x.toml:2: channel.buffer_size: 6000"},
		{"buffer of 64 bytes", "[channel]\nbuffer_size = 64\n", "x.toml:2: channel.buffer_size: 64"},
		{"buffer too large", "[channel]\nbuffer_size = 33554432\n", "x.toml:2: channel.buffer_size: 33554432"},
		{"too many buffers", "[channel]\nbuffers = 1048577\n", "x.toml:2: channel.buffers: 1048577: want 2 to 1048576"},
		{"one buffer", "[channel]\nbuffer_size = 4096\nbuffers = 1\n", "x.toml:3: channel.buffers: 1: want 2 to 1048576"},
		{"region too large", "[channel]\nbuffer_size = 16777216\nbuffers = 1025\n", "x.toml:3: channel.buffers: 1025 buffers of 16777216 bytes make a channel of"},
		{"region too large default size", "[channel]\nbuffers = 1048576\n", "x.toml:2: channel.buffers: 1048576 buffers of 131072 bytes"},
		{"region too large in another order", "[channel]\nbuffers = 200000\nsq_entries = 8\nbuffer_size = 131072\n", "x.toml:2: channel.buffers: 200000 buffers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "x.toml")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestRelativeRoot(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "saturn.toml")
	os.WriteFile(path, []byte("[diskproc]\nroot = \"www\"\n[[app]]\nname = \"a\"\ncommand = [\"x\"]\ndir = \"work\"\n"), 0o644)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c.Resolve("/ignored")
	if c.Diskproc.Root != filepath.Join(dir, "www") || c.Apps[0].Dir != filepath.Join(dir, "work") {
		t.Fatalf("root %q dir %q", c.Diskproc.Root, c.Apps[0].Dir)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestPrintRoundTrip(t *testing.T) {
	c, err := Parse([]byte("[[app]]\nname = \"a\"\ncommand = [\"x\", \"y\"]\nbackoff = \"1.5s\"\nenv = { K = \"v\" }\n"), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Print(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, "printed")
	if err != nil {
		t.Fatalf("printed config does not parse: %v\n%s", err, out)
	}
	if back.Apps[0].Backoff != c.Apps[0].Backoff || back.Apps[0].Env["K"] != "v" || back.Netproc.Address != c.Netproc.Address {
		t.Fatalf("round trip lost values:\n%s", out)
	}
}

// TestLimits: an app's limits in netproc are its own where it sets them,
// [netproc]'s otherwise, and sizes take units.
func TestLimits(t *testing.T) {
	doc := "[netproc]\nmax_sockets = 5000\nmax_memory = \"512MiB\"\n" +
		"[[app]]\nname = \"big\"\ncommand = [\"x\"]\nmax_sockets = 200000\nmax_memory = 2147483648\n" +
		"[[app]]\nname = \"small\"\ncommand = [\"y\"]\n"
	c, err := Parse([]byte(doc), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	big, _ := c.App("big")
	small, _ := c.App("small")
	for _, tt := range []struct {
		app     *App
		sockets int
		memory  int64
	}{{big, 200000, 2 << 30}, {small, 5000, 512 << 20}, {nil, 5000, 512 << 20}} {
		if s, m := c.AppLimits(tt.app); s != tt.sockets || m != tt.memory {
			t.Errorf("limits of %v: %d sockets, %d bytes; want %d, %d", tt.app, s, m, tt.sockets, tt.memory)
		}
	}
	d, err := Parse(nil, "empty")
	if err != nil {
		t.Fatal(err)
	}
	if d.Netproc.MaxSockets != 100_000 || d.Netproc.MaxMemory != 1<<30 {
		t.Errorf("defaults: %d sockets, %d bytes", d.Netproc.MaxSockets, d.Netproc.MaxMemory)
	}
	for in, want := range map[string]ByteSize{"1048576": 1 << 20, "64M": 64 << 20, "3GiB": 3 << 30, "2 GB": 2 << 30, "512kib": 512 << 10} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(in)); err != nil || b != want {
			t.Errorf("%q: %d, %v; want %d", in, b, err, want)
		}
		text, _ := want.MarshalText()
		var back ByteSize
		if err := back.UnmarshalText(text); err != nil || back != want {
			t.Errorf("%d printed as %q reads back as %d, %v", want, text, back, err)
		}
	}
}

// TestChannelPastUint32: a [channel] number that does not fit its uint32
// fails at load too. go-toml reports it without a position (its integer
// range errors carry none), so the message names the file only.
func TestChannelPastUint32(t *testing.T) {
	for _, doc := range []string{"[channel]\nsq_entries = -1\n", "[channel]\nbuffers = 4294967296\n"} {
		if _, err := Parse([]byte(doc), "x.toml"); err == nil || !strings.Contains(err.Error(), "x.toml") {
			t.Errorf("%q: %v", doc, err)
		}
	}
}

// TestChannelGeometry: what Load accepts in [channel] is what ring.Create
// accepts, for buffers of whole pages and pools of two buffers or more, at
// the edges of every limit, and the defaults are accepted.
func TestChannelGeometry(t *testing.T) {
	d, err := Parse(nil, "empty")
	if err != nil {
		t.Fatal(err)
	}
	if g := d.Channel.Geometry(); g.Check() != nil || g.SQEntries != 256 || g.CQEntries != 512 || g.BufferSize != 128<<10 || g.BufferCount != 128 {
		t.Fatalf("default channel %+v: %v", g, g.Check())
	}
	entries := []uint64{1, 2, 3, 6, 64, 100, 256, 1 << 19, 1<<20 - 1, 1 << 20, 1<<20 + 1, 1 << 21, 1 << 31, 1<<32 - 1}
	sizes := []uint64{64, 2048, 4095, 4096, 6000, 8192, 12288, 128 << 10, 16<<20 - 4096, 16 << 20, 16<<20 + 4096, 1 << 31}
	counts := []uint64{1, 2, 127, 1000, 1023, 1024, 1025, 4096, 1 << 17, 1 << 20, 1<<20 + 1}
	accepted := 0
	for _, sq := range entries {
		for _, size := range sizes {
			for _, n := range counts {
				cq := entries[(sq+n)%uint64(len(entries))]
				doc := fmt.Sprintf("[channel]\nsq_entries = %d\ncq_entries = %d\nbuffer_size = %d\nbuffers = %d\n", sq, cq, size, n)
				c, err := Parse([]byte(doc), "x.toml")
				g := ring.Geometry{
					SQEntrySize: proto.SubmissionSize, SQEntries: uint32(sq),
					CQEntrySize: proto.CompletionSize, CQEntries: uint32(cq),
					BufferSize: uint32(size), BufferCount: uint32(n),
				}
				ringOK := g.Check() == nil && size%4096 == 0 && n >= 2
				if err == nil {
					accepted++
					if got := c.Channel.Geometry(); got != g {
						t.Errorf("%s: geometry %+v, want %+v", doc, got, g)
					}
				}
				if (err == nil) != ringOK {
					t.Errorf("sq %d cq %d buffer_size %d buffers %d: Load says %v, ring.Geometry.Check says %v", sq, cq, size, n, err, g.Check())
				}
				if err != nil && !strings.Contains(err.Error(), "x.toml:") {
					t.Errorf("%v: no file and line", err)
				}
			}
		}
	}
	if accepted == 0 {
		t.Fatal("nothing accepted")
	}
}

// TestMetricsAddress: the endpoint is on by default on loopback; an empty
// address turns it off, and survives printing and parsing again (the
// servers read the printed config).
func TestMetricsAddress(t *testing.T) {
	c, err := Parse([]byte("[netproc]\nbackend = \"kernel\"\n"), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Supervisor.Metrics != DefaultMetrics {
		t.Errorf("metrics by default %q, want %q", c.Supervisor.Metrics, DefaultMetrics)
	}
	for _, addr := range []string{"", "127.0.0.1:0", "[::1]:9464", ":9464", "localhost:9100"} {
		c, err := Parse([]byte("[supervisor]\nmetrics = \""+addr+"\"\n"), "x.toml")
		if err != nil {
			t.Fatalf("metrics %q: %v", addr, err)
		}
		printed, err := Print(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(printed, "printed")
		if err != nil {
			t.Fatal(err)
		}
		if c.Supervisor.Metrics != addr || again.Supervisor.Metrics != addr {
			t.Errorf("metrics %q: parsed %q, printed and parsed %q", addr, c.Supervisor.Metrics, again.Supervisor.Metrics)
		}
	}
}
