package serverkit

import (
	"context"
	"fmt"
	"log/slog"

	"saturn/internal/component"
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
func ServeWith(ctx context.Context, server proto.Server, handler Handler, log *slog.Logger, info func() map[string]string, setup func(*Loop) error) error {
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
	link, err := component.FromEnv(func(r *proto.Request) { onRequest(loop, log, r) })
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
		log.Info("ready", "info", info())
	case err := <-errc:
		return err
	}
	return <-errc
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
		closeFiles(r.Files)
		r.Error(proto.CodeBadRequest, fmt.Sprintf("a server takes no %q requests", r.Type))
	}
}
