package testkit

import (
	"os/exec"
	"testing"
	"time"
)

// Process is a command started by Start.
type Process struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts cmd and waits for it in the background. If it is still
// running when the test ends, it is killed, and the test's cleanup waits
// for it, so that no process and no goroutine outlives the test.
func Start(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Err is what cmd.Wait returned; it is valid once Exited is closed.
func (p *Process) Err() error { return p.err }

// Wait waits up to timeout for the process to exit and returns what
// cmd.Wait returned; exited is false when it still runs then (it is left
// running: the test's cleanup kills it).
func (p *Process) Wait(timeout time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(timeout):
		return false, nil
	}
}
