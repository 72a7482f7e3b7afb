package supervisor

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"saturn/configs"
	"saturn/proto"
)

// start launches a new incarnation of c. Loop only.
func (s *Supervisor) start(c *component) {
	if c.alive() || c.attached || s.shutdown {
		return
	}
	if c.backoffWait != nil {
		c.backoffWait.Stop()
		c.backoffWait = nil
	}
	c.incarnation++
	inc := c.incarnation
	c.state, c.ready, c.info, c.counters = proto.StateStarting, false, nil, nil
	c.stopping, c.restartAsk = false, false
	if err := checkRunnable(c.spec.cred, c.spec.path, c.spec.dir); err != nil {
		c.state, c.reason = proto.StateFailed, "cannot start: "+err.Error()
		s.log.Error("start failed", "name", c.name, "user", c.user, "err", err)
		s.notify()
		return
	}
	var extra []*os.File
	env := s.componentEnv(c)
	if c.persist != nil {
		extra = append(extra, c.persist)
		env = append(env, "SATURN_PERSIST_FD=4")
	}
	if c.store != nil {
		if f, err := c.store.link(); err != nil {
			s.log.Error("descriptor store", "name", c.name, "err", err)
		} else {
			defer f.Close() // the process has its own copy once started
			extra = append(extra, f)
			env = append(env, fmt.Sprintf("%s=%d", proto.EnvFDStoreFD, 3+len(extra)))
		}
	}
	spec := c.spec
	if c.kind == proto.KindServer && spec.cred != nil {
		cf, err := s.configFile()
		if err != nil {
			c.state, c.reason = proto.StateFailed, "cannot start: config: "+err.Error()
			s.log.Error("start failed", "name", c.name, "err", err)
			s.notify()
			return
		}
		defer cf.Close()
		extra = append(extra, cf)
		spec.args = []string{"saturn", c.name, "--config", fmt.Sprintf("/proc/self/fd/%d", 3+len(extra))}
	}
	proc, link, err := s.spawner.spawn(spec, env, s.opts.Paths.Log(c.name), extra...)
	if err != nil {
		c.state, c.reason = proto.StateFailed, "cannot start: "+err.Error()
		s.log.Error("start failed", "name", c.name, "err", err)
		s.notify()
		return
	}
	now := time.Now()
	c.proc, c.pid, c.startedAt = proc, proc.Pid, now
	c.tracker.Started(now)
	c.link = proto.NewSession(link, func(r *proto.Request) { s.onLinkRequest(c, inc, r) })
	go func(link *proto.Session) {
		if err := link.Run(); errors.Is(err, proto.ErrPeerNotReading) {
			// It stopped reading its control link: the supervisor dropped
			// the link rather than wait on it, and the component, without
			// its link, exits and is restarted by its policy.
			s.log.Warn("a component stopped reading its control link; dropped it", "name", c.name, "pid", proc.Pid, "err", err)
		}
	}(c.link)
	go func() {
		st, err := proc.Wait()
		exit := exitOf(st, err)
		s.do(func() { s.exited(c, inc, exit) })
	}()
	s.log.Info("started", "name", c.name, "kind", c.kind, "pid", c.pid, "incarnation", inc, "user", c.user, "type", c.appType)
	switch {
	case c.kind == proto.KindServer:
		s.sendAllChannels(c, inc)
	case c.appType == configs.AppSimple:
		// Running once started, as systemd's Type=simple; if it attaches
		// after all, it gets its channels and counts as ready then.
		c.state = proto.StateRunning
	default:
		s.awaitReady(c, inc)
	}
	s.notify()
}

// awaitReady gives a notify app ready_timeout to attach or say it is ready;
// one that is still alive and silent then is taken as running, with a
// warning and a reason in status, rather than left starting for ever: it
// may be a plain program that auto took for an appproc one (a wrapper
// script's child, say). Loop only.
func (s *Supervisor) awaitReady(c *component, inc int) {
	if c.readyWait != nil {
		c.readyWait.Stop()
	}
	timeout := s.cfg.Supervisor.ReadyTimeout.D()
	c.readyWait = time.AfterFunc(timeout, func() {
		s.do(func() {
			if c.incarnation != inc || !c.alive() || c.state != proto.StateStarting {
				return
			}
			c.state = proto.StateRunning
			c.reason = fmt.Sprintf("did not attach or report ready within ready_timeout (%s); taken as running (a plain program? attach it with --type simple)", timeout)
			s.log.Warn("app did not report ready; taking it as running", "name", c.name, "pid", c.pid, "timeout", timeout)
			s.notify()
		})
	})
}

// componentEnv is the environment saturn adds for a component.
func (s *Supervisor) componentEnv(c *component) []string {
	p := s.opts.Paths
	env := []string{
		"SATURN_COMPONENT=" + c.name,
		"SATURN_INSTANCE=" + p.Instance,
		"SATURN_STATE_DIR=" + p.StateDir,
		"SATURN_CONTROL_SOCKET=" + p.Control,
		"SATURN_CONFIG=" + p.Config,
	}
	return append(env, c.spec.env...)
}

func exitOf(st *os.ProcessState, err error) Exit {
	if st == nil {
		return Exit{Code: -1, Signal: fmt.Sprintf("unknown (%v)", err)}
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Exit{Signal: signalName(ws.Signal())}
	}
	return Exit{Code: st.ExitCode()}
}

// exited handles the end of incarnation inc of c. Loop only.
func (s *Supervisor) exited(c *component, inc int, exit Exit) {
	if inc != c.incarnation {
		return
	}
	uptime := time.Since(c.startedAt).Round(time.Millisecond)
	c.proc, c.pid, c.ready = nil, 0, false
	c.lastExit, c.exitedAt = exit.String(), time.Now()
	if c.killTimer != nil {
		c.killTimer.Stop()
		c.killTimer = nil
	}
	if c.readyWait != nil {
		c.readyWait.Stop()
		c.readyWait = nil
	}
	if c.link != nil {
		c.link.Close()
		c.link = nil
	}
	s.dropChannels(c)
	if c.kind == proto.KindServer {
		// Tell its apps now, not when (or if) it is back: see
		// ring.Region.EndIncarnation. The wake-up is a futex wake on the
		// region, which no app can make block.
		for _, ch := range s.channelsFor(c.name) {
			if err := ch.region.EndIncarnation(); err != nil {
				s.log.Warn("telling an app its server died", "app", ch.app.name, "err", err)
			}
		}
	}
	defer s.notify()
	switch {
	case s.shutdown:
		c.state, c.reason = proto.StateStopped, "instance stopped"
		s.log.Info("stopped", "name", c.name, "exit", exit.String())
		s.shutdownStep()
	case c.detachAsk:
		s.log.Info("detached", "name", c.name, "exit", exit.String())
		s.remove(c)
	case c.restartAsk:
		s.log.Info("restarting on request", "name", c.name, "exit", exit.String())
		c.tracker.Reset()
		c.restarts++
		s.start(c)
	case c.stopping:
		c.state, c.reason = proto.StateStopped, "stopped on request"
		s.log.Info("stopped", "name", c.name, "exit", exit.String())
		c.closeStore()
	default:
		d := c.tracker.Exited(time.Now(), exit)
		c.reason = d.Reason
		switch {
		case d.Restart:
			c.state = proto.StateRestarting
			s.log.Warn("exited; restart scheduled", "name", c.name, "exit", exit.String(), "uptime", uptime, "after", d.After)
			c.backoffWait = time.AfterFunc(d.After, func() {
				s.do(func() {
					if c.incarnation == inc && c.state == proto.StateRestarting && !s.shutdown {
						c.restarts++
						s.start(c)
					}
				})
			})
		case d.Failed:
			c.state = proto.StateFailed
			s.log.Error("exited; gave up", "name", c.name, "exit", exit.String(), "reason", d.Reason)
			c.closeStore()
		default:
			c.state = proto.StateStopped
			s.log.Info("exited; not restarting", "name", c.name, "exit", exit.String(), "reason", d.Reason)
			c.closeStore()
		}
	}
}

// signal sends sig to c's process group (every component leads its own).
func (s *Supervisor) signal(c *component, sig unix.Signal) error {
	if !c.alive() {
		return fmt.Errorf("%s is not running (%s)", c.name, c.state)
	}
	if c.attached {
		return unix.Kill(c.pid, sig)
	}
	err := unix.Kill(-c.pid, sig)
	if err == unix.ESRCH {
		err = unix.Kill(c.pid, sig)
	}
	return err
}

// stop asks c to stop: SIGTERM now, SIGKILL after the grace period. Loop
// only; the exit arrives through exited.
func (s *Supervisor) stop(c *component) {
	if !c.alive() || c.attached {
		return
	}
	c.stopping = true
	if c.killTimer != nil {
		return // already on its way
	}
	inc := c.incarnation
	s.log.Info("stopping", "name", c.name, "pid", c.pid)
	if err := s.signal(c, unix.SIGTERM); err != nil {
		s.log.Warn("SIGTERM failed", "name", c.name, "err", err)
	}
	grace := s.cfg.Supervisor.StopGrace.D()
	c.killTimer = time.AfterFunc(grace, func() {
		s.do(func() {
			if c.incarnation == inc && c.alive() {
				s.log.Warn("grace period over; killing", "name", c.name, "grace", grace)
				s.signal(c, unix.SIGKILL)
			}
		})
	})
}

// beginShutdown stops the instance: apps first, then servers in reverse
// start order. Loop only.
func (s *Supervisor) beginShutdown() {
	if s.shutdown {
		return
	}
	s.shutdown = true
	s.log.Info("stopping instance")
	s.sdNotify("STOPPING=1", "STATUS=stopping")
	for _, c := range s.components {
		if c.backoffWait != nil {
			c.backoffWait.Stop()
			c.backoffWait = nil
		}
		if c.state == proto.StateRestarting || c.state == proto.StateStarting && !c.alive() {
			c.state, c.reason = proto.StateStopped, "instance stopped"
		}
	}
	s.shutdownStep()
	s.notify()
}

// shutdownStep moves the shutdown on as far as it can; every exit during
// shutdown calls it again. Loop only.
func (s *Supervisor) shutdownStep() {
	waiting := false
	for _, c := range s.components {
		if c.kind == proto.KindApp && c.alive() && !c.attached {
			s.stop(c)
			waiting = true
		}
	}
	if waiting {
		return
	}
	for _, c := range s.components {
		if c.attached {
			// Not our process: close its session, which tells it the
			// instance is gone, and release its channels.
			if c.link != nil {
				c.link.Close()
			}
			s.dropChannels(c)
		}
	}
	for i := len(s.components) - 1; i >= 0; i-- {
		c := s.components[i]
		if c.kind == proto.KindServer && c.alive() {
			s.stop(c)
			return
		}
	}
	for sess := range s.sessions {
		sess.Close()
	}
	s.log.Info("instance stopped")
	select {
	case <-s.finish:
	default:
		close(s.finish)
	}
}
