// Package diskproc is saturn's disk server: it serves file operations from
// every attached app over their rings.
//
// This is the server process's shell: it runs under the supervisor,
// receives app channels, and answers them on serverkit's loop. File
// operations arrive with the io_uring and thread-pool backends; until then
// every file call is answered ENOSYS, and status says so.
package diskproc

import (
	"context"
	"log/slog"
	"syscall"

	"saturn/configs"
	"saturn/internal/serverkit"
	"saturn/proto"
)

// Main runs diskproc under its supervisor until ctx ends or the supervisor
// goes away.
func Main(ctx context.Context, cfg *configs.Config, log *slog.Logger) error {
	h := &handler{}
	info := func() map[string]string {
		return map[string]string{"backend": "none (file operations are not implemented yet)", "root": cfg.Diskproc.Root}
	}
	return serverkit.Serve(ctx, proto.ServerDisk, h, log, info)
}

type handler struct{}

func (h *handler) Added(ch *serverkit.Channel) error { return nil }
func (h *handler) Dropped(ch *serverkit.Channel)     {}

func (h *handler) Submit(ch *serverkit.Channel, sub *proto.Submission) {
	ch.CompleteErr(sub, syscall.ENOSYS, false)
}
