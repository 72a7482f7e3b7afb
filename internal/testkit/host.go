package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"

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
