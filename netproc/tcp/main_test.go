package tcp

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run on goroutines the tests leave behind, as every
// package's does (docs/design.md). The core starts none: a leak here is a
// test's own, or a sign that the core began doing I/O.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
