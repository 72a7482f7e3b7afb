// Package configs holds saturn's configuration: its types, the TOML parser
// that reads them (with errors that name the file, line and key), and the
// default configuration embedded in the binary.
package configs

import (
	"cmp"
	_ "embed"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"saturn/proto"
	"saturn/ring"
)

//go:embed default.toml
var defaultTOML []byte

// DefaultTOML is the embedded default configuration's text.
func DefaultTOML() []byte { return slices.Clone(defaultTOML) }

// Config is a whole instance's configuration.
type Config struct {
	Supervisor Supervisor `toml:"supervisor"`
	Netproc    Netproc    `toml:"netproc"`
	Diskproc   Diskproc   `toml:"diskproc"`
	Channel    Channel    `toml:"channel"`
	Apps       []App      `toml:"app,omitempty"`

	// Source is the file the configuration came from, or "" for the
	// embedded default.
	Source string `toml:"-"`
}

// Supervisor tunes the supervisor itself.
type Supervisor struct {
	// StopGrace is how long a component has after SIGTERM before SIGKILL.
	StopGrace Duration `toml:"stop_grace"`
	// ReadyTimeout is how long a component may take to report ready.
	ReadyTimeout Duration `toml:"ready_timeout"`
	// MaxApps is how many apps may be attached at once. netproc and
	// diskproc guarantee each of that many its share of what they hold
	// for all (sockets, open files), so that no app can take another's;
	// an attach past it is refused.
	MaxApps int `toml:"max_apps"`
	// Metrics is the address of the Prometheus endpoint (/metrics);
	// "" turns it off. An address already taken is logged, and the
	// instance runs without it (docs/design.md).
	Metrics string `toml:"metrics"`
	// LogLevel is the supervisor's log level: "debug", "info" (the
	// default), "warn" or "error". A reload (SIGHUP) applies a new one.
	LogLevel string `toml:"log_level"`
}

// ParseLogLevel reads a log_level value.
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	switch s {
	case "debug", "info", "warn", "error":
		return l, l.UnmarshalText([]byte(s))
	}
	return l, fmt.Errorf("%q: want \"debug\", \"info\", \"warn\" or \"error\"", s)
}

// DefaultMetrics is where the Prometheus endpoint listens unless the config
// says otherwise: loopback, the port OpenTelemetry's Prometheus exporter
// took in Prometheus's list of default ports.
const DefaultMetrics = "127.0.0.1:9464"

// Policy is a component's restart policy, in the manner of Erlang/OTP
// supervisors and systemd: what to do when it exits, how long to wait
// before starting it again (exponential back-off from Backoff to
// MaxBackoff), and the intensity limit: at most Intensity restarts within
// Period, after which the component is marked failed.
type Policy struct {
	Restart    RestartMode `toml:"restart"`
	Backoff    Duration    `toml:"backoff"`
	MaxBackoff Duration    `toml:"max_backoff"`
	Intensity  int         `toml:"intensity"`
	Period     Duration    `toml:"period"`
}

// Netproc configures the network server.
type Netproc struct {
	Policy
	Backend string `toml:"backend"` // "usertcp", "kernel" or "auto"
	Netns   string `toml:"netns"`   // usertcp: the namespace holding the TUN device
	Address string `toml:"address"` // usertcp: saturn's address with prefix length
	// usertcp: netproc's own link impairment (the kernel here has no
	// netem), in both directions: percentages of packets dropped,
	// duplicated and reordered, a delay, and the seed that makes a run
	// repeatable. All zero (the default): no impairment.
	ImpairDrop      float64  `toml:"impair_drop"`
	ImpairDuplicate float64  `toml:"impair_duplicate"`
	ImpairReorder   float64  `toml:"impair_reorder"`
	ImpairDelay     Duration `toml:"impair_delay"`
	ImpairSeed      uint64   `toml:"impair_seed"`
	// MaxSockets bounds the sockets (connections and listeners) one app
	// may hold in netproc, EMFILE past it; MaxMemory bounds the memory
	// netproc spends on them (each socket's fixed cost and what its
	// buffers hold), ENOBUFS for new connections past it. Both are the
	// default of every app; an [[app]] sets its own.
	MaxSockets int      `toml:"max_sockets"`
	MaxMemory  ByteSize `toml:"max_memory"`
	// usertcp: how many connections the stack holds, all apps together,
	// in every state (TIME-WAIT included): its connection table's size.
	// A connection costs its record (1 KiB) once used, and its buffers
	// only what they hold.
	MaxConnections int `toml:"max_connections"`
	// usertcp: the link's MTU (the MSS follows from it), the congestion
	// control of every connection ("cubic", "reno", or "bbr": BBR v1 with
	// pacing, which does not read random loss as congestion) and how long
	// TIME-WAIT lasts.
	MTU        int      `toml:"mtu"`
	Congestion string   `toml:"congestion"`
	TimeWait   Duration `toml:"time_wait"`
	// usertcp: connections and listeners survive netproc's death (see
	// docs/restart.md): a restarted netproc resumes them, and apps replay
	// what the dead one took. On unless false (Resumes).
	Resume *bool `toml:"resume,omitempty"`
	// usertcp: ECN offers Explicit Congestion Notification (RFC 3168) on
	// every connection: negotiated in the handshake, and a mark the
	// network sets is answered as a loss would be, without a
	// retransmission. Off by default, as Linux leaves it for the
	// connections it opens.
	ECN bool `toml:"ecn,omitempty"`
	// usertcp: HostRoute joins saturn's namespace to the host (a veth
	// pair, and a route on the host for saturn's prefix through it), so
	// that the host reaches saturn's address without `ip netns exec`.
	// On by default; false leaves the namespace closed to the host.
	HostRoute *bool `toml:"host_route,omitempty"`
	// usertcp: Publish forwards ports of the host to saturn's address,
	// as Docker's -p does: "HOSTADDR:HOSTPORT:PORT" (or "HOSTPORT:PORT",
	// on 127.0.0.1). netproc accepts on the host and connects to PORT
	// on saturn's address inside the namespace. See ParsePublish.
	Publish []string `toml:"publish,omitempty"`
	// User is who netproc runs as once its link is set up, when the
	// supervisor is root: "dynamic" (the default: a uid of its own, as
	// an app's), "inherit" (the supervisor's user, with every
	// capability), a user's name, or UID[:GID]. See docs/security.md.
	User string `toml:"user,omitempty"`
}

// Diskproc configures the disk server.
type Diskproc struct {
	Policy
	Root    string `toml:"root"`    // every path an app opens resolves beneath this
	Backend string `toml:"backend"` // "uring", "threads" or "auto"
	// Each app's limits: files open at once (EMFILE past it), and requests
	// in flight (EAGAIN past it).
	MaxOpen int `toml:"max_open_files"`
	// SampleSite: write saturn's sample site into Root when it is empty
	// (the built-in configuration does, for its web server).
	SampleSite  bool `toml:"sample_site"`
	MaxInflight int  `toml:"max_inflight"`
	// MaxPinned bounds the memory the io_uring backend pins by
	// registering apps' channel buffers with the kernel; channels past it
	// are served without registered buffers.
	MaxPinned ByteSize `toml:"max_pinned"`
	// User is who diskproc runs as once it holds its root, as netproc's:
	// "dynamic" by default, so the root must be readable (and the
	// folders apps may write in writable) by that uid.
	User string `toml:"user,omitempty"`
	// RootDefaulted: the config names no root, so Root is saturn's own
	// default ("site" beside the config file), which the supervisor may
	// create. A root the config names must exist (unless SampleSite).
	RootDefaulted bool `toml:"-"`
}

// Channel sets the geometry of every app's channels. The default buffer
// (128 KiB, 128 of them: 16 MiB of shared memory per channel, touched only
// where used) holds a typical web response whole, head and body, so that it
// costs one send; with 64 KiB a 100 KiB response took two of everything,
// worth about a tenth of the web server's throughput (docs/benchmarks.md).
//
// Load checks the values against what ring.Create accepts (ring sizes that
// are powers of two, buffers of whole pages, a bounded region), so that a
// bad one is refused with its line rather than failing every app's
// channels at start.
type Channel struct {
	SQEntries  uint32 `toml:"sq_entries"`
	CQEntries  uint32 `toml:"cq_entries"`
	BufferSize uint32 `toml:"buffer_size"`
	Buffers    uint32 `toml:"buffers"`
}

// Geometry is the shape of a channel's region: the ring entries of saturn's
// ABI, in the numbers the config gives.
func (ch Channel) Geometry() ring.Geometry {
	return ring.Geometry{
		SQEntrySize: proto.SubmissionSize, SQEntries: ch.SQEntries,
		CQEntrySize: proto.CompletionSize, CQEntries: ch.CQEntries,
		BufferSize: ch.BufferSize, BufferCount: ch.Buffers,
	}
}

// minBufferSize is the smallest channel buffer: a page, so that buffers
// stay page-aligned (what O_DIRECT reads into) and a path of
// proto.MaxPathLen bytes fits in one.
const minBufferSize = 4 << 10

// minBuffers is the fewest buffers a channel works with: appproc provides
// a share of the pool, at least one buffer, to netproc for the receives
// and accepts it waits on (appproc/provide.go), so a pool of one leaves
// nothing to send with and the app stalls at its first response.
const minBuffers = 2

// check refuses a geometry ring.Create would refuse, naming the key: ring
// sizes that are not powers of two within ring.MaxEntries, a buffer size
// that is not a whole number of pages up to ring.MaxBufferSize, more than
// ring.MaxBufferCount buffers, and a region larger than ring.MaxRegionSize;
// and a pool too small for an app to use (minBuffers).
func (ch *Channel) check() error {
	for _, r := range []struct {
		key string
		n   uint32
	}{{"channel.sq_entries", ch.SQEntries}, {"channel.cq_entries", ch.CQEntries}} {
		if r.n == 0 || r.n > ring.MaxEntries || bits.OnesCount32(r.n) != 1 {
			return &fieldError{r.key, -1, fmt.Sprintf("%d: want a power of two from 1 to %d", r.n, ring.MaxEntries)}
		}
	}
	if b := ch.BufferSize; b < minBufferSize || b%minBufferSize != 0 || b > ring.MaxBufferSize {
		return &fieldError{"channel.buffer_size", -1, fmt.Sprintf("%d: want a multiple of %d (4KiB) from %d to %d (16MiB)",
			b, minBufferSize, minBufferSize, ring.MaxBufferSize)}
	}
	if n := ch.Buffers; n < minBuffers || n > ring.MaxBufferCount {
		return &fieldError{"channel.buffers", -1, fmt.Sprintf("%d: want %d to %d (an app lends some of them to netproc for receives and needs another to send)",
			n, minBuffers, ring.MaxBufferCount)}
	}
	// Every field is now within ring's bounds, so the size cannot overflow.
	// Only buffers can take a region past the limit: rings of the most
	// entries take 96MiB, and the largest buffers, 128 of them (the
	// default count), 2GiB.
	g := ch.Geometry()
	if size := g.Size(); size > ring.MaxRegionSize {
		return &fieldError{"channel.buffers", -1, fmt.Sprintf("%d buffers of %d bytes make a channel of %d bytes; a channel may take at most %d (16GiB) of shared memory",
			ch.Buffers, ch.BufferSize, size, int64(ring.MaxRegionSize))}
	}
	if err := g.Check(); err != nil {
		return fmt.Errorf("[channel]: %w", err) // unreachable while the checks above match ring's
	}
	return nil
}

// App is an app process the supervisor starts and watches.
type App struct {
	Policy
	Name    string            `toml:"name"`
	Command []string          `toml:"command"`
	Env     map[string]string `toml:"env"`
	Dir     string            `toml:"dir"`
	// MaxSockets and MaxMemory are the app's own limits in netproc
	// ([netproc]'s when unset).
	MaxSockets int      `toml:"max_sockets,omitempty"`
	MaxMemory  ByteSize `toml:"max_memory,omitempty"`
	// User is who the app runs as when the supervisor is root (see
	// docs/security.md): "dynamic" (the default: a uid of its own, no
	// account's), "inherit" (the supervisor's), a user's name, or
	// "UID[:GID]".
	User string `toml:"user,omitempty"`
	// Grants (docs/security.md): the servers it gets channels to (default:
	// all), the addresses it may listen on ("HOST:PORT", * for any;
	// default: anywhere, ports 1024 and up), and the folders beneath
	// diskproc's root it may write in (default: none).
	Servers   []string `toml:"servers,omitempty"`
	Listen    []string `toml:"listen,omitempty"`
	DiskWrite []string `toml:"disk_write,omitempty"`
	// Type says when the app counts as running: "simple" once its program
	// has started, "notify" once it attaches (appproc) or says it is ready,
	// "auto" (the default, also "") notify for a program that links saturn
	// and simple for any other. See docs/design.md.
	Type string `toml:"type,omitempty"`
}

// App types: when an app counts as running (App.Type).
const (
	AppAuto   = "auto"
	AppSimple = "simple"
	AppNotify = "notify"
)

// CheckAppType reports whether t names an app type ("" is auto).
func CheckAppType(t string) error {
	switch t {
	case "", AppAuto, AppSimple, AppNotify:
		return nil
	}
	return fmt.Errorf("app type %q: want \"simple\", \"notify\" or \"auto\"", t)
}

// Servers that apps may have channels to.
var ServerNames = []string{"netproc", "diskproc"}

// AppServers is the servers app gets channels to: those its grants name,
// or all for an app the config does not list or that names none.
func AppServers(app *App) []string {
	if app == nil || len(app.Servers) == 0 {
		return slices.Clone(ServerNames)
	}
	return slices.Clone(app.Servers)
}

// RestartMode says when a component that exited is started again.
type RestartMode string

const (
	RestartAlways    RestartMode = "always"     // whatever the exit
	RestartOnFailure RestartMode = "on-failure" // unless it exited with status 0
	RestartNever     RestartMode = "never"
)

// UnmarshalText refuses modes other than the three.
func (m *RestartMode) UnmarshalText(b []byte) error {
	switch v := RestartMode(b); v {
	case RestartAlways, RestartOnFailure, RestartNever:
		*m = v
		return nil
	}
	return fmt.Errorf("restart %q: want \"always\", \"on-failure\" or \"never\"", b)
}

// Duration is a time.Duration written as a Go duration string ("1.5s").
type Duration time.Duration

// UnmarshalText parses a duration string; negative durations are refused.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit, such as \"250ms\" or \"2s\"", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration back as a string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a count of bytes written as a number with an optional unit:
// "1048576", "512KiB", "64MiB", "1GiB" (or "K", "M", "G", "KB", "MB",
// "GB", all powers of 1024 as memory sizes are).
type ByteSize int64

// UnmarshalText parses a size; negative sizes are refused.
func (b *ByteSize) UnmarshalText(t []byte) error {
	s := strings.TrimSpace(string(t))
	num := strings.TrimRight(s, "KMGTiBkmgtib ")
	unit := strings.ToUpper(strings.TrimSpace(s[len(num):]))
	mult := map[string]int64{"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
		"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}[unit]
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || v < 0 || v > math.MaxInt64/mult {
		return fmt.Errorf("size %q: want a whole number of bytes with an optional unit, such as \"512MiB\" or \"2GiB\"", s)
	}
	*b = ByteSize(v * mult)
	return nil
}

// UnmarshalTOML takes a size written as a bare integer too.
func (b *ByteSize) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("size %d is negative", x)
		}
		*b = ByteSize(x)
		return nil
	case string:
		return b.UnmarshalText([]byte(x))
	}
	return fmt.Errorf("size: want a number of bytes or a string such as \"512MiB\", not %v", v)
}

// MarshalText writes the size with the largest unit that divides it.
func (b ByteSize) MarshalText() ([]byte, error) {
	for _, u := range []struct {
		s string
		n int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return []byte(strconv.FormatInt(int64(b)/u.n, 10) + u.s), nil
		}
	}
	return []byte(strconv.FormatInt(int64(b), 10)), nil
}

// Defaults for everything a config may leave out.
var defaultPolicy = Policy{
	Restart:    RestartAlways,
	Backoff:    Duration(100 * time.Millisecond),
	MaxBackoff: Duration(10 * time.Second),
	Intensity:  5,
	Period:     Duration(10 * time.Second),
}

// FillDefaults gives every field p leaves unset its default.
func (p *Policy) FillDefaults() {
	p.Restart = cmp.Or(p.Restart, defaultPolicy.Restart)
	p.Backoff = cmp.Or(p.Backoff, defaultPolicy.Backoff)
	p.MaxBackoff = cmp.Or(p.MaxBackoff, max(defaultPolicy.MaxBackoff, p.Backoff))
	p.Intensity = cmp.Or(p.Intensity, defaultPolicy.Intensity)
	p.Period = cmp.Or(p.Period, defaultPolicy.Period)
}

func (c *Config) fillDefaults() {
	c.Supervisor.StopGrace = cmp.Or(c.Supervisor.StopGrace, Duration(5*time.Second))
	c.Supervisor.ReadyTimeout = cmp.Or(c.Supervisor.ReadyTimeout, Duration(10*time.Second))
	c.Supervisor.MaxApps = cmp.Or(c.Supervisor.MaxApps, 64)
	c.Supervisor.LogLevel = cmp.Or(c.Supervisor.LogLevel, "info")
	c.Diskproc.MaxPinned = cmp.Or(c.Diskproc.MaxPinned, 256<<20)
	c.Netproc.FillDefaults()
	c.Netproc.Backend = cmp.Or(c.Netproc.Backend, "auto")
	c.Netproc.Netns = cmp.Or(c.Netproc.Netns, "saturn-default")
	c.Netproc.Address = cmp.Or(c.Netproc.Address, "10.77.0.2/24")
	c.Netproc.MTU = cmp.Or(c.Netproc.MTU, 1500)
	c.Netproc.Congestion = cmp.Or(c.Netproc.Congestion, "cubic")
	c.Netproc.MaxSockets = cmp.Or(c.Netproc.MaxSockets, 100_000)
	c.Netproc.MaxMemory = cmp.Or(c.Netproc.MaxMemory, 1<<30)
	c.Netproc.MaxConnections = cmp.Or(c.Netproc.MaxConnections, 131072)
	c.Netproc.TimeWait = cmp.Or(c.Netproc.TimeWait, Duration(60*time.Second)) // as Linux
	c.Diskproc.FillDefaults()
	c.Diskproc.Backend = cmp.Or(c.Diskproc.Backend, "auto")
	if c.Diskproc.Root == "" {
		c.Diskproc.Root, c.Diskproc.RootDefaulted = "site", true
	}
	c.Diskproc.MaxOpen = cmp.Or(c.Diskproc.MaxOpen, 1024)
	c.Diskproc.MaxInflight = cmp.Or(c.Diskproc.MaxInflight, 1024)
	c.Channel.SQEntries = cmp.Or(c.Channel.SQEntries, 256)
	c.Channel.CQEntries = cmp.Or(c.Channel.CQEntries, 512)
	c.Channel.BufferSize = cmp.Or(c.Channel.BufferSize, 128<<10)
	c.Channel.Buffers = cmp.Or(c.Channel.Buffers, 128)
	for i := range c.Apps {
		c.Apps[i].FillDefaults()
	}
}

// Names that apps may not take: the servers' and the supervisor's own.
var reservedNames = []string{"netproc", "diskproc", "supervisor"}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// CheckName reports whether name may name an app.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("name %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	if slices.Contains(reservedNames, name) {
		return fmt.Errorf("name %q is reserved for saturn's own components", name)
	}
	return nil
}

// fieldError is a semantic error about one key, located later.
type fieldError struct {
	key string // dotted TOML key, e.g. "netproc.backend" or "app.restart"
	nth int    // for keys inside [[app]]: which one (0-based); -1 otherwise
	msg string
}

func (e *fieldError) Error() string { return e.key + ": " + e.msg }

func (p *Policy) check(section string, nth int) error {
	if p.MaxBackoff < p.Backoff {
		return &fieldError{section + ".max_backoff", nth, fmt.Sprintf("%s is less than backoff %s", p.MaxBackoff.D(), p.Backoff.D())}
	}
	if p.Intensity < 0 {
		return &fieldError{section + ".intensity", nth, fmt.Sprintf("%d is negative", p.Intensity)}
	}
	return nil
}

func (c *Config) check() error {
	if _, err := ParseLogLevel(c.Supervisor.LogLevel); err != nil {
		return &fieldError{"supervisor.log_level", -1, err.Error()}
	}
	if err := c.Netproc.check("netproc", -1); err != nil {
		return err
	}
	if err := checkUser("netproc.user", -1, c.Netproc.User); err != nil {
		return err
	}
	for _, p := range c.Netproc.Publish {
		if _, err := ParsePublish(p); err != nil {
			return &fieldError{"netproc.publish", -1, err.Error()}
		}
	}
	if err := checkUser("diskproc.user", -1, c.Diskproc.User); err != nil {
		return err
	}
	switch c.Netproc.Backend {
	case "auto", "usertcp", "kernel":
	default:
		return &fieldError{"netproc.backend", -1, fmt.Sprintf("%q: want \"usertcp\", \"kernel\" or \"auto\"", c.Netproc.Backend)}
	}
	if !nameRE.MatchString(c.Netproc.Netns) || len(c.Netproc.Netns) > 15 {
		return &fieldError{"netproc.netns", -1, fmt.Sprintf("%q: use 1 to 15 letters, digits, '.', '_' or '-'", c.Netproc.Netns)}
	}
	pfx, err := netip.ParsePrefix(c.Netproc.Address)
	if err != nil || !pfx.Addr().Is4() || pfx.Bits() < 8 || pfx.Bits() > 30 {
		return &fieldError{"netproc.address", -1, fmt.Sprintf("%q: want an IPv4 address with a prefix length from 8 to 30, such as \"10.77.0.2/24\"", c.Netproc.Address)}
	}
	for _, p := range []struct {
		key string
		v   float64
	}{{"impair_drop", c.Netproc.ImpairDrop}, {"impair_duplicate", c.Netproc.ImpairDuplicate}, {"impair_reorder", c.Netproc.ImpairReorder}} {
		if p.v < 0 || p.v > 100 || p.v != p.v {
			return &fieldError{"netproc." + p.key, -1, fmt.Sprintf("%v: want a percentage from 0 to 100", p.v)}
		}
	}
	if err := checkLimits("netproc", -1, c.Netproc.MaxSockets, c.Netproc.MaxMemory); err != nil {
		return err
	}
	if n := c.Netproc.MaxConnections; n < 1024 || n > 1<<24 {
		return &fieldError{"netproc.max_connections", -1, fmt.Sprintf("%d: want 1024 to %d", n, 1<<24)}
	}
	if c.Netproc.MTU < 576 || c.Netproc.MTU > 65535 {
		return &fieldError{"netproc.mtu", -1, fmt.Sprintf("%d: want 576 to 65535", c.Netproc.MTU)}
	}
	switch c.Netproc.Congestion {
	case "cubic", "reno", "bbr":
	default:
		return &fieldError{"netproc.congestion", -1, fmt.Sprintf("%q: want \"cubic\", \"reno\" or \"bbr\"", c.Netproc.Congestion)}
	}
	if tw := c.Netproc.TimeWait.D(); tw < time.Millisecond || tw > 10*time.Minute {
		return &fieldError{"netproc.time_wait", -1, fmt.Sprintf("%s: want 1ms to 10m", tw)}
	}
	if c.Netproc.ImpairDelay.D() > 10*time.Second {
		return &fieldError{"netproc.impair_delay", -1, fmt.Sprintf("%s: at most 10s", c.Netproc.ImpairDelay.D())}
	}
	if n := c.Supervisor.MaxApps; n < 1 || n > 4096 {
		return &fieldError{"supervisor.max_apps", -1, fmt.Sprintf("%d: want 1 to 4096", n)}
	}
	if m := c.Supervisor.Metrics; m != "" {
		if err := CheckListenAddr(m); err != nil {
			return &fieldError{"supervisor.metrics", -1, err.Error() + " (\"\" turns the endpoint off)"}
		}
	}
	if n := c.Supervisor.MaxApps; len(c.Apps) > n {
		return &fieldError{"supervisor.max_apps", -1, fmt.Sprintf("%d, but the config lists %d apps", n, len(c.Apps))}
	}
	if p := c.Diskproc.MaxPinned; p < 16<<20 {
		return &fieldError{"diskproc.max_pinned", -1, fmt.Sprintf("%d bytes: want at least 16MiB (one channel's buffers)", p)}
	}
	if err := c.Diskproc.check("diskproc", -1); err != nil {
		return err
	}
	switch c.Diskproc.Backend {
	case "auto", "uring", "threads":
	default:
		return &fieldError{"diskproc.backend", -1, fmt.Sprintf("%q: want \"uring\", \"threads\" or \"auto\"", c.Diskproc.Backend)}
	}
	if c.Diskproc.MaxOpen < 0 {
		return &fieldError{"diskproc.max_open_files", -1, fmt.Sprintf("%d is negative", c.Diskproc.MaxOpen)}
	}
	if c.Diskproc.MaxInflight < 0 {
		return &fieldError{"diskproc.max_inflight", -1, fmt.Sprintf("%d is negative", c.Diskproc.MaxInflight)}
	}
	if err := c.Channel.check(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range c.Apps {
		a := &c.Apps[i]
		if err := CheckName(a.Name); err != nil {
			return &fieldError{"app.name", i, err.Error()}
		}
		if seen[a.Name] {
			return &fieldError{"app.name", i, fmt.Sprintf("%q names two apps", a.Name)}
		}
		seen[a.Name] = true
		if len(a.Command) == 0 || a.Command[0] == "" {
			return &fieldError{"app.command", i, "app " + a.Name + " has no command"}
		}
		if err := a.check("app", i); err != nil {
			return err
		}
		if err := checkLimits("app", i, a.MaxSockets, a.MaxMemory); err != nil {
			return err
		}
		if err := a.checkGrants(i); err != nil {
			return err
		}
		if err := CheckAppType(a.Type); err != nil {
			return &fieldError{"app.type", i, err.Error()}
		}
	}
	return nil
}

// checkLimits checks a section's max_sockets and max_memory.
func checkLimits(section string, nth, sockets int, memory ByteSize) error {
	const maxSockets = 1 << 24
	if sockets < 0 || sockets > maxSockets {
		return &fieldError{section + ".max_sockets", nth, fmt.Sprintf("%d: want 1 to %d (0: the default)", sockets, maxSockets)}
	}
	if memory != 0 && memory < 1<<20 {
		return &fieldError{section + ".max_memory", nth, fmt.Sprintf("%d bytes: want at least 1MiB (0: the default)", memory)}
	}
	return nil
}

// AppLimits is app's limits in netproc, its own over [netproc]'s.
func (c *Config) AppLimits(app *App) (sockets int, memory int64) {
	sockets, memory = c.Netproc.MaxSockets, int64(c.Netproc.MaxMemory)
	if app != nil && app.MaxSockets > 0 {
		sockets = app.MaxSockets
	}
	if app != nil && app.MaxMemory > 0 {
		memory = int64(app.MaxMemory)
	}
	return sockets, memory
}

// Resolve makes relative paths absolute: against the config file's folder,
// or against base for the embedded default.
func (c *Config) Resolve(base string) {
	dir := base
	if c.Source != "" {
		dir = filepath.Dir(c.Source)
	}
	if !filepath.IsAbs(c.Diskproc.Root) {
		c.Diskproc.Root = filepath.Join(dir, c.Diskproc.Root)
	}
	for i := range c.Apps {
		if c.Apps[i].Dir != "" && !filepath.IsAbs(c.Apps[i].Dir) {
			c.Apps[i].Dir = filepath.Join(dir, c.Apps[i].Dir)
		}
	}
}

// Load reads the configuration at path, or the embedded default when path
// is empty, fills in defaults and checks every value. Errors name the file,
// the line and the key.
func Load(path string) (*Config, error) {
	data, name := defaultTOML, "default config (embedded)"
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		data, err = os.ReadFile(abs)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		path, name = abs, abs
	}
	c, err := Parse(data, name)
	if err != nil {
		return nil, err
	}
	c.Source = path
	return c, nil
}

// EnvList returns the app's environment as KEY=VALUE strings, sorted.
func (a *App) EnvList() []string {
	var env []string
	for k, v := range a.Env {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// ServerPolicy returns the policy of the server called name.
func (c *Config) ServerPolicy(name string) (Policy, bool) {
	switch name {
	case "netproc":
		return c.Netproc.Policy, true
	case "diskproc":
		return c.Diskproc.Policy, true
	}
	return Policy{}, false
}

// App returns the app called name.
func (c *Config) App(name string) (*App, bool) {
	for i := range c.Apps {
		if c.Apps[i].Name == name {
			return &c.Apps[i], true
		}
	}
	return nil, false
}

// userRE is what a user key may say besides its keywords: a name as
// useradd takes it, or UID[:GID].
var userRE = regexp.MustCompile(`^([a-z_][a-z0-9_-]{0,31}|[0-9]+(:[0-9]+)?)$`)

// CheckListenAddr checks an address to listen on: HOST:PORT with a
// numeric port (HOST may be empty for every address).
func CheckListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want HOST:PORT, such as \"127.0.0.1:9464\"", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q: host %q is not an IP address", addr, host)
		}
	}
	return nil
}

// checkUser checks a user key: key names it in errors, nth is the app's
// index or -1.
func checkUser(key string, nth int, user string) error {
	if user != "" && user != "dynamic" && user != "inherit" && !userRE.MatchString(user) {
		return &fieldError{key, nth, fmt.Sprintf("%q: want \"dynamic\", \"inherit\", a user's name, or UID[:GID]", user)}
	}
	return nil
}

// checkGrants checks an app's user and grants.
func (a *App) checkGrants(nth int) error {
	if err := checkUser("app.user", nth, a.User); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, s := range a.Servers {
		if !slices.Contains(ServerNames, s) {
			return &fieldError{"app.servers", nth, fmt.Sprintf("%q: want %q", s, ServerNames)}
		}
		if seen[s] {
			return &fieldError{"app.servers", nth, fmt.Sprintf("%q is named twice", s)}
		}
		seen[s] = true
	}
	for _, l := range a.Listen {
		if _, err := proto.ParseListenGrant(l); err != nil {
			return &fieldError{"app.listen", nth, err.Error()}
		}
	}
	for _, d := range a.DiskWrite {
		clean := strings.Trim(d, "/")
		if clean == "" || clean == "." {
			continue // the whole root
		}
		if _, err := proto.CheckPath(clean); err != nil {
			return &fieldError{"app.disk_write", nth, fmt.Sprintf("%q: want a folder beneath diskproc's root, such as \"uploads\": %v", d, err)}
		}
	}
	return nil
}
