package supervisor_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"saturn/internal/testkit"
	"saturn/proto"
)

// TestHostileAcceptOutOfDescriptors: a burst of connections that exhausts
// the supervisor's descriptors made accept fail with EMFILE, and the
// control socket's accept loop returned for good: the instance ran on
// with nobody answering its socket. Now the loop backs off and goes on.
// The test lowers the running supervisor's RLIMIT_NOFILE to just above
// what it has open (prlimit), bursts connections past it, then gives the
// descriptors back and expects the socket to answer again.
func TestHostileAcceptOutOfDescriptors(t *testing.T) {
	in := startInstance(t)
	pid := in.SupervisorPID()
	open := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Skipf("cannot read the supervisor's RLIMIT_NOFILE: %v", err)
	}
	low := old
	low.Cur = uint64(open() + 2)
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &low, nil); err != nil {
		t.Skipf("cannot lower the supervisor's RLIMIT_NOFILE: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
				t.Errorf("restoring the supervisor's RLIMIT_NOFILE: %v", err)
			}
		}
	}
	defer restore()
	sock := in.ControlSocket()
	var burst []net.Conn
	defer func() {
		for _, c := range burst {
			c.Close()
		}
	}()
	for range 20 {
		c, err := net.Dial("unix", sock) // queued in the backlog if not accepted
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		burst = append(burst, c)
	}
	logSays(t, in, "accept failed; backing off", 10*time.Second)
	if !strings.Contains(in.Log("supervisor"), "too many open files") {
		t.Errorf("the back-off is not for EMFILE:\n%s", tail(in.Log("supervisor"), 2000))
	}
	// Give the descriptors back: the connections close, the limit is
	// restored, and the socket answers again.
	for _, c := range burst {
		c.Close()
	}
	burst = nil
	restore()
	var st *proto.StatusReply
	if !testkit.Until(10*time.Second, func() bool {
		c, err := proto.Dial(sock)
		if err != nil {
			return false
		}
		defer c.Close()
		st, err = statusOver(t, c)
		return err == nil
	}) {
		t.Fatal("the control socket does not answer after the descriptors came back")
	}
	if st.Supervisor != pid {
		t.Fatalf("status from pid %d, want %d", st.Supervisor, pid)
	}
	logSays(t, in, "accepting again", 10*time.Second)
	// And the CLI works.
	stillServing(t, in, "the instance is not running")
}
