package ring

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// Cross-process tests and benchmarks re-execute the test binary as a child.
// The child finds its role in SATURN_RING_CHILD, its region at descriptor 3
// and any further descriptors after it, and says "ready" on stdout once it
// has attached.

const childEnv = "SATURN_RING_CHILD"

var childModes = map[string]func() error{}

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		run, ok := childModes[mode]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
			os.Exit(2)
		}
		if err := run(); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", mode, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// child is a running child process.
type child struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

// startChild starts the test binary in mode with files as descriptors 3, 4,
// ... and extra environment, and waits for its "ready" line.
func startChild(t testing.TB, mode string, env []string, files ...*os.File) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	if line := c.line(t); line != "ready" {
		t.Fatalf("child %s said %q, want ready", mode, line)
	}
	return c
}

// line reads the child's next line of output.
func (c *child) line(t testing.TB) string {
	t.Helper()
	s, err := c.out.ReadString('\n')
	if err != nil {
		c.cmd.Wait()
		t.Fatalf("child output: %v (exit: %v)", err, c.cmd.ProcessState)
	}
	return strings.TrimSpace(s)
}

// wait waits for the child to exit successfully.
func (c *child) wait(t testing.TB) {
	t.Helper()
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// childRegion opens the region the parent passed as descriptor 3.
func childRegion() (*Region, error) {
	return Open(os.NewFile(3, "region"))
}

// childServer is the server's end of the child's region, without
// doorbells.
func childServer() (*Region, *ServerEnd, error) {
	r, err := childRegion()
	if err != nil {
		return nil, nil, err
	}
	srv, err := r.Server(Bells{})
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, srv, nil
}

func ready() { fmt.Println("ready") }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
