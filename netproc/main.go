package netproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime"

	"saturn/configs"
	"saturn/internal/serverkit"
	"saturn/netproc/backend"
	"saturn/netproc/kernel"
	"saturn/netproc/usertcp"
	"saturn/proto"
)

// backends are the socket implementations this build can run, by their
// name in the config.
var backends = map[string]func(cfg configs.Netproc) (backend.Backend, error){
	"kernel":  newKernel,
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
	if f, err := proto.PersistFromEnv(); err == nil {
		c.Persist = f
	}
	return usertcp.New(c)
}

// newKernel makes the kernel-socket backend, with netproc's persistent
// memory and its end of the supervisor's descriptor store, so that its
// sockets outlive the process (netproc/kernel's resume.go). Under "auto"
// after usertcp failed, the persistent memory is gone with it, and the
// sockets die with netproc.
func newKernel(configs.Netproc) (backend.Backend, error) {
	var cfg kernel.Config
	if f, err := proto.PersistFromEnv(); err == nil {
		cfg.Persist = f
	}
	if f, err := proto.FDStoreFromEnv(); err == nil {
		cfg.Store = f
	}
	return kernel.NewWith(cfg), nil
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

// oneProc gives a netproc on the usertcp backend one P (GOMAXPROCS=1)
// unless the environment sets GOMAXPROCS. All of its work, the stack
// included, runs on the loop goroutine, which never parks: it spins, then
// sleeps in epoll_wait in a raw system call. A second P only lets the
// runtime hand that goroutine from thread to thread (sysmon takes the P of
// a thread asleep in epoll_wait; a goroutine that spins is preempted every
// 10 ms) and wake idle threads that find nothing to run. On two cores
// (docs/benchmarks.md, "netproc (usertcp)"), in interleaved A/B runs,
// netproc with one P served 1.1x to 1.44x the HTTP requests and moved
// 1.1x to 1.45x the bulk bytes per second, with about a third fewer
// context switches. (On the kernel backend it made no difference.)
func oneProc(be backend.Backend, log *slog.Logger) {
	if be.Name() != "usertcp" || os.Getenv("GOMAXPROCS") != "" {
		return
	}
	if prev := runtime.GOMAXPROCS(1); prev != 1 {
		log.Info("usertcp: one P for the loop", "GOMAXPROCS", 1, "was", prev)
	}
}

// Main runs netproc under its supervisor until ctx ends or the supervisor
// goes away.
func Main(ctx context.Context, cfg *configs.Config, log *slog.Logger) error {
	be, chosen, err := chooseBackend(cfg.Netproc)
	if err != nil {
		return err
	}
	oneProc(be, log)
	if f, err := proto.FDStoreFromEnv(); err == nil {
		// A backend that keeps no descriptors there (usertcp): close what
		// an earlier incarnation on the kernel backend left.
		kernel.DiscardStore(f, log)
	}
	// Before ServeWith: netproc is still root, for the host's ports.
	pub := startPublish(cfg.Netproc, be.Name(), log)
	defer pub.Close()
	h := NewHandler(Options{Backend: be, Log: log, MaxApps: cfg.Supervisor.MaxApps,
		Limits: Limits{Sockets: cfg.Netproc.MaxSockets, Memory: int64(cfg.Netproc.MaxMemory)}})
	defer h.Close()
	return serverkit.ServeWith(ctx, proto.ServerNet, h, log, func() map[string]string {
		m := info(be, chosen)
		if s := pub.String(); s != "" {
			m["publish"] = s
		}
		return m
	}, h.Start)
}
