package testkit

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Main is a test binary's TestMain: it runs the tests, removes what Build
// built, and fails the run if the tests left goroutines behind
// (go.uber.org/goleak, which gives goroutines a while to end first). opts
// name goroutines that may outlive the tests, with the reason beside each.
func Main(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	Cleanup()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: the tests left goroutines behind: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
