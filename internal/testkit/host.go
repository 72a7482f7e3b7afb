package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FreeLoopback is a loopback address ("127.0.0.1:PORT") with a port
// nobody holds at the moment.
func FreeLoopback(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// FreePort is FreeLoopback's port.
func FreePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeLoopback(t))
	var p int
	fmt.Sscan(port, &p)
	return p
}

// NoTUN says why saturn's usertcp backend cannot run here (it needs root,
// /dev/net/tun and iproute2), or "" when it can.
func NoTUN() string {
	if os.Geteuid() != 0 {
		return "needs root: the usertcp backend creates a TUN device and a network namespace"
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Sprintf("no TUN device here: cannot open /dev/net/tun: %v", err)
	}
	unix.Close(fd)
	if _, err := exec.LookPath("ip"); err != nil {
		return "needs iproute2's ip"
	}
	return ""
}

// FullListener is a loopback listener ("127.0.0.1:PORT") with a backlog of
// 0 and queued connections filling it, so that the kernel drops further
// SYNs and a connect to it hangs until its timeout. It closes when the
// test ends.
func FullListener(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 4 { // fill the queue; later dials hang, which is the point
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.Dial("tcp", addr); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return addr
}

// TCPInodes is the set of inodes of the TCP sockets in pid's network
// namespace (/proc/PID/net/tcp and tcp6): a descriptor of pid's whose
// link reads socket:[INODE] with INODE in it is a TCP socket.
func TCPInodes(pid int) map[string]bool {
	tcp := map[string]bool{}
	for _, f := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if fs := strings.Fields(line); len(fs) > 9 {
				tcp[fs[9]] = true
			}
		}
	}
	return tcp
}
