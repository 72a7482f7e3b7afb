package supervisor

import (
	"os"
	"syscall"
	"time"

	"saturn/proto"
)

// component is one supervised process (or a self-attached app, which the
// supervisor did not start and cannot restart). Owned by the loop.
type component struct {
	name     string
	kind     string // proto.KindServer or proto.KindApp
	spec     launchSpec
	tracker  *Tracker
	attached bool // self-attached: no process of ours, no restarts
	// appType: when an app we start counts as running, configs.AppSimple
	// or configs.AppNotify (apptype.go); "" for servers and self-attached
	// apps.
	appType string

	state       string
	incarnation int // bumped at every start; events of older ones are stale
	proc        *os.Process
	pid         int
	startedAt   time.Time
	exitedAt    time.Time // when the last incarnation exited
	restarts    int
	lastExit    string
	reason      string
	info        map[string]string // what it reports of itself, but counters
	counters    map[string]uint64 // its counters (see splitInfo)
	ready       bool
	link        *proto.Session // this incarnation's control link
	channels    []*channel     // an app's channels, one per server
	persist     *os.File       // a server's persistent memory (see newPersist)
	store       *fdStore       // netproc's descriptor store (fdstore.go)

	// An app's identity and grants (users.go, docs/security.md): who it
	// runs as (nil: the supervisor's user), its uid as servers see it, what
	// it may do in them, and the servers it may have channels to.
	user    *appUser
	uid     uint32
	grants  *proto.ChannelGrants
	servers []string

	stopping    bool // a stop, restart or detach was asked: the exit is not a crash
	restartAsk  bool // start again right after the requested stop
	detachAsk   bool // forget the component after it stops
	killTimer   *time.Timer
	backoffWait *time.Timer
	readyWait   *time.Timer // a notify app's ready_timeout
}

// launchSpec is how to start a component's process.
type launchSpec struct {
	path string   // executable
	args []string // argv, args[0] included
	env  []string // extra environment
	dir  string
	cred *syscall.Credential // who it runs as; nil: as the supervisor
	// ambient: the capabilities it keeps under cred (netproc's kernel
	// backend: CAP_NET_BIND_SERVICE, for granted ports below 1024).
	ambient []uintptr
}

// alive reports whether the component has a process (or a live session,
// when self-attached).
func (c *component) alive() bool { return c.pid != 0 }

// closeStore closes the descriptors a server's store holds for it: no
// next incarnation will take them over (stopped, failed, not restarting),
// so their peers must not wait on them.
func (c *component) closeStore() {
	if c.store != nil {
		c.store.closeAll()
	}
}
