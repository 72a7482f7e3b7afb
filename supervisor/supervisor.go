package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"saturn/configs"
	"saturn/proto"
)

// Options configure a supervisor.
type Options struct {
	Paths  Paths
	Config *configs.Config
	// Binary is saturn's own executable: servers run as `Binary netproc`,
	// and an app command whose first word is "saturn" runs it too.
	Binary string
	Logger *slog.Logger
	// Ready, when set, receives one line once startup is over: "ready", or
	// "failed: REASON". `supervisor start --detach` waits for it.
	Ready *os.File
	// OnReady, when set, is called once every component is ready, with
	// the instance's status (the foreground CLI prints where to reach it).
	OnReady func(*proto.StatusReply)
	// LogLevel, when set, is the level of Logger, which a reload changes
	// to the config's [supervisor] log_level (reload.go).
	LogLevel *slog.LevelVar
}

// serverNames are the servers, in start order.
var serverNames = []string{"netproc", "diskproc"}

// Supervisor is one running instance.
type Supervisor struct {
	opts Options
	log  *slog.Logger
	cfg  *configs.Config

	work    chan func() // closures for the loop
	stopped chan struct{}

	// Owned by the loop:
	components []*component // servers first, in start order, then apps
	nextChanID uint64
	changed    chan struct{} // closed and replaced on every state change
	shutdown   bool
	finish     chan struct{}                 // closed when shutdown is complete
	sessions   map[*proto.Session]*ctlConn   // open control connections (control.go)
	captures   map[*proto.Session][]*capture // packet captures, by the CLI session that asked (capture.go)
	nextCapID  uint64

	// The metrics endpoint, set before the loop starts and read-only
	// after: nil when off or when it could not listen (metricsErr says why).
	metrics    *metricsServer
	metricsErr string

	spawner *spawner
	lockF   *os.File
	netnsF  *os.File // the claim on netproc's namespace (netnsclaim.go)
	ln      *net.UnixListener
	conns   atomic.Int32 // control connections open (see MaxControlConns)
	reload  reloadState  // the configuration's generations (reload.go)
}

// New prepares a supervisor; Run starts it.
func New(opts Options) *Supervisor {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Supervisor{
		opts:     opts,
		log:      opts.Logger,
		cfg:      opts.Config,
		work:     make(chan func(), 64),
		stopped:  make(chan struct{}),
		changed:  make(chan struct{}),
		finish:   make(chan struct{}),
		sessions: map[*proto.Session]*ctlConn{},
		reload:   reloadState{level: opts.LogLevel, started: make(chan struct{}), generation: 1, loadedAt: time.Now()},
	}
}

// do hands f to the loop. It never blocks once the loop has stopped.
func (s *Supervisor) do(f func()) {
	select {
	case s.work <- f:
	case <-s.stopped:
	}
}

// call runs f in the loop and waits for it; false if the loop has stopped.
func call[T any](s *Supervisor, f func() T) (T, bool) {
	ch := make(chan T, 1)
	s.do(func() { ch <- f() })
	select {
	case v := <-ch:
		return v, true
	case <-s.stopped:
		var zero T
		return zero, false
	}
}

// notify wakes everyone waiting for a state change. Loop only.
func (s *Supervisor) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor waits until cond (run in the loop) holds, the timeout passes, or
// the loop stops. It returns cond's last verdict.
func (s *Supervisor) waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.After(timeout)
	for {
		type snap struct {
			ok      bool
			changed chan struct{}
		}
		v, ok := call(s, func() snap { return snap{cond(), s.changed} })
		if !ok {
			return false
		}
		if v.ok {
			return true
		}
		select {
		case <-v.changed:
		case <-deadline:
			r, _ := call(s, cond)
			return r
		case <-s.stopped:
			return false
		}
	}
}

// Run runs the instance until ctx is cancelled or a Stop request comes,
// then stops every component and removes the instance's socket, pid file
// and regions. It returns an error if the instance could not start.
func (s *Supervisor) Run(ctx context.Context) error {
	if err := proto.NotDumpable(); err != nil {
		s.log.Warn("cannot make the supervisor non-dumpable", "err", err)
	}
	if err := s.prepare(); err != nil {
		s.cleanup()
		s.readyLine("failed: " + err.Error())
		return err
	}
	s.spawner = newSpawner()
	if addr := s.cfg.Supervisor.Metrics; addr != "" {
		m, err := s.startMetrics(addr)
		if err != nil {
			// Not a reason to refuse to run the services: an instance
			// beside another, or an exporter on the port, would not
			// start at all. Said in the log and in status.
			s.metricsErr = err.Error()
			s.log.Warn("metrics endpoint not started; the instance runs without it: set [supervisor] metrics to a free address, or \"\" to turn it off",
				"addr", addr, "err", err)
		}
		s.metrics = m
	}
	go s.acceptLoop()
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		s.loop(ctx)
	}()

	startErr := s.startAll()
	stoppedEarly := false
	if startErr != nil {
		// A signal or a stop during the start makes the start fail (a
		// component stops before it is ready): that is a stop, not a
		// failure.
		stoppedEarly, _ = call(s, func() bool { return s.shutdown })
		if stoppedEarly {
			s.log.Info("stopped while starting", "detail", startErr)
		} else {
			s.log.Error("startup failed", "err", startErr)
		}
		s.do(s.beginShutdown)
	} else {
		s.log.Info("instance ready", "control", s.opts.Paths.Control, "logs", s.opts.Paths.LogDir)
		s.readyLine("ready")
		s.instanceReady()
		if s.opts.OnReady != nil {
			if st, ok := call(s, s.status); ok {
				s.opts.OnReady(st)
			}
		}
	}
	<-loopDone
	s.metrics.close()
	s.cleanup()
	s.spawner.close()
	if startErr != nil {
		// Only now, with everything stopped and removed, does a detached
		// start learn that it failed.
		s.readyLine("failed: " + startErr.Error())
	}
	if stoppedEarly {
		return nil
	}
	return startErr
}

func (s *Supervisor) readyLine(line string) {
	if s.opts.Ready == nil {
		return
	}
	fmt.Fprintln(s.opts.Ready, line)
	s.opts.Ready.Close()
	s.opts.Ready = nil
}

// loop runs closures until shutdown completes.
func (s *Supervisor) loop(ctx context.Context) {
	defer close(s.stopped)
	for {
		select {
		case f := <-s.work:
			f()
		case <-ctx.Done():
			s.log.Info("signal received: stopping")
			s.beginShutdown()
			ctx = context.Background() // once
		case <-s.finish:
			return
		}
	}
}

// prepare creates the instance's directory, takes its lock, clears a stale
// socket and listens.
func (s *Supervisor) prepare() error {
	p := s.opts.Paths
	if err := os.MkdirAll(p.LogDir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(p.Dir, 0o700); err != nil {
		return err
	}
	lf, err := os.OpenFile(p.LockFile, os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lf.Close()
		pid, _ := os.ReadFile(p.PIDFile)
		return fmt.Errorf("instance %q is already running (supervisor pid %s)", p.Instance, trimSpace(pid))
	}
	s.lockF = lf
	if err := s.claimNetns(); err != nil {
		return err
	}
	// We hold the lock, so any socket or pid file here is a dead
	// supervisor's leftovers.
	os.Remove(p.Control)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p.Control, Net: "unix"})
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(p.Control, 0o600); err != nil {
		ln.Close()
		return err
	}
	s.ln = ln
	if err := os.WriteFile(p.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return err
	}
	printed, err := configs.Print(s.cfg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p.Config, printed, 0o600); err != nil {
		return err
	}
	switch d := s.cfg.Diskproc; {
	case d.SampleSite:
		// The built-in configuration serves the sample site: write it into
		// an empty root on first start.
		if wrote, err := configs.SampleSite(d.Root); err != nil {
			return err
		} else if wrote {
			s.log.Info("wrote the sample site", "root", d.Root)
		}
	case d.RootDefaulted:
		// No root in the config: saturn's own folder beside it.
		if err := os.MkdirAll(d.Root, 0o755); err != nil {
			return fmt.Errorf("diskproc root: %w", err)
		}
	default:
		// A root the config names is never made up: a typo would serve an
		// empty folder instead of the site.
		return checkRoot(d.Root, s.cfg.Source)
	}
	return nil
}

// checkRoot reports a diskproc root, named in the config at source, that
// is missing or not a folder.
func checkRoot(root, source string) error {
	if source == "" {
		source = "the built-in config"
	}
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("diskproc root %s does not exist ([diskproc] root in %s): create the folder, or name one that exists", root, source)
	case err != nil:
		return fmt.Errorf("diskproc root ([diskproc] root in %s): %w", source, err)
	case !fi.IsDir():
		return fmt.Errorf("diskproc root %s is not a folder ([diskproc] root in %s)", root, source)
	}
	return nil
}

func trimSpace(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return "unknown"
	}
	return string(b)
}

// cleanup removes what the instance leaves behind: the socket (on close),
// the pid file, the effective config, the lock.
func (s *Supervisor) cleanup() {
	p := s.opts.Paths
	if s.ln != nil {
		s.ln.Close()
	}
	s.removeLeftovers()
	s.releaseNetns()
	for _, c := range s.components {
		if c.persist != nil {
			c.persist.Close()
		}
		if c.store != nil {
			c.store.closeAll()
		}
	}
	os.Remove(p.PIDFile)
	os.Remove(p.Config)
	if s.lockF != nil {
		os.Remove(p.LockFile)
		s.lockF.Close()
	}
}

// startAll starts the servers, each ready before the next, then the apps.
func (s *Supervisor) startAll() error {
	timeout := s.cfg.Supervisor.ReadyTimeout.D()
	// call, not do: the start must see what identifying the components
	// found, so it must wait for the loop to have done it.
	idErr, _ := call(s, func() (idErr error) {
		for _, name := range serverNames {
			pol, _ := s.cfg.ServerPolicy(name)
			persist, err := newPersist(name)
			if err != nil {
				s.log.Error("persistent memory", "name", name, "err", err)
			}
			c := &component{
				name: name, kind: proto.KindServer, tracker: NewTracker(pol), state: proto.StateStopped,
				spec:    launchSpec{path: s.opts.Binary, args: []string{"saturn", name, "--config", s.opts.Paths.Config}},
				persist: persist,
			}
			if name == "netproc" {
				c.store = newFDStore(name, s.log)
			}
			if err := s.identifyServer(c); err != nil && idErr == nil {
				idErr = fmt.Errorf("%s ([%s] user in %s): %w", name, name, s.cfg.Source, err)
			}
			s.components = append(s.components, c)
		}
		for i := range s.cfg.Apps {
			a := &s.cfg.Apps[i]
			c := &component{
				name: a.Name, kind: proto.KindApp, tracker: NewTracker(a.Policy), state: proto.StateStopped,
				spec: s.appSpec(a.Command, a.EnvList(), a.Dir),
			}
			c.appType = appType(a.Type, c.spec.path, c.spec.dir, s.opts.Binary)
			if err := s.identify(c, a, "", nil, nil); err != nil && idErr == nil {
				idErr = fmt.Errorf("app %s ([[app]] user in %s): %w", a.Name, s.cfg.Source, err)
			}
			s.components = append(s.components, c)
		}
		return idErr
	})
	if idErr != nil {
		return idErr
	}
	for _, name := range serverNames {
		if err := s.startAndWait(name, timeout, true); err != nil {
			return err
		}
	}
	for i := range s.cfg.Apps {
		if err := s.startAndWait(s.cfg.Apps[i].Name, timeout, false); err != nil {
			return err
		}
	}
	return nil
}

// startAndWait starts the named component and waits until it is running:
// a server once it reports ready, which it must within timeout; an app by
// its type (see awaitReady), which bounds the wait by ready_timeout itself.
func (s *Supervisor) startAndWait(name string, timeout time.Duration, mustReport bool) error {
	ok, _ := call(s, func() bool {
		c := s.find(name)
		if c == nil || s.shutdown {
			return false
		}
		s.start(c)
		return true
	})
	if !ok {
		return fmt.Errorf("%s: not started (shutting down)", name)
	}
	if !mustReport {
		// The app's own timer takes it as running at ready_timeout; the
		// wait only needs a bound in case the loop is stuck.
		timeout += s.cfg.Supervisor.StopGrace.D()
	}
	var verdict error
	s.waitFor(timeout, func() bool {
		c := s.find(name)
		switch {
		case c == nil:
			verdict = fmt.Errorf("%s: removed during start", name)
		case c.state == proto.StateFailed:
			verdict = fmt.Errorf("%s failed to start: %s%s", name, c.reason, lastWords(s.opts.Paths.Log(name)))
		case c.state == proto.StateStopped:
			verdict = fmt.Errorf("%s stopped during start: %s%s", name, c.reason, lastWords(s.opts.Paths.Log(name)))
		case c.state == proto.StateRunning:
			verdict = nil
		default:
			verdict = errNotReady
			return false
		}
		return true
	})
	if verdict == errNotReady {
		if mustReport {
			return fmt.Errorf("%s did not report ready within %s", name, timeout)
		}
		// Restarting: it exited after it started; its policy goes on.
		s.log.Warn("app not running at the end of the start", "name", name)
		return nil
	}
	return verdict
}

var errNotReady = errors.New("not ready")

// lastWords is the last line a component wrote to its log, as "; it said:
// LINE", or "" when there is none: a start that fails says why in the
// component's own words (a port in use, a file missing), not only with its
// exit status.
func lastWords(log string) string {
	f, err := os.Open(log)
	if err != nil {
		return ""
	}
	defer f.Close()
	const tail = 4096
	buf := make([]byte, tail)
	off := int64(0)
	if fi, err := f.Stat(); err == nil && fi.Size() > tail {
		off = fi.Size() - tail
	}
	n, _ := f.ReadAt(buf, off)
	lines := strings.Split(string(buf[:n]), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "=== saturn:") {
			continue
		}
		if len(l) > 300 {
			l = l[:300] + "..."
		}
		return "; it said: " + l
	}
	return ""
}

// find returns the component called name. Loop only.
func (s *Supervisor) find(name string) *component {
	for _, c := range s.components {
		if c.name == name {
			return c
		}
	}
	return nil
}

// remove forgets c. Loop only.
func (s *Supervisor) remove(c *component) {
	s.components = slices.DeleteFunc(s.components, func(x *component) bool { return x == c })
	s.notify()
}

// appSpec builds the launch spec of an app command; a first word of
// "saturn" means this very binary.
func (s *Supervisor) appSpec(command, env []string, dir string) launchSpec {
	path := command[0]
	switch {
	case path == "saturn":
		path = s.opts.Binary
	case !strings.Contains(path, "/"):
		// A bare name is looked up in the supervisor's PATH, as a shell
		// would (exec does not search): `command = ["sleep", "600"]`.
		// Not found, it stays as it is and the start says so.
		if found, err := exec.LookPath(path); err == nil {
			path = found
		}
	}
	return launchSpec{path: path, args: slices.Clone(command), env: env, dir: dir}
}

// PersistSize is the size of a server's persistent memory.
const PersistSize = 64 << 20

// newPersist creates a server's persistent memory: a memfd that the
// supervisor keeps for the life of the instance and hands to every
// incarnation of the server as descriptor 4 (SATURN_PERSIST_FD). A server
// keeps there what its next incarnation needs to take over: diskproc its
// open-file tables, netproc its connections. Pages cost memory only once
// written.
func newPersist(server string) (*os.File, error) {
	fd, err := unix.MemfdCreate("saturn-"+server+"-persist", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "persist:"+server)
	if err := f.Truncate(PersistSize); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
