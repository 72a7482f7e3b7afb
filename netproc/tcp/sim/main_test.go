package sim

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run on goroutines the tests leave behind, as every
// package's does (docs/design.md). The simulator drives the cores in the
// test's own goroutine, on a virtual clock: a leak here is a test's own.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
