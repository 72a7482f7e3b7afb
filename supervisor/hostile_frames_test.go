package supervisor_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"saturn/internal/testkit"
	"saturn/proto"
)

// TestHostileDescriptorCounts: an envelope whose descriptor count is
// negative, past proto.MaxFDs, or more than came with it used to panic the
// supervisor (the whole instance died, its files left behind). Each must
// be answered with an error on that connection, which goes on serving,
// and the instance must not notice.
func TestHostileDescriptorCounts(t *testing.T) {
	in := startInstance(t)
	pid := in.SupervisorPID()
	c := dialControl(t, in)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for i, fc := range []struct {
		name  string
		fds   []byte // a msgpack integer
		carry int    // descriptors sent with the frame
	}{
		{"negative", []byte{0xff}, 0},
		{"negative, with a descriptor", []byte{0xff}, 1},
		{"int64 min", append([]byte{0xd3, 0x80}, make([]byte, 7)...), 1},
		{"past MaxFDs", []byte{0xcc, proto.MaxFDs + 1}, 2},
		{"2^31-1", []byte{0xce, 0x7f, 0xff, 0xff, 0xff}, 0},
		{"more than came", []byte{0x04}, 1},
	} {
		var oob []byte
		if fc.carry > 0 {
			fds := make([]int, fc.carry)
			for j := range fds {
				fds[j] = int(w.Fd())
			}
			oob = unix.UnixRights(fds...)
		}
		id := byte(i + 1)
		if _, _, err := c.UnixConn().WriteMsgUnix(rawEnvelope("status", id, fc.fds, nil), oob, nil); err != nil {
			t.Fatalf("%s: %v", fc.name, err)
		}
		if e := nextError(t, c, fc.name); e.ID != uint64(id) {
			t.Fatalf("%s: error reply to request %d, want %d", fc.name, e.ID, id)
		}
	}
	if st, err := statusOver(t, c); err != nil || st.Supervisor != pid {
		t.Fatalf("status on the same connection after the bad frames: %v", err)
	}
	stillServing(t, in, "the instance is not running after the bad frames")
	if in.SupervisorPID() != pid || !testkit.Alive(pid) {
		t.Fatal("the supervisor died")
	}
}

// TestHostileNestedFrame: a legal 1 MiB frame of msgpack nested a million
// deep made the supervisor's decoder recurse a million times, growing the
// reading goroutine's stack by hundreds of MB that it kept. It must be
// refused with an error for the cost of reading it. We watch the
// supervisor's peak resident memory (VmHWM) across a few such frames.
func TestHostileNestedFrame(t *testing.T) {
	in := startInstance(t)
	pid := in.SupervisorPID()
	c := dialControl(t, in)
	if _, err := statusOver(t, c); err != nil { // the session's buffers exist
		t.Fatal(err)
	}
	before := vmHWM(t, pid)
	depth := proto.MaxFrame - 64
	deep := append(bytes.Repeat([]byte{0x91}, depth), 0xc0)
	declared := binary.BigEndian.AppendUint32([]byte{0x81, 0xa5, 'u', 's', 'a', 'g', 'e', 0xdd}, uint32(depth))
	declared = append(declared, bytes.Repeat([]byte{0x80}, depth)...)
	for i, body := range [][]byte{deep, declared, append([]byte{0x81, 0xa4, 'i', 'n', 'f', 'o'}, deep[:len(deep)-8]...)} {
		typ := []string{"status", "ready", "launch"}[i]
		frame := rawEnvelope(typ, byte(i+1), nil, body)
		if len(frame) > 4+proto.MaxFrame {
			t.Fatalf("frame %d: %d bytes, more than a legal frame", i, len(frame))
		}
		if _, err := c.UnixConn().Write(frame); err != nil {
			t.Fatal(err)
		}
		nextError(t, c, typ+" frame")
	}
	if _, err := statusOver(t, c); err != nil {
		t.Fatalf("status after the nested frames: %v", err)
	}
	after := vmHWM(t, pid)
	t.Logf("supervisor's peak RSS: %d KiB before the hostile frames, %d KiB after (%+d KiB)", before, after, after-before)
	if after-before > 32<<10 {
		t.Errorf("three hostile frames raised the supervisor's peak RSS by %d KiB", after-before)
	}
}

// vmHWM is a process's peak resident set, in KiB.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
