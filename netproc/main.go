package netproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"saturn/configs"
	"saturn/internal/component"
	"saturn/internal/serverkit"
	"saturn/netproc/backend"
	"saturn/netproc/kernel"
	"saturn/netproc/usertcp"
	"saturn/proto"
)

// backends are the socket implementations this build can run, by their
// name in the config.
var backends = map[string]func(cfg configs.Netproc) (backend.Backend, error){
	"kernel":  func(configs.Netproc) (backend.Backend, error) { return kernel.New(), nil },
	"usertcp": newUserTCP,
}

// newUserTCP makes saturn's own stack: a TUN device in the configured
// namespace (which fails without root, or without /dev/net/tun), and its
// connection table in the persistent memory the supervisor keeps for
// netproc, so that a restarted netproc finds what the dead one left.
func newUserTCP(cfg configs.Netproc) (backend.Backend, error) {
	c, err := usertcp.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	if f, err := component.Persist(); err == nil {
		c.Persist = f
	}
	return usertcp.New(c)
}

// autoOrder is what backend = "auto" tries, best first.
var autoOrder = []string{"usertcp", "kernel"}

// ErrNoBackend: the configured backend is not in this build.
var ErrNoBackend = errors.New("netproc: backend not available")

// chooseBackend makes the backend the config asks for, and says how it was
// chosen, for status.
func chooseBackend(cfg configs.Netproc) (be backend.Backend, chosen string, err error) {
	if cfg.Backend != "auto" {
		mk, ok := backends[cfg.Backend]
		if !ok {
			return nil, "", fmt.Errorf("%w: %q is not built yet; use backend = \"kernel\" or \"auto\"", ErrNoBackend, cfg.Backend)
		}
		be, err := mk(cfg)
		if err != nil {
			return nil, "", fmt.Errorf("netproc: backend %q: %w", cfg.Backend, err)
		}
		return be, "", nil
	}
	var why []string
	for _, name := range autoOrder {
		mk, ok := backends[name]
		if !ok {
			why = append(why, name+" is not built yet")
			continue
		}
		be, err := mk(cfg)
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		note := "auto"
		if len(why) > 0 {
			note = fmt.Sprintf("auto (%s)", why[0])
		}
		return be, note, nil
	}
	return nil, "", fmt.Errorf("%w: auto found none: %v", ErrNoBackend, why)
}

// info is what status shows: the backend, how it was chosen, and what the
// backend adds (a usertcp backend's netns and address).
func info(be backend.Backend, chosen string) map[string]string {
	m := map[string]string{}
	maps.Copy(m, be.Info())
	m["backend"] = be.Name()
	if chosen != "" {
		m["chosen"] = chosen
	}
	return m
}

// Main runs netproc under its supervisor until ctx ends or the supervisor
// goes away.
func Main(ctx context.Context, cfg *configs.Config, log *slog.Logger) error {
	be, chosen, err := chooseBackend(cfg.Netproc)
	if err != nil {
		return err
	}
	h := NewHandler(Options{Backend: be, Log: log, Limits: Limits{Sockets: cfg.Netproc.MaxSockets}})
	defer h.Close()
	return serverkit.ServeWith(ctx, proto.ServerNet, h, log, func() map[string]string { return info(be, chosen) }, h.Start)
}
