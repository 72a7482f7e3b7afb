package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"saturn/configs"
	"saturn/proto"
)

// Reloading the configuration (SIGHUP to `saturn supervisor start`,
// `systemctl reload saturn@NAME`). The file is read again (the --config
// file, or the instance's own file: configs.LoadInstance) and compared with
// the running configuration:
//
//   - applied at once: restart policies (restart, backoff, intensity...)
//     of the servers and apps, the supervisor's log_level and max_apps;
//   - apps the file adds are started, apps it no longer lists are stopped
//     and forgotten, an app listed but not running (detached) is started;
//   - an app whose command, environment, folder, user, type, grants or
//     limits changed is restarted gracefully, as `saturn restart` does
//     (SIGTERM, stop_grace, then the new incarnation);
//   - everything else (the servers' own keys, [channel], the supervisor's
//     stop_grace, ready_timeout and metrics) needs the instance to be
//     stopped and started: it is kept as it was, and the log names each key.
//
// A file that cannot be read or checked changes nothing: the running
// configuration stays, the log says why, and status shows the error beside
// the generation still in force. Each reload that applies bumps the
// generation; status shows it with its source and load time.
//
// The file is read outside the loop; the comparison and every change happen
// in one closure on the loop, so no request sees half a reload. s.cfg is
// changed in place, and only in fields that nothing reads outside the loop
// (Apps, the servers' policies, log_level, max_apps, Source): goroutines
// that read the supervisor's timeouts may run at any time.

// reloadState is the supervisor's record of its configuration's loads.
type reloadState struct {
	// Set before the loop runs, read-only after.
	level   *slog.LevelVar // the supervisor's log level (Options.LogLevel), or nil
	started chan struct{}  // closed once the start is over and successful

	// Owned by the loop.
	generation int       // 1 for the config the instance started with
	loadedAt   time.Time // when the generation in force was read
	lastErr    string    // why the last reload failed, "" if it did not
	kept       []string  // keys of the file in force that wait for a new start
}

// ReloadOn makes the signals sigs (SIGHUP) reload the configuration, until
// the instance stops or the returned function is called. Call it before
// Run, so that a signal that comes during the start is kept, not taken by
// its default action: it is applied once the start is over.
func (s *Supervisor) ReloadOn(sigs ...os.Signal) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
			case <-done:
				return
			case <-s.stopped:
				return
			}
			select {
			case <-s.reload.started:
			case <-done:
				return
			case <-s.stopped:
				return
			}
			s.Reload()
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// instanceReady is called once every component is running after the start:
// reloads may go ahead, and systemd learns the instance is ready.
func (s *Supervisor) instanceReady() {
	close(s.reload.started)
	s.sdReady()
}

// Reload reads the configuration again and applies it (see above). It
// returns once the changes are under way: restarts it asked for go on.
func (s *Supervisor) Reload() {
	if stopping, ok := call(s, func() bool { return s.shutdown }); stopping || !ok {
		s.log.Info("reload ignored: the instance is stopping")
		return
	}
	s.log.Info("reloading the configuration")
	s.sdNotify("RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", monotonicUsec()), "STATUS=reloading the configuration")
	cfg, err := s.readConfig()
	ok, _ := call(s, func() bool {
		if err == nil {
			err = s.applyConfig(cfg)
		}
		if err != nil {
			s.reload.lastErr = err.Error()
			s.log.Error("reload failed; the running configuration stays", "generation", s.reload.generation, "err", err)
			return false
		}
		s.reload.lastErr = ""
		return true
	})
	line, _ := call(s, func() string { return statusLine(s.components) })
	if ok {
		line = fmt.Sprintf("reloaded; %s", line)
	} else {
		line = fmt.Sprintf("reload failed, running the old configuration; %s", line)
	}
	s.sdNotify("READY=1", "STATUS="+line)
}

// readConfig reads the configuration the instance runs from again: its
// --config file, or, when it runs from the instance's own file or the
// embedded default, whatever configs.LoadInstance finds now (a file created
// since, or removed).
func (s *Supervisor) readConfig() (*configs.Config, error) {
	path, _ := call(s, func() string { return s.cfg.Source })
	if path == configs.InstanceFile(s.opts.Paths.Instance) {
		path = ""
	}
	cfg, err := configs.LoadInstance(path, s.opts.Paths.Instance)
	if err != nil {
		return nil, err
	}
	cfg.Resolve(s.opts.Paths.Dir)
	return cfg, nil
}

// applyConfig makes the instance follow cfg, or changes nothing and says
// why. Loop only.
func (s *Supervisor) applyConfig(cfg *configs.Config) error {
	if s.shutdown {
		return fmt.Errorf("the instance is stopping")
	}
	old := s.cfg
	level, err := configs.ParseLogLevel(cfg.Supervisor.LogLevel)
	if err != nil {
		return err // Load checked it; never here
	}
	plan, err := s.planApps(old, cfg)
	if err != nil {
		return err
	}

	// Keys that only a new instance takes: kept, and named.
	var kept []string
	kept = append(kept, changedKeys("netproc", withoutPolicy(old.Netproc), withoutPolicy(cfg.Netproc))...)
	kept = append(kept, changedKeys("diskproc", withoutPolicy(old.Diskproc), withoutPolicy(cfg.Diskproc))...)
	kept = append(kept, changedKeys("channel", old.Channel, cfg.Channel)...)
	sup, newSup := old.Supervisor, cfg.Supervisor
	sup.LogLevel, sup.MaxApps = newSup.LogLevel, newSup.MaxApps
	kept = append(kept, changedKeys("supervisor", sup, newSup)...)
	if len(kept) > 0 {
		s.log.Warn("reload: keys that need the instance stopped and started again are kept as they were",
			"keys", strings.Join(kept, ", "))
	}

	// Everything checked: apply.
	gen := s.reload.generation + 1
	if old.Supervisor.LogLevel != cfg.Supervisor.LogLevel {
		s.log.Info("reload: log level", "from", old.Supervisor.LogLevel, "to", cfg.Supervisor.LogLevel)
	}
	newLevel := old.Supervisor.LogLevel != cfg.Supervisor.LogLevel
	old.Supervisor.LogLevel, old.Supervisor.MaxApps = cfg.Supervisor.LogLevel, cfg.Supervisor.MaxApps
	for _, name := range serverNames {
		was, _ := old.ServerPolicy(name)
		now, _ := cfg.ServerPolicy(name)
		if was != now {
			s.setPolicy(s.find(name), now)
		}
	}
	old.Netproc.Policy, old.Diskproc.Policy = cfg.Netproc.Policy, cfg.Diskproc.Policy
	old.Apps, old.Source = cfg.Apps, cfg.Source
	s.applyApps(plan)
	s.reload.generation, s.reload.loadedAt, s.reload.kept = gen, time.Now(), kept
	if err := s.writeEffectiveConfig(); err != nil {
		s.log.Warn("reload: cannot write the effective configuration; components started from now on read the old one", "path", s.opts.Paths.Config, "err", err)
	}
	s.log.Info("configuration reloaded", "generation", gen, "source", sourceName(cfg.Source),
		"started", len(plan.add), "stopped", len(plan.remove), "restarted", len(plan.restart), "policies", len(plan.policy), "unchanged", plan.unchanged)
	// The new level last: the reload's own report is at the level in
	// force when it began, so that a reload to "warn" still says it
	// happened.
	if newLevel && s.reload.level != nil {
		s.reload.level.Set(level)
	}
	s.notify()
	return nil
}

// writeEffectiveConfig replaces the effective configuration that
// components read at their start with s.cfg, by a rename, so that a server
// starting meanwhile reads the old file or the new one, never half of one.
// Loop only.
func (s *Supervisor) writeEffectiveConfig() error {
	printed, err := configs.Print(s.cfg)
	if err != nil {
		return err
	}
	path := s.opts.Paths.Config
	tmp := path + ".new"
	if err := os.WriteFile(tmp, printed, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// appPlan is what a reload does to the apps.
type appPlan struct {
	add       []*component // new components, identified, to start
	remove    []*component // to stop and forget
	restart   []appChange  // to restart with a new spec
	policy    []appChange  // only the policy changed
	unchanged int
}

type appChange struct {
	c    *component
	conf *configs.App
	tmp  *component // the component as the new config has it (spec, user, grants)
}

// planApps compares the apps of old and cfg against the components, and
// identifies every app it would start, so that a config whose user or
// grants cannot be had is refused before anything changes. Loop only.
func (s *Supervisor) planApps(old, cfg *configs.Config) (*appPlan, error) {
	p := &appPlan{}
	count := 0
	for _, c := range s.components {
		if c.kind == proto.KindApp {
			count++
		}
	}
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		c := s.find(a.Name)
		was, listed := old.App(a.Name)
		switch {
		case c != nil && c.kind == proto.KindServer:
			return nil, fmt.Errorf("app %s: a server has that name", a.Name)
		case c != nil && (!listed || c.attached):
			return nil, fmt.Errorf("app %s: a component of that name runs that the config did not start (saturn attach, or self-attached): detach it first", a.Name)
		}
		tmp := &component{name: a.Name, kind: proto.KindApp, spec: s.appSpec(a.Command, a.EnvList(), a.Dir)}
		tmp.appType = appType(a.Type, tmp.spec.path, tmp.spec.dir, s.opts.Binary)
		if err := s.identify(tmp, a, "", nil, nil); err != nil {
			return nil, fmt.Errorf("app %s ([[app]] user in %s): %w", a.Name, sourceName(cfg.Source), err)
		}
		switch {
		case c == nil:
			count++
			tmp.tracker, tmp.state = NewTracker(a.Policy), proto.StateStopped
			p.add = append(p.add, tmp)
		case !sameRun(was, a):
			p.restart = append(p.restart, appChange{c, a, tmp})
		case was.Policy != a.Policy:
			p.policy = append(p.policy, appChange{c, a, tmp})
		default:
			p.unchanged++
		}
	}
	for i := range old.Apps {
		name := old.Apps[i].Name
		if _, still := cfg.App(name); still {
			continue
		}
		if c := s.find(name); c != nil && !c.attached && c.kind == proto.KindApp {
			count--
			p.remove = append(p.remove, c)
		}
	}
	if count > cfg.Supervisor.MaxApps {
		return nil, fmt.Errorf("the config would make %d apps, more than [supervisor] max_apps (%d)", count, cfg.Supervisor.MaxApps)
	}
	return p, nil
}

// applyApps carries out a plan. Loop only.
func (s *Supervisor) applyApps(p *appPlan) {
	for _, c := range p.remove {
		s.log.Info("reload: app no longer in the config; stopping it", "name", c.name)
		if !c.alive() {
			s.dropChannels(c)
			s.remove(c)
			continue
		}
		c.detachAsk = true
		s.stop(c)
	}
	for _, ch := range p.policy {
		s.setPolicy(ch.c, ch.conf.Policy)
	}
	for _, ch := range p.restart {
		c, tmp := ch.c, ch.tmp
		s.log.Info("reload: app changed; restarting it", "name", c.name, "command", ch.conf.Command)
		c.spec, c.appType = tmp.spec, tmp.appType
		c.user, c.uid, c.grants, c.servers = tmp.user, tmp.uid, tmp.grants, tmp.servers
		c.tracker.Policy = ch.conf.Policy
		if c.alive() {
			c.restartAsk = true
			s.stop(c)
			continue
		}
		c.tracker.Reset()
		s.start(c)
	}
	for _, c := range p.add {
		s.log.Info("reload: app added; starting it", "name", c.name)
		s.components = append(s.components, c)
		s.start(c)
	}
}

// setPolicy gives c a new restart policy. What the tracker counted so far
// (restarts in the window, the back-off reached) carries over; a restart
// already scheduled keeps its delay. Loop only.
func (s *Supervisor) setPolicy(c *component, p configs.Policy) {
	if c == nil {
		return
	}
	s.log.Info("reload: restart policy", "name", c.name, "from", policyString(c.tracker.Policy), "to", policyString(p))
	c.tracker.SetPolicy(p)
}

func policyString(p configs.Policy) string {
	return fmt.Sprintf("%s backoff=%s max_backoff=%s intensity=%d period=%s", p.Restart, p.Backoff.D(), p.MaxBackoff.D(), p.Intensity, p.Period.D())
}

// sameRun reports whether two configs of an app run it the same way:
// everything but the restart policy is equal.
func sameRun(a, b *configs.App) bool {
	x, y := *a, *b
	x.Policy, y.Policy = configs.Policy{}, configs.Policy{}
	return reflect.DeepEqual(x, y)
}

func withoutPolicy[T any](v T) T {
	switch x := any(&v).(type) {
	case *configs.Netproc:
		x.Policy = configs.Policy{}
	case *configs.Diskproc:
		x.Policy = configs.Policy{}
	}
	return v
}

// changedKeys names the keys of a section (a struct of toml-tagged fields)
// whose values differ between a and b, as "section.key".
func changedKeys(section string, a, b any) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var keys []string
	for i := range va.NumField() {
		f := va.Type().Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			keys = append(keys, section+"."+tag)
		}
	}
	slices.Sort(keys)
	return keys
}

func sourceName(src string) string {
	if src == "" {
		return "the built-in default"
	}
	return src
}

// configStatus is what status shows of the configuration. Loop only.
func (s *Supervisor) configStatus() *proto.ConfigStatus {
	return &proto.ConfigStatus{
		Source: sourceName(s.cfg.Source), Generation: s.reload.generation,
		LoadedAt: s.reload.loadedAt, ReloadError: s.reload.lastErr, NeedsRestart: s.reload.kept,
	}
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
