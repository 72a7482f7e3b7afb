package link_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

var nsCounter atomic.Int32

// needTUN skips the test unless it runs as root with /dev/net/tun.
func needTUN(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create TUN devices and network namespaces")
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("skipping: cannot open /dev/net/tun: %v", err)
	}
	unix.Close(fd)
}

// needCommand skips the test unless name is installed.
func needCommand(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("skipping: %s not installed (apt-get install -y iproute2 iputils-ping)", name)
		}
	}
}

// testNamespace returns a unique namespace name and a /24 for one test:
// saturn-test-<pid>-<n>, 10.<77+...>.<n>.0/24, so that parallel test
// processes do not collide.
func testNamespace() (string, netip.Prefix) {
	n := int(nsCounter.Add(1))
	pid := os.Getpid()
	name := fmt.Sprintf("saturn-test-%d-%d", pid, n)
	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + pid%100), byte(n), 2}), 24)
	return name, prefix
}
