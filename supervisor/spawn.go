package supervisor

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// spawner starts processes from one OS thread that lives as long as the
// supervisor. The kernel sends a child its parent-death signal when the
// thread that forked it exits, not the process, so forking from whatever
// thread a goroutine happens to run on could kill children early; forking
// from one locked, long-lived thread makes the signal mean "the supervisor
// is gone".
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	spec    launchSpec
	env     []string
	logPath string
	extra   []*os.File // descriptors 4, 5, ...
	reply   chan spawnResult
}

type spawnResult struct {
	proc *os.Process
	link *proto.ControlConn
	err  error
}

func newSpawner() *spawner {
	sp := &spawner{reqs: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the supervisor
		for req := range sp.reqs {
			p, l, err := spawnNow(req)
			req.reply <- spawnResult{p, l, err}
		}
	}()
	return sp
}

func (sp *spawner) close() { close(sp.reqs) }

// spawn starts spec with env added to a clean copy of our environment, its
// output appended to logPath, a control link as descriptor 3, and extra as
// descriptors 4 and on.
func (sp *spawner) spawn(spec launchSpec, env []string, logPath string, extra ...*os.File) (*os.Process, *proto.ControlConn, error) {
	reply := make(chan spawnResult, 1)
	sp.reqs <- spawnReq{spec, env, logPath, extra, reply}
	r := <-reply
	return r.proc, r.link, r.err
}

func spawnNow(req spawnReq) (*os.Process, *proto.ControlConn, error) {
	logf, err := os.OpenFile(req.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("log file: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== saturn: %s starting %s\n", time.Now().Format(time.RFC3339), strings.Join(req.spec.args, " "))
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, err
	}
	defer devnull.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("control link: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "link")
	theirs := os.NewFile(uintptr(fds[1]), "link-child")
	defer theirs.Close()
	env := append(cleanEnv(), "SATURN_CONTROL_FD=3")
	env = append(env, req.env...)
	files := append([]*os.File{devnull, logf, logf, theirs}, req.extra...)
	path := req.spec.path
	if req.spec.cred != nil {
		// Under another user the program is run from a descriptor we
		// opened: its folders need not be open to that user (the
		// saturn binary may live under /root), only the file itself
		// executable by it (see checkRunnable).
		prog, err := os.OpenFile(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			mine.Close()
			fmt.Fprintf(logf, "=== saturn: could not start: %v\n", err)
			return nil, nil, err
		}
		defer prog.Close()
		path = fmt.Sprintf("/proc/self/fd/%d", len(files))
		files = append(files, prog)
	}
	proc, err := os.StartProcess(path, req.spec.args, &os.ProcAttr{
		Dir:   req.spec.dir,
		Env:   env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			Setpgid:     true,             // its own group, so signals reach its children too
			Pdeathsig:   syscall.SIGKILL,  // die with the supervisor (see spawner)
			Credential:  req.spec.cred,    // its own user (users.go); nil: ours
			AmbientCaps: req.spec.ambient, // what it keeps as that user
		},
	})
	if err != nil {
		mine.Close()
		fmt.Fprintf(logf, "=== saturn: could not start: %v\n", err)
		return nil, nil, err
	}
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		proc.Kill()
		return nil, nil, err
	}
	return proc, proto.NewControlConn(c.(*net.UnixConn)), nil
}

// cleanEnv is our environment without the SATURN_ variables that describe
// this process's own place in an instance (the child gets its own), and
// without systemd's notification socket, which is the supervisor's alone
// (notify.go).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SATURN_CONTROL_FD=") || strings.HasPrefix(kv, "SATURN_COMPONENT=") || strings.HasPrefix(kv, "SATURN_READY_FD=") || strings.HasPrefix(kv, "SATURN_PERSIST_FD=") ||
			strings.HasPrefix(kv, notifySocketEnv+"=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// signalName is a signal's short name ("KILL") or its number.
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(s); name != "" {
			return strings.TrimPrefix(name, "SIG")
		}
		return fmt.Sprint(int(s))
	}
	return sig.String()
}

// ParseSignal reads "KILL", "SIGKILL", "kill" or "9".
func ParseSignal(s string) (unix.Signal, error) {
	if v, err := strconv.Atoi(s); err == nil {
		if v > 0 && v < 65 {
			return unix.Signal(v), nil
		}
		return 0, fmt.Errorf("signal %s out of range", s)
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
