package chaos

import (
	"fmt"
	"os"
	"strings"
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
