package proto

import "time"

// Bodies of control messages. Field names are short on the wire; the JSON
// tags are what `saturn status --json` prints.

// Error codes carried by ErrorReply.
const (
	CodeBadRequest = "bad-request" // malformed, oversized or unknown message
	CodeVersion    = "version"     // unsupported protocol version
	CodeNotFound   = "not-found"   // no component of that name
	CodeExists     = "exists"      // a component of that name already exists
	CodeDenied     = "denied"      // the peer may not ask this
	CodeFailed     = "failed"      // the request was valid but did not succeed
)

// ErrorReply answers a request that failed.
type ErrorReply struct {
	Code    string `msgpack:"code"`
	Message string `msgpack:"msg"`
}

func (e *ErrorReply) Error() string { return e.Message + " (" + e.Code + ")" }

// Status asks the supervisor for every component's state.
type Status struct{}

// StatusReply answers Status.
type StatusReply struct {
	Instance   string            `msgpack:"instance" json:"instance"`
	Supervisor int               `msgpack:"pid" json:"supervisor_pid"`
	Components []ComponentStatus `msgpack:"components" json:"components"`
	// Metrics is the URL of the Prometheus endpoint ([supervisor]
	// metrics); "" when it is off, or could not listen, which
	// MetricsError then says.
	Metrics      string `msgpack:"metrics,omitempty" json:"metrics,omitempty"`
	MetricsError string `msgpack:"metrics_err,omitempty" json:"metrics_error,omitempty"`
	// Config is the configuration in force.
	Config *ConfigStatus `msgpack:"config,omitempty" json:"config,omitempty"`
}

// ConfigStatus is what status shows of the configuration in force: where it
// came from, its generation (1 at start, one more at each reload that
// applied), when that generation was read, and why the last reload failed
// ("" if it did not).
type ConfigStatus struct {
	Source      string    `msgpack:"source" json:"source"`
	Generation  int       `msgpack:"gen" json:"generation"`
	LoadedAt    time.Time `msgpack:"loaded" json:"loaded_at"`
	ReloadError string    `msgpack:"reload_err,omitempty" json:"reload_error,omitempty"`
	// NeedsRestart names the keys ("netproc.backend") whose new values
	// the running instance kept as they were: they take effect at its
	// next start.
	NeedsRestart []string `msgpack:"needs_restart,omitempty" json:"needs_restart,omitempty"`
}

// Component kinds and states as status reports them.
const (
	KindServer = "server"
	KindApp    = "app"

	StateStarting   = "starting"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateFailed     = "failed"
	StateStopped    = "stopped"
)

// ComponentStatus is one row of status.
type ComponentStatus struct {
	Name     string            `msgpack:"name" json:"name"`
	Kind     string            `msgpack:"kind" json:"kind"`
	PID      int               `msgpack:"pid" json:"pid"`
	State    string            `msgpack:"state" json:"state"`
	Uptime   float64           `msgpack:"uptime" json:"uptime_seconds"`
	Restarts int               `msgpack:"restarts" json:"restarts"`
	LastExit string            `msgpack:"last_exit" json:"last_exit"`
	Reason   string            `msgpack:"reason,omitempty" json:"reason,omitempty"`
	Policy   string            `msgpack:"policy" json:"restart_policy"`
	Attached bool              `msgpack:"attached,omitempty" json:"self_attached,omitempty"`
	User     string            `msgpack:"user,omitempty" json:"user,omitempty"` // who it runs as: "UID:GID (how)", or "inherit"
	Type     string            `msgpack:"type,omitempty" json:"type,omitempty"` // an app's: "simple" (running once started) or "notify" (once attached or ready)
	Info     map[string]string `msgpack:"info,omitempty" json:"info,omitempty"`
	// Counters are what a component counts, under dotted names in the
	// manner of `netstat -s` ("tcp.in_segs"): the supervisor takes them
	// out of what the component reports in Ready's Info.
	Counters map[string]uint64 `msgpack:"counters,omitempty" json:"counters,omitempty"`
	Channels []ChannelStatus   `msgpack:"channels,omitempty" json:"channels,omitempty"`
}

// ChannelStatus is the figures of one channel, read from its region header.
type ChannelStatus struct {
	ID        uint64 `msgpack:"id" json:"id"`
	App       string `msgpack:"app" json:"app"`
	Server    string `msgpack:"server" json:"server"`
	Epoch     uint32 `msgpack:"epoch" json:"epoch"`
	SQDepth   uint32 `msgpack:"sq" json:"sq_depth"`
	CQDepth   uint32 `msgpack:"cq" json:"cq_depth"`
	Submitted uint64 `msgpack:"submitted" json:"submitted"`
	Completed uint64 `msgpack:"completed" json:"completed"`
	// Usage is what the app holds in the server, as the server last
	// reported it (netproc: sockets and memory against the app's limits).
	Usage *ChannelUsage `msgpack:"usage,omitempty" json:"usage,omitempty"`
}

// Kill asks the supervisor to signal a component as if it crashed.
type Kill struct {
	Name   string `msgpack:"name"`
	Signal string `msgpack:"signal"` // a name such as "KILL" or "SIGTERM", or a number
}

// Restart asks for a graceful stop and a fresh start of a component.
type Restart struct {
	Name string `msgpack:"name"`
}

// Upgrade asks for a component to be restarted as Restart does, from
// Binary (an absolute path) when it is set: the new program replaces the
// old one for every later start, until the supervisor stops.
type Upgrade struct {
	Name   string `msgpack:"name"`
	Binary string `msgpack:"binary,omitempty"`
}

// UpgradeReply says what an upgrade did: the program now running, its
// pid, and the blackout, from the old incarnation's exit to the new one's
// readiness (an app that leaves its listeners to netproc has clients wait
// in the backlog meanwhile rather than be refused).
type UpgradeReply struct {
	Binary     string `msgpack:"binary" json:"binary"`
	PID        int    `msgpack:"pid" json:"pid"`
	BlackoutNS int64  `msgpack:"blackout_ns" json:"blackout_ns"`
}

// Stop asks the supervisor to stop the instance.
type Stop struct{}

// Launch asks the supervisor to start and supervise an app process.
type Launch struct {
	Name    string            `msgpack:"name"`
	Command []string          `msgpack:"cmd"`
	Restart string            `msgpack:"restart"`
	Env     map[string]string `msgpack:"env,omitempty"`
	Dir     string            `msgpack:"dir,omitempty"`
	User    string            `msgpack:"user,omitempty"` // as [[app]] user; "": dynamic when the supervisor is root
	// Grants, as [[app]] listen and disk_write.
	Listen    []string `msgpack:"listen,omitempty"`
	DiskWrite []string `msgpack:"disk_write,omitempty"`
	// Type is when it counts as running, as [[app]] type: "simple",
	// "notify", or "auto" ("" too).
	Type string `msgpack:"type,omitempty"`
}

// Detach asks the supervisor to stop an app and forget it.
type Detach struct {
	Name string `msgpack:"name"`
}

// Attach is sent by an app process that attaches itself (or by a supervised
// app on start) to get its channels. The reply carries descriptors.
type Attach struct {
	Name    string   `msgpack:"name"`
	PID     int      `msgpack:"pid"`
	Servers []string `msgpack:"servers"` // which servers it wants channels to
	// DeferReady: the app is not ready when attached, but when it says so
	// with Ready (a server app, once it listens).
	DeferReady bool `msgpack:"defer,omitempty"`
	// Grants a self-attached app asks for (only the instance's owner can
	// attach itself, and could grant them in the config as well); an app
	// the supervisor started has its config's, and this is ignored.
	Grants *ChannelGrants `msgpack:"grants,omitempty"`
}

// AttachReply answers Attach. The frame carries each channel's descriptors,
// in order: its region, then (when Bells is true) the server's and the
// app's eventfd doorbells.
type AttachReply struct {
	Instance string        `msgpack:"instance"`
	Name     string        `msgpack:"name"`
	Channels []ChannelDesc `msgpack:"channels"`
}

// ChannelDesc describes one channel handed over with descriptors.
type ChannelDesc struct {
	ID     uint64 `msgpack:"id"`
	Server string `msgpack:"server"`
	App    string `msgpack:"app"`
	Bells  bool   `msgpack:"bells"` // eventfd doorbells follow the region
	// Limits are the app's own limits in the server (from its [[app]]
	// table in the config); nil or zero fields: the server's defaults.
	Limits *ChannelLimits `msgpack:"limits,omitempty"`
	// UID is the user the app runs as: the identity that owns what the
	// server keeps for it across its restarts (netproc's kept listeners).
	UID uint32 `msgpack:"uid,omitempty"`
	// Grants say what the app may do in the server ([[app]] in the
	// config). The supervisor always sends them; a channel without any
	// (an embedding program's, a test's) is unrestricted.
	Grants *ChannelGrants `msgpack:"grants,omitempty"`
}

// ChannelGrants are what an app may do beyond the defaults.
type ChannelGrants struct {
	// Listen: the addresses the app may listen on in netproc, "HOST:PORT"
	// with "*" (or an empty host) for any; none: any address on ports
	// 1024 and up. A port below 1024 needs a grant that names it.
	Listen []string `msgpack:"listen,omitempty"`
	// DiskWrite: the folders beneath diskproc's root in which the app may
	// create and write files; none: it may only read.
	DiskWrite []string `msgpack:"disk_write,omitempty"`
}

// ChannelLimits are an app's limits in netproc.
type ChannelLimits struct {
	Sockets int   `msgpack:"sockets,omitempty"` // listeners and connections: EMFILE past it
	Memory  int64 `msgpack:"memory,omitempty"`  // bytes of netproc's memory: ENOBUFS for new connections past it
}

// FDCount is how many descriptors travel with the channel: its region,
// then (when Bells is true) the server's eventfd doorbell, which the app
// rings. The app's own doorbell is the region's futex word, which needs no
// descriptor (see ring.Bells).
func (c ChannelDesc) FDCount() int {
	if c.Bells {
		return 2
	}
	return 1
}

// Ready is sent by a component when it is ready to serve, and again
// whenever what it reports of itself changes.
type Ready struct {
	Name string            `msgpack:"name"`
	Info map[string]string `msgpack:"info,omitempty"`
	// Usage is a server's figures for each app's channel: what the app
	// holds in it against its limits.
	Usage []ChannelUsage `msgpack:"usage,omitempty"`
}

// ChannelUsage is what an app holds in a server, against its limits (0:
// none), as status shows it.
type ChannelUsage struct {
	ID          uint64 `msgpack:"id" json:"-"`
	Sockets     int    `msgpack:"sockets" json:"sockets"`
	SocketLimit int    `msgpack:"socket_limit" json:"socket_limit"`
	Memory      int64  `msgpack:"memory" json:"memory_bytes"`
	MemoryLimit int64  `msgpack:"memory_limit" json:"memory_limit_bytes"`
	Waiting     int    `msgpack:"waiting" json:"waiting"` // operations waiting on its sockets
}

// Channel hands a server a new channel (with its descriptors).
type Channel struct {
	Channel ChannelDesc `msgpack:"channel"`
}

// Drop tells a server that an app's channel is gone: release everything it
// holds for that app.
type Drop struct {
	ID uint64 `msgpack:"id"`
}

// Capture asks for a packet capture: what netproc's user-level stack sends
// and receives, written as a pcap file into the descriptor the frame
// carries (the CLI's output file, which netproc writes directly). The CLI
// sends it to the supervisor, which passes it on to netproc with an ID of
// its own. The reply, a CaptureReply, comes when the capture ends.
type Capture struct {
	ID    uint64 `msgpack:"id,omitempty"`    // set by the supervisor; names it for CaptureStop
	Count int    `msgpack:"count,omitempty"` // stop after this many packets; 0: when stopped
}

// CaptureStop ends a capture: the one with ID (supervisor → netproc), or
// every capture of the asking session (CLI → supervisor, ID 0).
type CaptureStop struct {
	ID uint64 `msgpack:"id,omitempty"`
}

// CaptureReply answers Capture when the capture is over.
type CaptureReply struct {
	Packets int    `msgpack:"packets"`
	Error   string `msgpack:"error,omitempty"` // why it ended early (a write error, a slow reader)
}
