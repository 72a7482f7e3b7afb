package testkit

import (
	"os/exec"
	"testing"
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
