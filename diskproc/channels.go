package diskproc

import (
	"time"

	"golang.org/x/sys/unix"

	"saturn/internal/serverkit"
	"saturn/proto"
)

// Added is called when a channel arrives: a new app, or after a restart
// every app again. It rebuilds the app's table from the persistent records
// before the channel is served, so the requests the app replays find their
// handles.
func (s *Server) Added(ch *serverkit.Channel) error {
	a := newAppState(ch)
	s.applyGrants(a, ch.Desc)
	ch.Data = a
	s.apps[a.id] = a
	s.back.addChannel(a)
	recs := s.byChan[a.id]
	delete(s.byChan, a.id)
	reopened, stale := 0, 0
	for i := range recs {
		r := recs[i]
		switch r.state {
		case slotOpening:
			a.intents[r.openUD] = &r
		case slotClosed:
			a.closedBefore[r.handle] = true
		case slotOpen:
			if s.rebuild(a, &r) {
				reopened++
			} else {
				stale++
			}
		}
	}
	if len(recs) > 0 {
		s.log.Info("rebuilt an app's open files", "channel", a.id, "app", ch.Desc.App,
			"reopened", reopened, "stale", stale, "pending_opens", len(a.intents), "closed", len(a.closedBefore))
	}
	return nil
}

// rebuild reopens one file of a dead incarnation under its old handle.
func (s *Server) rebuild(a *appState, r *record) bool {
	a.openedBefore[r.openUD] = r.handle
	dir, path := s.root, r.path
	if r.flags.Writable() {
		// Writable only under a grant the app still has, and resolved
		// beneath its folder, as the first open was.
		under, ok := a.writableFor(r.path)
		if !ok {
			s.log.Warn("a file open for writing before the restart is no longer granted", "channel", a.id, "path", r.path)
			a.stale[r.handle] = true
			s.persist.release(r.slot)
			return false
		}
		if under != nil {
			dir, path = under.fd, under.rel(r.path)
		}
	}
	res, same, err := reopen(dir, path, r)
	if err != nil || !same {
		s.log.Warn("a file open before the restart is gone or replaced", "channel", a.id, "path", r.path, "err", err)
		a.stale[r.handle] = true
		s.persist.release(r.slot)
		return false
	}
	f := &file{handle: r.handle, fd: res.fd, flags: r.flags, typ: res.stat.Type, rec: r}
	if r.flags&proto.OpenDirect != 0 {
		f.directAlign, f.directMem = res.stat.DirectAlign, res.stat.DirectMem
	}
	s.back.addFile(f)
	a.files[f.handle] = f
	return true
}

// Dropped is called when an app's channel leaves, or for every channel
// when the server stops. The kernel may still be reading into its buffers,
// which are about to be unmapped: wait for every op of the app to finish
// first, then close its files. If the app left, its records go too; if the
// server is stopping, they stay for the next incarnation, which reopens
// the files (a graceful restart loses nothing either).
func (s *Server) Dropped(ch *serverkit.Channel) {
	a, ok := ch.Data.(*appState)
	if !ok {
		return
	}
	s.drain(a)
	a.closeGrants()
	keep := s.loop != nil && s.loop.Stopping()
	for _, f := range a.files {
		s.closeFile(f)
		if !keep {
			s.persist.release(f.rec.slot)
		}
	}
	if keep {
		s.back.dropChannel(a)
		delete(s.apps, a.id)
		ch.Data = nil
		return
	}
	for _, r := range a.intents {
		s.persist.release(r.slot)
	}
	for i := 0; i < s.persist.slots; i++ { // tombstones and anything else of the app
		if r, ok := s.persist.read(i); ok && r.channel == a.id && r.state == slotClosed {
			s.persist.release(i)
		}
	}
	s.back.dropChannel(a)
	delete(s.apps, a.id)
	ch.Data = nil
}

// drain waits until none of a's ops is in flight, serving completions of
// every app meanwhile.
func (s *Server) drain(a *appState) {
	deadline := time.Now().Add(time.Minute)
	for a.inflight > 0 {
		s.back.flush()
		if a.inflight == 0 {
			break
		}
		if time.Now().After(deadline) {
			// A disk that does not answer in a minute: unmapping now could
			// let the kernel write into reused memory, so keep waiting, but
			// say so.
			s.log.Error("an app's disk requests have not finished after a minute; still waiting", "channel", a.id, "inflight", a.inflight)
			deadline = time.Now().Add(time.Minute)
		}
		s.back.poll(10)
	}
}

// releaseOrphans frees the records of channels that never came back after
// a restart: their apps went away while no diskproc was running, so the
// supervisor's drop never reached one.
func (s *Server) releaseOrphans() {
	for id, recs := range s.byChan {
		for _, r := range recs {
			s.persist.release(r.slot)
		}
		s.log.Info("released the open files of an app that left during a restart", "channel", id, "records", len(recs))
		delete(s.byChan, id)
	}
}

// closeFile closes f's descriptor (its ops have finished).
func (s *Server) closeFile(f *file) {
	if f.closed {
		return
	}
	f.closed = true
	s.back.removeFile(f)
	unix.Close(f.fd)
}
