package chaos

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"saturn/internal/testkit"
)

// Descriptors counts a process's open descriptors and, among them, saturn's
// shared-memory regions (memfds named saturn-*). TCP sockets are left out:
// the supervisor holds those of netproc's kernel backend in its descriptor
// store, one per socket that outlives netproc, and their number follows the
// clients' connections, not a leak.
func Descriptors(pid int) (all, regions int, err error) {
	targets, err := DescriptorTargets(pid)
	for _, t := range targets {
		if strings.HasPrefix(t, "/memfd:saturn-") {
			regions++
		}
	}
	return len(targets), regions, err
}

// DescriptorTargets lists what a process's descriptors point to, TCP
// sockets aside (see Descriptors), sorted, for a report of what changed.
func DescriptorTargets(pid int) ([]string, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	tcp := testkit.TCPInodes(pid)
	var targets []string
	for _, e := range entries {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		if strings.HasPrefix(target, "socket:[") && (tcp[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] || isTCP(dir+"/"+e.Name())) {
			continue
		}
		targets = append(targets, target)
	}
	slices.Sort(targets)
	return targets, nil
}

// DescriptorChange says what differs between two DescriptorTargets lists:
// the targets only in before (-) and only in after (+).
func DescriptorChange(before, after []string) string {
	count := map[string]int{}
	for _, t := range before {
		count[t]--
	}
	for _, t := range after {
		count[t]++
	}
	var out []string
	for t, n := range count {
		for ; n < 0; n++ {
			out = append(out, "-"+t)
		}
		for ; n > 0; n-- {
			out = append(out, "+"+t)
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// isTCP reports whether the descriptor at path (/proc/PID/fd/N) is a TCP
// socket, by the protocol name the kernel gives its sockets: a TCP socket
// that has reached CLOSE (its peer reset it, and its holder has not closed
// it yet) is in no /proc/net/tcp table, but the descriptor store holds it
// all the same.
func isTCP(path string) bool {
	b := make([]byte, 32)
	n, err := unix.Getxattr(path, "system.sockprotoname", b)
	return err == nil && n > 0 && strings.HasPrefix(string(b[:n]), "TCP")
}

// SettledDescriptors is Descriptors once the counts have held still for a
// tenth of a second, or after within: just after a CLI command (`supervisor
// start`, `status`) the supervisor may not have closed that command's
// control connection yet, and a count taken then is one too high.
func SettledDescriptors(pid int, within time.Duration) (all, regions int, err error) {
	deadline := time.Now().Add(within)
	prevAll, prevRegions := -1, -1
	for {
		all, regions, err = Descriptors(pid)
		if err != nil || all == prevAll && regions == prevRegions || time.Now().After(deadline) {
			return all, regions, err
		}
		prevAll, prevRegions = all, regions
		time.Sleep(100 * time.Millisecond)
	}
}
