package proto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// The component side of the control protocol: how a server, or an app the
// supervisor started, finds its control link, reports ready, and learns
// that the supervisor is gone; and how an app that someone else started
// finds the instance to attach to.
//
// The supervisor starts each component with one end of a socket pair as an
// inherited descriptor named by SATURN_CONTROL_FD, and describes the
// instance in the other variables below. A process that someone else
// started finds the instance from SATURN_STATE_DIR and SATURN_INSTANCE (or
// their defaults) and dials its control socket instead.

// Environment variables the supervisor sets for its components.
const (
	EnvControlFD     = "SATURN_CONTROL_FD"     // the inherited control link
	EnvName          = "SATURN_COMPONENT"      // the component's name
	EnvInstance      = "SATURN_INSTANCE"       // the instance's name
	EnvStateDir      = "SATURN_STATE_DIR"      // the state directory
	EnvControlSocket = "SATURN_CONTROL_SOCKET" // the instance's control socket
	EnvConfig        = "SATURN_CONFIG"         // the effective configuration file
	EnvPersistFD     = "SATURN_PERSIST_FD"     // a server's persistent memory
	EnvDumpable      = "SATURN_DUMPABLE"       // 1: stay dumpable (see NotDumpable)
	EnvServerUser    = "SATURN_SERVER_USER"    // UID:GID a server switches to once set up
)

// Link is a component's control link to its supervisor.
type Link struct {
	Name    string
	Session *Session
}

// ErrNotSupervised: the process was not started by a supervisor.
var ErrNotSupervised = errors.New("proto: not started by a saturn supervisor (no " + EnvControlFD + ")")

// LinkFromEnv opens the control link the supervisor passed, and starts
// serving the supervisor's requests with handler (nil for none). The
// link's descriptor is removed from the environment's reach: children of
// this process do not inherit it.
func LinkFromEnv(handler func(*Request)) (*Link, error) {
	v := os.Getenv(EnvControlFD)
	if v == "" {
		return nil, ErrNotSupervised
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("proto: %s=%q is not a descriptor", EnvControlFD, v)
	}
	f := os.NewFile(uintptr(fd), "control-link")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("proto: control link: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("proto: control link is not a Unix socket")
	}
	os.Unsetenv(EnvControlFD)
	s := NewSession(NewControlConn(uc), handler)
	go s.Run()
	return &Link{Name: os.Getenv(EnvName), Session: s}, nil
}

// Ready tells the supervisor the component is ready, with what it reports
// of itself (shown in status). Call it again when that changes.
func (l *Link) Ready(ctx context.Context, info map[string]string) error {
	return l.Report(ctx, info, nil)
}

// Report is Ready with a server's figures for each app's channel.
func (l *Link) Report(ctx context.Context, info map[string]string, usage []ChannelUsage) error {
	_, err := l.Session.Call(ctx, MsgReady, &Ready{Name: l.Name, Info: info, Usage: usage}, nil)
	return err
}

// Done is closed when the supervisor is gone (or closed the link). A
// component then exits: without its supervisor it has no channels to
// serve and nobody to restart it.
func (l *Link) Done() <-chan struct{} { return l.Session.Done() }

// Close closes the link.
func (l *Link) Close() error { return l.Session.Close() }

// DefaultStateDir is where instances live unless told otherwise:
// /run/saturn for root, else $XDG_RUNTIME_DIR/saturn, or saturn-UID under
// the temporary folder when that is unset.
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/run/saturn"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "saturn")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("saturn-%d", os.Geteuid()))
}

// PersistFromEnv returns the server's persistent memory: a memfd the
// supervisor keeps for the life of the instance and hands to every
// incarnation of the server, so that a restarted server finds there what
// the dead one left (diskproc its open files, netproc its connections). It
// is empty (zeros) at the first start. The caller owns the returned file.
func PersistFromEnv() (*os.File, error) {
	return inheritedFile(EnvPersistFD, "persist", "persistent memory")
}

// inheritedFile takes the descriptor that the supervisor passed and the
// environment variable key names, as a file called name; what says what
// it is, for the error when key is unset. The variable is unset and the
// descriptor made close-on-exec, so that no child inherits it.
func inheritedFile(key, name, what string) (*os.File, error) {
	v := os.Getenv(key)
	if v == "" {
		return nil, fmt.Errorf("proto: no %s (%s unset)", what, key)
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("proto: %s=%q is not a descriptor", key, v)
	}
	os.Unsetenv(key)
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), name), nil
}

// NotDumpable makes the calling process non-dumpable (prctl
// PR_SET_DUMPABLE 0): no core dump of its memory, which maps channels'
// shared regions, and no tracing or /proc/PID access by another process of
// the same user without CAP_SYS_PTRACE. Every saturn component calls it
// at start (docs/security.md), unless SATURN_DUMPABLE=1.
func NotDumpable() error {
	if os.Getenv(EnvDumpable) == "1" {
		return nil
	}
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
