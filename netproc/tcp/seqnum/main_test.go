package seqnum

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run on goroutines the tests leave behind, as every
// package's does (docs/design.md). Sequence numbers are plain values: a
// leak here is a test's own.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
