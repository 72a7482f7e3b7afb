package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// NetnsClaimDir holds one lock file per network namespace that a running
// instance's usertcp netproc uses. It is machine-wide, not under the state
// directory, because namespaces are machine-wide: two instances with
// different state directories (or two users of the built-in config, whose
// namespace is always saturn-default) must still not share one.
var NetnsClaimDir = "/run/saturn-netns"

// claimNetns takes the instance's claim on netproc's namespace for as long
// as the supervisor runs (through every netproc restart), so that a second
// instance configured with the same namespace is refused at start with a
// message naming the first, rather than starting a second netproc beside
// it: that one's TUN device cannot enter the namespace, "auto" falls back
// to the kernel's sockets, and its web server then fights the first
// instance's published port. Only the usertcp and auto backends use a
// namespace. Where the claim cannot be taken for another reason (not root:
// then usertcp cannot run either), the start goes on without it.
func (s *Supervisor) claimNetns() error {
	n := s.cfg.Netproc
	if n.Backend == "kernel" || n.Netns == "" {
		return nil
	}
	if err := os.MkdirAll(NetnsClaimDir, 0o755); err != nil {
		s.log.Debug("no namespace claim", "dir", NetnsClaimDir, "err", err)
		return nil
	}
	path := filepath.Join(NetnsClaimDir, n.Netns+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		s.log.Debug("no namespace claim", "path", path, "err", err)
		return nil
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			s.log.Debug("no namespace claim", "path", path, "err", err)
			return nil
		}
		holder, _ := os.ReadFile(path)
		where := "in " + s.cfg.Source
		if s.cfg.Source == "" {
			where = "in a config of its own: `saturn config print > FILE` writes the built-in one to start from; then start with --config FILE"
		}
		return fmt.Errorf("netproc's network namespace %q is in use by %s: give this instance a namespace and an address of its own ([netproc] netns and address, and a free publish port, %s), or backend = \"kernel\"",
			n.Netns, describeHolder(string(holder)), where)
	}
	who := fmt.Sprintf("instance %q (supervisor pid %d, state %s)\n", s.opts.Paths.Instance, os.Getpid(), s.opts.Paths.Dir)
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(who), 0)
	}
	s.netnsF = f
	return nil
}

// describeHolder is what the claim's holder wrote of itself.
func describeHolder(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "another instance"
	}
	return s
}

// releaseNetns gives the claim up: the file stays (removing it would race
// with a new claimant's open), the lock goes with the descriptor.
func (s *Supervisor) releaseNetns() {
	if s.netnsF != nil {
		s.netnsF.Truncate(0)
		s.netnsF.Close()
		s.netnsF = nil
	}
}
