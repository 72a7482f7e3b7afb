// Package netproc is saturn's network server: it owns every socket and
// serves socket calls from all attached apps over their rings.
//
// This is the server process's shell: it runs under the supervisor,
// receives app channels, and answers them on serverkit's loop. Socket
// operations arrive with the kernel-socket backend (and then the user-level
// stack); until then every socket call is answered ENOSYS, and status says
// so.
package netproc

import (
	"context"
	"log/slog"
	"syscall"

	"saturn/configs"
	"saturn/internal/serverkit"
	"saturn/proto"
)

// Main runs netproc under its supervisor until ctx ends or the supervisor
// goes away.
func Main(ctx context.Context, cfg *configs.Config, log *slog.Logger) error {
	h := &handler{}
	info := func() map[string]string {
		return map[string]string{"backend": "none (socket operations are not implemented yet)"}
	}
	return serverkit.Serve(ctx, proto.ServerNet, h, log, info)
}

type handler struct{}

func (h *handler) Added(ch *serverkit.Channel) error { return nil }
func (h *handler) Dropped(ch *serverkit.Channel)     {}

func (h *handler) Submit(ch *serverkit.Channel, sub *proto.Submission) {
	ch.CompleteErr(sub, syscall.ENOSYS, false)
}
