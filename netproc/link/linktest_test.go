package link_test

import (
	"os/exec"
	"testing"
)

// needCommand skips the test unless name is installed.
func needCommand(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("skipping: %s not installed (apt-get install -y iproute2 iputils-ping)", name)
		}
	}
}
