package serverkit

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"saturn/proto"
)

// Serve runs a server component under its supervisor: it opens the control
// link, serves channels as they arrive and leave with handler's logic, says
// ready (with what info returns, shown in status) once the loop runs, and
// returns when ctx is cancelled or the supervisor goes away.
func Serve(ctx context.Context, server proto.Server, handler Handler, log *slog.Logger, info func() map[string]string) error {
	return ServeWith(ctx, server, handler, log, info, nil)
}

// ServeWith is Serve with a setup step that runs once the loop exists and
// before it runs (to add the server's own descriptors with Loop.AddFD).
// After setup, the server switches to its own user if the supervisor named
// one (privilege.go).
func ServeWith(ctx context.Context, server proto.Server, handler Handler, log *slog.Logger, info func() map[string]string, setup func(*Loop) error) error {
	if err := proto.NotDumpable(); err != nil {
		log.Warn("cannot make the server non-dumpable", "err", err)
	}
	loop, err := NewLoop(server, handler, log)
	if err != nil {
		return err
	}
	if setup != nil {
		if err := setup(loop); err != nil {
			loop.close()
			return err
		}
	}
	// The privileged part of the start is over (the backend is made and
	// set up): from here on the server runs as its own user.
	if err := dropPrivileges(log); err != nil {
		loop.close()
		return err
	}
	link, err := proto.LinkFromEnv(func(r *proto.Request) { onRequest(loop, log, r) })
	if err != nil {
		loop.close()
		return err
	}
	defer link.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-link.Done():
			log.Warn("supervisor gone; exiting", "err", link.Session.Err())
			cancel()
		case <-ctx.Done():
		}
	}()
	ready := make(chan error, 1)
	loop.Post(func() {
		go func() { ready <- link.Ready(ctx, info()) }()
	})
	errc := make(chan error, 1)
	go func() { errc <- loop.Run(ctx) }()
	select {
	case err := <-ready:
		if err != nil {
			cancel()
			<-errc
			return fmt.Errorf("reporting ready: %w", err)
		}
		log.Info("ready", "info", withoutCounters(info()))
	case err := <-errc:
		return err
	}
	go refreshInfo(ctx, link, log, info, loop)
	return <-errc
}

// UsageReporter is a Handler that reports what each app holds in the
// server against its limits (netproc: sockets and memory), for status.
// Usage runs on the loop.
type UsageReporter interface {
	Usage() []proto.ChannelUsage
}

// usage asks the handler for its usage on the loop, giving up after
// InfoRefresh (a loop that busy shows the last figures).
func (l *Loop) usage(ctx context.Context) ([]proto.ChannelUsage, bool) {
	ur, ok := l.handler.(UsageReporter)
	if !ok {
		return nil, true
	}
	res := make(chan []proto.ChannelUsage, 1)
	l.Post(func() { res <- ur.Usage() })
	t := time.NewTimer(InfoRefresh)
	defer t.Stop()
	select {
	case u := <-res:
		return u, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// InfoRefresh is how often a server's info is read again and, when it
// changed (a backend's counters), reported to the supervisor with another
// ready message, so that status shows figures at most this old.
const InfoRefresh = time.Second

// refreshInfo reports info, and the handler's usage, again whenever they
// change, until ctx ends.
func refreshInfo(ctx context.Context, link *proto.Link, log *slog.Logger, info func() map[string]string, loop *Loop) {
	last := info()
	var lastUsage []proto.ChannelUsage
	t := time.NewTicker(InfoRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := info()
		usage, ok := loop.usage(ctx)
		if !ok {
			usage = lastUsage
		}
		if maps.Equal(cur, last) && slices.Equal(usage, lastUsage) {
			continue
		}
		if err := link.Report(ctx, cur, usage); err != nil {
			if ctx.Err() == nil {
				log.Warn("reporting info", "err", err)
			}
			return
		}
		last, lastUsage = cur, usage
	}
}

// Controller is a Handler that serves control requests of its own from
// the supervisor, beyond channels (netproc's packet capture). Control runs
// on the control link's reader: it must not block (hand loop work over with
// Loop.Post, and Reply from wherever the work ends). It reports whether it
// took the request; one it does not take is refused.
type Controller interface {
	Control(r *proto.Request) bool
}

// onRequest handles the supervisor's requests; it runs on the link's
// reader and hands the work to the loop.
func onRequest(loop *Loop, log *slog.Logger, r *proto.Request) {
	switch r.Type {
	case proto.MsgChannel:
		var m proto.Channel
		if err := r.Decode(&m); err != nil {
			closeFiles(r.Files)
			r.Error(proto.CodeBadRequest, err.Error())
			return
		}
		ch, err := Open(m.Channel, r.Files)
		if err != nil {
			log.Error("cannot open channel", "id", m.Channel.ID, "app", m.Channel.App, "err", err)
			r.Error(proto.CodeFailed, err.Error())
			return
		}
		loop.Post(func() {
			if err := loop.AddChannel(ch); err != nil {
				ch.Close()
				r.Error(proto.CodeFailed, err.Error())
				return
			}
			r.Reply(proto.MsgOK, nil)
		})
	case proto.MsgDrop:
		var m proto.Drop
		if err := r.Decode(&m); err != nil {
			r.Error(proto.CodeBadRequest, err.Error())
			return
		}
		loop.Post(func() {
			loop.DropChannel(m.ID)
			r.Reply(proto.MsgOK, nil)
		})
	default:
		if c, ok := loop.handler.(Controller); ok && c.Control(r) {
			return
		}
		closeFiles(r.Files)
		r.Error(proto.CodeBadRequest, fmt.Sprintf("a server takes no %q requests", r.Type))
	}
}

// withoutCounters drops the counters (dotted keys, such as netproc's
// "tcp.in_segs") from info, for the log.
func withoutCounters(info map[string]string) map[string]string {
	maps.DeleteFunc(info, func(k, _ string) bool { return strings.Contains(k, ".") })
	return info
}
