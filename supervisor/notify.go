package supervisor

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"saturn/proto"
)

// Readiness for systemd (sd_notify(3)). Under a unit of Type=notify,
// systemd names a datagram socket in NOTIFY_SOCKET; the supervisor sends
// READY=1 there once every component is running, STOPPING=1 when the
// instance begins to stop, RELOADING=1 and READY=1 around a reload
// (reload.go), and STATUS= lines that `systemctl status` shows: how many
// components run, and which do not. Without NOTIFY_SOCKET nothing is sent.
//
// The protocol is a few lines, so it is written here rather than taken from
// a library. A send never waits: the socket is written with MSG_DONTWAIT,
// and a message systemd's queue has no room for is dropped and logged,
// since no thread of the supervisor may block on a peer. The components do
// not inherit NOTIFY_SOCKET (cleanEnv): only the supervisor speaks for the
// instance, and systemd's default NotifyAccess=main would refuse them
// anyway.

// notifySocketEnv names systemd's notification socket.
const notifySocketEnv = "NOTIFY_SOCKET"

// sdNotify sends state lines ("READY=1", "STATUS=...") to systemd, if the
// supervisor runs under it. A failure is logged, never returned: systemd's
// view of the instance is not worth stopping the instance for.
func (s *Supervisor) sdNotify(lines ...string) {
	addr := os.Getenv(notifySocketEnv)
	if addr == "" {
		return
	}
	if err := sdSend(addr, strings.Join(lines, "\n")); err != nil {
		s.log.Warn("cannot notify systemd", "socket", addr, "msg", lines, "err", err)
	}
}

// sdSend writes msg as one datagram to the unix socket at addr (a path, or
// an abstract name starting with @), without waiting.
func sdSend(addr, msg string) error {
	if addr[0] != '/' && addr[0] != '@' {
		return fmt.Errorf("%s=%q: want an absolute path or an abstract name (@...)", notifySocketEnv, addr)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Sendto(fd, []byte(msg), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, &unix.SockaddrUnix{Name: addr})
}

// sdReady tells systemd the instance is ready, then keeps its STATUS line
// current until the instance stops. Called once, after the start. The
// messages are sent from the loop, so that none can follow STOPPING=1.
func (s *Supervisor) sdReady() {
	if os.Getenv(notifySocketEnv) == "" {
		return
	}
	last := "" // the STATUS sent last; the loop's
	// update sends READY=1 (first) or a STATUS that changed, and says what
	// to wait on next: nil once the instance stops.
	update := func(first bool) chan struct{} {
		if s.shutdown {
			return nil // STOPPING=1 has been sent; its STATUS stays
		}
		line := statusLine(s.components)
		switch {
		case first:
			s.sdNotify("READY=1", "STATUS="+line)
		case line != last:
			s.sdNotify("STATUS=" + line)
		}
		last = line
		return s.changed
	}
	changed, _ := call(s, func() chan struct{} { return update(true) })
	if changed == nil {
		return
	}
	go func() {
		for changed != nil {
			select {
			case <-changed:
			case <-s.stopped:
				return
			}
			changed, _ = call(s, func() chan struct{} { return update(false) })
		}
	}()
}

// statusLine sums the components up for systemd's STATUS: how many run,
// and the state of each that does not ("3 of 4 running; web restarting").
func statusLine(cs []*component) string {
	running := 0
	var others []string
	for _, c := range cs {
		if c.state == proto.StateRunning {
			running++
		} else {
			others = append(others, c.name+" "+c.state)
		}
	}
	line := fmt.Sprintf("%d of %d running", running, len(cs))
	if len(others) > 0 {
		line += "; " + strings.Join(others, ", ")
	}
	return line
}
