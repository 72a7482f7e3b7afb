package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"saturn/configs"
	"saturn/proto"
)

// Control connections: budgets and timings.
const (
	// MaxControlConns caps the control connections open at once (CLI
	// calls and self-attached apps, which hold theirs for as long as they
	// run). Each costs the supervisor a descriptor, two goroutines and up
	// to a read buffer (64 KiB) and a frame; past the cap a connection is
	// answered with an error and closed, so that one local client cannot
	// exhaust the supervisor's descriptors or memory.
	MaxControlConns = 256
	// maxWaiting caps the requests of one connection that are answered
	// later, by a goroutine that waits for the instance to change
	// (restart, launch, detach): each such goroutine asks the loop again
	// at every change.
	maxWaiting = 16
	// refuseTimeout bounds the write of a refusal to a connection we do
	// not serve: it is one small frame into an empty socket buffer, so it
	// never waits unless something is badly wrong.
	refuseTimeout = 100 * time.Millisecond
	// Accept errors other than a closed listener (EMFILE, ENFILE, ENOMEM,
	// ECONNABORTED...) are waited out, as net/http's Server does: the
	// wait doubles from acceptBackoffMin to acceptBackoffMax and starts
	// over at the next success.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// ctlConn is what the supervisor knows of one control connection. Owned by
// the loop.
type ctlConn struct {
	waiting int // requests to be answered by a goroutine (see maxWaiting)
}

// acceptLoop serves the control socket: each connection is a session whose
// requests go to the loop. It returns when the listener closes, and only
// then: any other accept error (out of descriptors, say) is logged and
// waited out, and the loop goes on.
func (s *Supervisor) acceptLoop() {
	var backoff time.Duration
	var refused refusals
	for {
		uc, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if backoff == 0 {
				backoff = acceptBackoffMin
				s.log.Warn("control socket: accept failed; backing off and trying again", "err", err)
			} else {
				backoff = min(2*backoff, acceptBackoffMax)
			}
			select {
			case <-time.After(backoff):
			case <-s.stopped:
				return
			}
			continue
		}
		if backoff != 0 {
			s.log.Info("control socket: accepting again", "backed_off_until", backoff)
			backoff = 0
		}
		cred, err := peerCred(uc)
		if err != nil || (cred.Uid != 0 && int(cred.Uid) != os.Geteuid()) {
			s.log.Warn("control connection refused", "uid", credUID(cred), "err", err)
			refuse(uc, proto.CodeDenied, "permission denied: only root or the instance's owner may use its control socket")
			continue
		}
		if s.conns.Add(1) > MaxControlConns {
			s.conns.Add(-1)
			refused.note(s.log, cred)
			refuse(uc, proto.CodeDenied, fmt.Sprintf("too many control connections (limit %d): close some (each self-attached app holds one)", MaxControlConns))
			continue
		}
		var sess *proto.Session
		sess = proto.NewSession(proto.NewControlConn(uc), func(r *proto.Request) { s.onControlRequest(sess, cred, r) })
		s.do(func() { s.sessions[sess] = &ctlConn{} })
		go func() {
			err := sess.Run() // closes the connection when it returns
			s.conns.Add(-1)
			switch {
			case errors.Is(err, proto.ErrPeerNotReading):
				s.log.Warn("control client dropped: it does not read its replies", "pid", cred.Pid, "err", err)
			case errors.Is(err, proto.ErrFrameTooLarge), errors.Is(err, proto.ErrTooManyFDs):
				s.log.Warn("control client dropped: it broke the protocol", "pid", cred.Pid, "err", err)
			}
			s.do(func() {
				delete(s.sessions, sess)
				s.sessionEnded(sess)
			})
		}()
	}
}

// refuse answers a connection we will not serve with an error, and closes
// it, without waiting on the peer.
func refuse(uc *net.UnixConn, code, msg string) {
	uc.SetWriteDeadline(time.Now().Add(refuseTimeout))
	c := proto.NewControlConn(uc)
	c.ReplyError(nil, code, msg)
	c.Close()
}

// refusals logs connections refused past MaxControlConns, at most once a
// second, so that a burst of them cannot flood the log.
type refusals struct {
	last time.Time
	n    int
}

func (r *refusals) note(log *slog.Logger, cred *unix.Ucred) {
	r.n++
	if now := time.Now(); now.Sub(r.last) >= time.Second {
		log.Warn("control connection refused: too many open", "limit", MaxControlConns, "refused", r.n, "pid", cred.Pid)
		r.last, r.n = now, 0
	}
}

func peerCred(uc *net.UnixConn) (*unix.Ucred, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

func credUID(c *unix.Ucred) int {
	if c == nil {
		return -1
	}
	return int(c.Uid)
}

// sessionEnded forgets the self-attached app whose connection closed, and
// releases its channels. A connection attaches at most one app (see
// handleSelfAttach), but every app linked to it is forgotten, so none can
// stay "running" with nobody behind it. Loop only.
func (s *Supervisor) sessionEnded(sess *proto.Session) {
	for _, c := range slices.Clone(s.components) {
		if c.attached && c.link == sess {
			s.log.Info("self-attached app gone", "name", c.name, "pid", c.pid)
			c.link = nil
			s.dropChannels(c)
			s.remove(c)
		}
	}
}

// attachedOn is the app that attached itself over sess, if any. Loop only.
func (s *Supervisor) attachedOn(sess *proto.Session) *component {
	for _, c := range s.components {
		if c.attached && c.link == sess {
			return c
		}
	}
	return nil
}

// waitSlot counts a request of sess that a goroutine will answer, and
// returns what that goroutine calls once it has; nil (and r answered with
// an error) when sess already has maxWaiting such requests. Loop only.
func (s *Supervisor) waitSlot(sess *proto.Session, r *proto.Request) func() {
	cc := s.sessions[sess]
	if cc == nil {
		r.Error(proto.CodeFailed, "the connection is closing")
		return nil
	}
	if cc.waiting >= maxWaiting {
		r.Error(proto.CodeFailed, fmt.Sprintf("too many requests waiting on this connection (limit %d)", maxWaiting))
		return nil
	}
	cc.waiting++
	return func() { s.do(func() { cc.waiting-- }) }
}

// onControlRequest handles a request from the CLI or a self-attaching app.
// It runs on the session's reader goroutine and hands everything to the
// loop.
func (s *Supervisor) onControlRequest(sess *proto.Session, cred *unix.Ucred, r *proto.Request) {
	if r.Type == proto.MsgCapture {
		s.handleCapture(sess, r) // the one request whose descriptor we want
		return
	}
	closeFiles(r.Files) // nothing else the CLI sends carries descriptors we want
	switch r.Type {
	case proto.MsgCaptureStop:
		s.do(func() { s.stopCaptures(sess, r) })
	case proto.MsgStatus:
		s.do(func() { r.Reply(proto.MsgStatusReply, s.status()) })
	case proto.MsgKill:
		decodeThen(s, r, func(m *proto.Kill) { s.handleKill(r, m) })
	case proto.MsgUpgrade:
		decodeThen(s, r, func(m *proto.Upgrade) { s.handleUpgrade(sess, r, m) })
	case proto.MsgRestart:
		decodeThen(s, r, func(m *proto.Restart) { s.handleRestart(sess, r, m.Name) })
	case proto.MsgStop:
		s.do(func() {
			r.Reply(proto.MsgOK, nil)
			s.beginShutdown()
		})
	case proto.MsgLaunch:
		decodeThen(s, r, func(m *proto.Launch) { s.handleLaunch(sess, r, m) })
	case proto.MsgDetach:
		decodeThen(s, r, func(m *proto.Detach) { s.handleDetach(sess, r, m.Name) })
	case proto.MsgAttach:
		decodeThen(s, r, func(m *proto.Attach) { s.handleSelfAttach(sess, cred, r, m) })
	case proto.MsgReady:
		decodeThen(s, r, func(m *proto.Ready) {
			if c := s.attachedOn(sess); c != nil {
				c.info, c.counters = splitInfo(m.Info)
				s.notify()
				r.Reply(proto.MsgOK, nil)
				return
			}
			r.Error(proto.CodeBadRequest, "ready from a connection that has not attached")
		})
	default:
		r.Error(proto.CodeBadRequest, fmt.Sprintf("unknown request %q", r.Type))
	}
}

// decode decodes r's payload into v, or refuses r as a bad request and
// reports false.
func decode(r *proto.Request, v any) bool {
	if err := r.Decode(v); err != nil {
		r.Error(proto.CodeBadRequest, err.Error())
		return false
	}
	return true
}

// decodeThen decodes r's payload as a T and hands f, with it, to the loop,
// or refuses r as a bad request.
func decodeThen[T any](s *Supervisor, r *proto.Request, f func(m *T)) {
	var m T
	if decode(r, &m) {
		s.do(func() { f(&m) })
	}
}

// onLinkRequest handles a request from a component we started, over its
// link.
func (s *Supervisor) onLinkRequest(c *component, inc int, r *proto.Request) {
	closeFiles(r.Files)
	switch r.Type {
	case proto.MsgReady:
		decodeThen(s, r, func(m *proto.Ready) {
			if c.incarnation != inc || !c.alive() {
				r.Error(proto.CodeFailed, "stale incarnation")
				return
			}
			c.info, c.counters = splitInfo(m.Info)
			s.takeUsage(c, m.Usage)
			if !c.ready {
				c.ready = true
				s.log.Info("ready", "name", c.name, "pid", c.pid, "info", m.Info)
			}
			if c.state == proto.StateStarting {
				c.state = proto.StateRunning
			}
			s.notify()
			r.Reply(proto.MsgOK, nil)
		})
	case proto.MsgAttach:
		decodeThen(s, r, func(m *proto.Attach) {
			switch {
			case c.incarnation != inc || !c.alive():
				r.Error(proto.CodeFailed, "stale incarnation")
			case c.kind != proto.KindApp:
				r.Error(proto.CodeDenied, "servers do not attach")
			default:
				if err := checkServers(m.Servers); err != nil {
					r.Error(proto.CodeBadRequest, err.Error())
					return
				}
				s.attachApp(c, r, m)
			}
		})
	default:
		r.Error(proto.CodeBadRequest, fmt.Sprintf("unknown request %q on a component link", r.Type))
	}
}

func (s *Supervisor) handleKill(r *proto.Request, m *proto.Kill) {
	c := s.find(m.Name)
	if c == nil {
		r.Error(proto.CodeNotFound, fmt.Sprintf("no component called %q", m.Name))
		return
	}
	sigName := m.Signal
	if sigName == "" {
		sigName = "KILL"
	}
	sig, err := ParseSignal(sigName)
	if err != nil {
		r.Error(proto.CodeBadRequest, err.Error())
		return
	}
	if err := s.signal(c, sig); err != nil {
		r.Error(proto.CodeFailed, fmt.Sprintf("kill %s: %v", c.name, err))
		return
	}
	s.log.Info("signalled on request", "name", c.name, "pid", c.pid, "signal", signalName(sig))
	r.Reply(proto.MsgOK, nil)
}

// handleRestart stops c gracefully and starts it afresh, whatever its
// policy, and answers once the new incarnation is ready.
func (s *Supervisor) handleRestart(sess *proto.Session, r *proto.Request, name string) {
	s.restartAndReply(sess, r, name, nil)
}

// handleUpgrade is a restart from another program: every later start of
// the component runs m.Binary (checked before anything stops), and the
// reply says the blackout the restart caused. Servers and apps alike: a
// server's blackout is a kill's (docs/restart.md), an app's a graceful
// restart's.
func (s *Supervisor) handleUpgrade(sess *proto.Session, r *proto.Request, m *proto.Upgrade) {
	c := s.find(m.Name)
	if c != nil && m.Binary != "" {
		if err := checkBinary(m.Binary, c.spec.cred); err != nil {
			r.Error(proto.CodeBadRequest, fmt.Sprintf("upgrade %s: %v", m.Name, err))
			return
		}
	}
	s.restartAndReply(sess, r, m.Name, func(c *component) {
		if m.Binary != "" {
			s.log.Info("upgrading", "name", c.name, "from", c.spec.path, "to", m.Binary)
			c.spec.path = m.Binary
		}
	})
}

// checkBinary reports a program that cannot replace a component's: not an
// absolute path, not a regular file, not executable (by cred's user, when
// the component runs as one).
func checkBinary(path string, cred *syscall.Credential) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s is not an absolute path", path)
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable", path)
	}
	return checkRunnable(cred, path, "")
}

// restartAndReply restarts the named component; before, upgrade (when
// set) changes what it runs, and the reply then carries an UpgradeReply.
func (s *Supervisor) restartAndReply(sess *proto.Session, r *proto.Request, name string, upgrade func(*component)) {
	c := s.find(name)
	switch {
	case c == nil:
		r.Error(proto.CodeNotFound, fmt.Sprintf("no component called %q", name))
		return
	case c.attached:
		r.Error(proto.CodeFailed, fmt.Sprintf("%s attached itself; saturn did not start it and cannot restart it", name))
		return
	case s.shutdown:
		r.Error(proto.CodeFailed, "the instance is stopping")
		return
	}
	answered := s.waitSlot(sess, r)
	if answered == nil {
		return
	}
	after := c.incarnation // the reply waits for a newer one
	if upgrade != nil {
		upgrade(c)
	}
	if c.alive() {
		c.restartAsk = true // the exit that follows starts it again
		s.stop(c)
	} else {
		c.tracker.Reset()
		c.restarts++
		s.start(c)
	}
	go func() {
		defer answered()
		if upgrade == nil {
			s.replyWhenReady(r, name, after)
			return
		}
		s.replyWhenReadyWith(r, name, after, func(c *component) any {
			return &proto.UpgradeReply{Binary: c.spec.path, PID: c.pid, BlackoutNS: time.Since(c.exitedAt).Nanoseconds()}
		})
	}()
}

// replyWhenReady answers r once the named component has an incarnation
// newer than after that is running (a server or a notify app once ready, a
// simple app once started, a notify app that stays silent at ready_timeout:
// see awaitReady), or once it failed or stopped.
func (s *Supervisor) replyWhenReady(r *proto.Request, name string, after int) {
	s.replyWhenReadyWith(r, name, after, nil)
}

// replyWhenReadyWith is replyWhenReady whose OK carries what body says of
// the component (on the loop, as it became ready).
func (s *Supervisor) replyWhenReadyWith(r *proto.Request, name string, after int, body func(*component) any) {
	var reply any
	timeout := s.cfg.Supervisor.ReadyTimeout.D() + s.cfg.Supervisor.StopGrace.D()
	var state, reason string
	ok := s.waitFor(timeout, func() bool {
		c := s.find(name)
		if c == nil {
			state = "gone"
			return true
		}
		state, reason = c.state, c.reason
		newer := c.incarnation > after
		done := newer && (c.state == proto.StateRunning || c.state == proto.StateStopped) || c.state == proto.StateFailed
		if done && body != nil {
			reply = body(c)
		}
		return done
	})
	switch {
	case ok && state == proto.StateRunning:
		r.Reply(proto.MsgOK, reply)
	case ok:
		r.Error(proto.CodeFailed, fmt.Sprintf("%s is %s: %s (see `saturn logs %s`)", name, state, reason, name))
	default:
		r.Error(proto.CodeFailed, fmt.Sprintf("%s is not running after %s: it is %s (see `saturn status`, `saturn logs %s`)", name, timeout, state, name))
	}
}

func (s *Supervisor) handleLaunch(sess *proto.Session, r *proto.Request, m *proto.Launch) {
	if err := configs.CheckName(m.Name); err != nil {
		r.Error(proto.CodeBadRequest, err.Error())
		return
	}
	if s.find(m.Name) != nil {
		r.Error(proto.CodeExists, fmt.Sprintf("a component called %q already exists (detach it first)", m.Name))
		return
	}
	if len(m.Command) == 0 || m.Command[0] == "" {
		r.Error(proto.CodeBadRequest, "no command to run")
		return
	}
	if err := s.roomForApp(); err != nil {
		r.Error(proto.CodeFailed, err.Error())
		return
	}
	if s.shutdown {
		r.Error(proto.CodeFailed, "the instance is stopping")
		return
	}
	var mode configs.RestartMode
	if m.Restart == "" {
		m.Restart = string(configs.RestartOnFailure)
	}
	if err := mode.UnmarshalText([]byte(m.Restart)); err != nil {
		r.Error(proto.CodeBadRequest, err.Error())
		return
	}
	if err := configs.CheckAppType(m.Type); err != nil {
		r.Error(proto.CodeBadRequest, err.Error())
		return
	}
	answered := s.waitSlot(sess, r)
	if answered == nil {
		return
	}
	app := configs.App{Policy: configs.Policy{Restart: mode}, Name: m.Name, Command: m.Command, Env: m.Env, Dir: m.Dir}
	app.Policy.FillDefaults()
	c := &component{
		name: m.Name, kind: proto.KindApp, tracker: NewTracker(app.Policy), state: proto.StateStopped,
		spec: s.appSpec(m.Command, app.EnvList(), m.Dir),
	}
	c.appType = appType(m.Type, c.spec.path, c.spec.dir, s.opts.Binary)
	if err := s.identify(c, nil, m.User, m.Listen, m.DiskWrite); err != nil {
		answered()
		r.Error(proto.CodeBadRequest, err.Error())
		return
	}
	s.components = append(s.components, c)
	s.start(c)
	if c.state == proto.StateFailed {
		answered()
		reason := c.reason
		s.remove(c)
		r.Error(proto.CodeFailed, fmt.Sprintf("%s: %s", m.Name, reason))
		return
	}
	go func() {
		defer answered()
		s.replyWhenReady(r, m.Name, c.incarnation-1)
	}()
}

func (s *Supervisor) handleDetach(sess *proto.Session, r *proto.Request, name string) {
	c := s.find(name)
	switch {
	case c == nil:
		r.Error(proto.CodeNotFound, fmt.Sprintf("no component called %q", name))
		return
	case c.kind != proto.KindApp:
		r.Error(proto.CodeDenied, fmt.Sprintf("%s is a server; servers cannot be detached", name))
		return
	case c.attached:
		r.Error(proto.CodeFailed, fmt.Sprintf("%s attached itself; it detaches by exiting or closing its connection", name))
		return
	}
	if !c.alive() {
		s.dropChannels(c)
		s.remove(c)
		r.Reply(proto.MsgOK, nil)
		return
	}
	answered := s.waitSlot(sess, r)
	if answered == nil {
		return
	}
	c.detachAsk = true
	s.stop(c)
	go func() {
		defer answered()
		s.waitFor(s.cfg.Supervisor.StopGrace.D()+5*time.Second, func() bool { return !contains(s.components, c) })
		r.Reply(proto.MsgOK, nil)
	}()
}

func contains(cs []*component, c *component) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// handleSelfAttach registers an app that someone else started and that
// attaches itself over the control socket. One connection attaches one
// app: the connection is the app's life (its end forgets the app), and a
// second app on it would have no life of its own to end.
func (s *Supervisor) handleSelfAttach(sess *proto.Session, cred *unix.Ucred, r *proto.Request, m *proto.Attach) {
	if err := configs.CheckName(m.Name); err != nil {
		r.Error(proto.CodeBadRequest, err.Error())
		return
	}
	if err := checkServers(m.Servers); err != nil {
		r.Error(proto.CodeBadRequest, err.Error())
		return
	}
	if s.sessions[sess] == nil {
		r.Error(proto.CodeFailed, "the connection is closing")
		return
	}
	if c := s.attachedOn(sess); c != nil {
		r.Error(proto.CodeDenied, fmt.Sprintf("this connection already attached %q: one app per connection (open another)", c.name))
		return
	}
	if s.shutdown {
		r.Error(proto.CodeFailed, "the instance is stopping")
		return
	}
	if c := s.find(m.Name); c != nil {
		r.Error(proto.CodeExists, fmt.Sprintf("a component called %q already exists", m.Name))
		return
	}
	if m.PID != 0 && m.PID != int(cred.Pid) {
		r.Error(proto.CodeDenied, fmt.Sprintf("attach says pid %d, but the socket's peer is pid %d", m.PID, cred.Pid))
		return
	}
	if err := s.roomForApp(); err != nil {
		r.Error(proto.CodeFailed, err.Error())
		return
	}
	c := &component{
		name: m.Name, kind: proto.KindApp, attached: true, state: proto.StateRunning,
		pid: int(cred.Pid), startedAt: time.Now(), link: sess, incarnation: 1,
		tracker: NewTracker(configs.Policy{Restart: configs.RestartNever}), lastExit: "-",
		// It runs as whoever started it: the instance's owner (the only
		// user the control socket admits, who could grant anything in the
		// config), with the grants it asks for.
		uid: cred.Uid, grants: &proto.ChannelGrants{}, servers: configs.AppServers(nil),
	}
	if g := m.Grants; g != nil {
		for _, l := range g.Listen {
			if _, err := proto.ParseListenGrant(l); err != nil {
				r.Error(proto.CodeBadRequest, err.Error())
				return
			}
		}
		c.grants = &proto.ChannelGrants{Listen: slices.Clone(g.Listen), DiskWrite: slices.Clone(g.DiskWrite)}
	}
	s.components = append(s.components, c)
	s.attachApp(c, r, m)
	if c.channels == nil {
		s.remove(c) // channels failed; attachApp answered with the error
	}
}

// checkServers checks the servers an attach names: each once, each a
// server that exists, and no more channels than one reply's descriptors
// can carry (each channel travels as a region and two doorbells).
func checkServers(servers []string) error {
	seen := map[string]bool{}
	for _, name := range servers {
		switch {
		case seen[name]:
			return fmt.Errorf("attach names server %q twice", name)
		case !slices.Contains(serverNames, name):
			return fmt.Errorf("no server called %q (servers: %v)", name, serverNames)
		}
		seen[name] = true
	}
	if n := max(len(servers), len(serverNames)) * (proto.ChannelDesc{Bells: true}).FDCount(); n > proto.MaxFDs {
		return fmt.Errorf("attach to %d servers needs %d descriptors, more than a reply carries (%d)", len(servers), n, proto.MaxFDs)
	}
	return nil
}

// takeUsage records what server c reports each app holds in it, on the
// channels it names (a channel it names that is gone is ignored). Loop
// only.
func (s *Supervisor) takeUsage(c *component, usage []proto.ChannelUsage) {
	if c.kind != proto.KindServer {
		return
	}
	byID := map[uint64]*proto.ChannelUsage{}
	for i := range usage {
		byID[usage[i].ID] = &usage[i]
	}
	for _, ch := range s.channelsFor(c.name) {
		ch.usage = byID[ch.id]
	}
}

// status builds the answer to `saturn status`. Loop only.
func (s *Supervisor) status() *proto.StatusReply {
	out := &proto.StatusReply{Instance: s.opts.Paths.Instance, Supervisor: os.Getpid(), MetricsError: s.metricsErr}
	if s.metrics != nil {
		out.Metrics = "http://" + s.metrics.addr + "/metrics"
	}
	out.Config = s.configStatus()
	for _, c := range s.components {
		row := proto.ComponentStatus{
			Name: c.name, Kind: c.kind, PID: c.pid, State: c.state, Restarts: c.restarts,
			LastExit: c.lastExit, Reason: c.reason, Policy: string(c.tracker.Policy.Restart),
			Attached: c.attached, Info: c.info, Counters: c.counters, User: c.userString(), Type: c.appType,
		}
		if row.LastExit == "" {
			row.LastExit = "-"
		}
		if c.alive() {
			row.Uptime = time.Since(c.startedAt).Seconds()
		}
		if c.kind == proto.KindServer {
			for _, ch := range s.channelsFor(c.name) {
				cnt := ch.region.Counters()
				epoch, _ := ch.region.ServerEpoch()
				row.Channels = append(row.Channels, proto.ChannelStatus{
					ID: ch.id, App: ch.app.name, Server: ch.server, Epoch: epoch,
					SQDepth: cnt.SQDepth, CQDepth: cnt.CQDepth, Submitted: cnt.Submitted, Completed: cnt.Completed,
					Usage: ch.usage,
				})
			}
		}
		out.Components = append(out.Components, row)
	}
	return out
}
