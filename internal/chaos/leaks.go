package chaos

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Descriptors counts a process's open descriptors and, among them, saturn's
// shared-memory regions (memfds named saturn-*).
func Descriptors(pid int) (all, regions int, err error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		all++
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "/memfd:saturn-") {
			regions++
		}
	}
	return all, regions, nil
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
