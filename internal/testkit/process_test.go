package testkit

import (
	"os/exec"
	"testing"
	"time"
)

// TestStart: a process that exits reports Wait's error; one still running
// when its test ends is killed and waited for by the test's cleanup.
func TestStart(t *testing.T) {
	p := Start(t, exec.Command("false"))
	if exited, err := p.Wait(30 * time.Second); !exited {
		t.Fatal("false still running")
	} else if err == nil {
		t.Error("false exited without an error")
	}

	var sleeper *Process
	t.Run("left running", func(t *testing.T) { sleeper = Start(t, exec.Command("sleep", "600")) })
	select {
	case <-sleeper.Exited():
	default:
		t.Fatal("the process outlived its test")
	}
}
