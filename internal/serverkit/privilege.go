package serverkit

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// A server runs under a user of its own, with no capabilities, once it is
// set up. The supervisor starts it as root (it must be: netproc creates
// its TUN device and namespace, diskproc opens its root and pins memory for
// io_uring) and names the user in SATURN_SERVER_USER; the server does the
// privileged part of its start, then switches every thread to that user.
// Leaving uid 0 for another clears every capability of every thread (the
// kernel does it when no uid of a thread is 0 any more), and Go's
// syscall.Setresuid changes every thread, with or without cgo. What the
// server holds already (the TUN's descriptor, the root's, an io_uring) it
// keeps; what it would need a privilege for later, it cannot do.
// diskproc's io_uring is made while it still holds CAP_IPC_LOCK, and the
// kernel decides then whether the ring's registered buffers count against
// RLIMIT_MEMLOCK, so registering a channel's pool later still works past
// that limit; [diskproc] max_pinned bounds them instead. docs/security.md
// says who runs as whom.

// dropPrivileges switches the process to the user SATURN_SERVER_USER names
// ("UID:GID"), with no supplementary groups, and checks that no thread kept
// a capability. Without the variable it does nothing; run by anyone but
// root it cannot switch and says so.
func dropPrivileges(log *slog.Logger) error {
	v := os.Getenv(proto.EnvServerUser)
	if v == "" {
		return nil
	}
	os.Unsetenv(proto.EnvServerUser)
	uid, gid, err := parseUser(v)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		log.Warn("not root: cannot switch to the server's own user", "want", v, "uid", os.Geteuid())
		return nil
	}
	if uid == 0 {
		return fmt.Errorf("%s=%q: a server's own user cannot be root", proto.EnvServerUser, v)
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("dropping supplementary groups: %w", err)
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return fmt.Errorf("switching to gid %d: %w", gid, err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("switching to uid %d: %w", uid, err)
	}
	if err := checkDropped(uid); err != nil {
		return err
	}
	// A change of credentials makes the process non-dumpable already
	// (fs.suid_dumpable); SATURN_DUMPABLE=1 asks to keep it dumpable.
	if os.Getenv(proto.EnvDumpable) == "1" {
		unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0)
	}
	log.Info("running as the server's own user, without capabilities", "uid", uid, "gid", gid)
	return nil
}

func parseUser(v string) (uid, gid int, err error) {
	us, gs, ok := strings.Cut(v, ":")
	u, err1 := strconv.ParseUint(us, 10, 32)
	g, err2 := strconv.ParseUint(gs, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%s=%q: want UID:GID", proto.EnvServerUser, v)
	}
	return int(u), int(g), nil
}

// checkDropped reads every thread's credentials from /proc and fails
// unless each runs as uid with no capability in any set: the switch is
// the server's isolation, so a thread it missed is a failed start, not a
// warning.
func checkDropped(uid int) error {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(tasks) == 0 {
		return fmt.Errorf("checking the switch of user: no threads in /proc/self/task (%v)", err)
	}
	want := strconv.Itoa(uid)
	for _, path := range tasks {
		f, err := os.Open(path)
		if err != nil {
			if os.IsNotExist(err) {
				continue // the thread exited
			}
			return fmt.Errorf("checking the switch of user: %w", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			key, val, _ := strings.Cut(sc.Text(), ":")
			fields := strings.Fields(val)
			switch key {
			case "Uid":
				for _, id := range fields {
					if id != want {
						f.Close()
						return fmt.Errorf("checking the switch of user: %s has Uid %s", path, val)
					}
				}
			case "CapInh", "CapPrm", "CapEff", "CapAmb":
				if len(fields) != 1 || strings.Trim(fields[0], "0") != "" {
					f.Close()
					return fmt.Errorf("checking the switch of user: %s has %s %s", path, key, val)
				}
			}
		}
		f.Close()
	}
	return nil
}
