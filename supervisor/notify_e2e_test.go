package supervisor_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// TestSystemdNotify runs `saturn supervisor start` as systemd would run
// the unit configs/saturn@.service (Type=notify): in the foreground with
// NOTIFY_SOCKET naming a datagram socket the test listens on, and standard
// error the stream JOURNAL_STREAM names. READY=1 comes once every component
// runs; SIGHUP gives RELOADING=1 then READY=1; `saturn supervisor stop`
// gives STOPPING=1; the log lines carry no time (the journal adds it); no
// component inherits NOTIFY_SOCKET.
func TestSystemdNotify(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	in := testkit.NewInstance(t, testkit.TestConfig+fmt.Sprintf(
		"[[app]]\nname = \"env\"\ncommand = [%q, \"-c\", \"echo notify=[$NOTIFY_SOCKET]; exec sleep 600\"]\ntype = \"simple\"\n", sh))
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	var fst syscall.Stat_t
	if err := syscall.Fstat(int(stderr.Fd()), &fst); err != nil {
		t.Fatal(err)
	}

	cmd := in.Command("supervisor", "start", "--config", in.Config)
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock, fmt.Sprintf("JOURNAL_STREAM=%d:%d", fst.Dev, fst.Ino))
	cmd.Stderr = stderr
	sup := testkit.Start(t, cmd)

	// next reads the next message, and fails the test if none comes.
	next := func(what string) string {
		t.Helper()
		buf := make([]byte, 4096)
		ln.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		return string(buf[:n])
	}
	// until reads messages until one has line; it returns that message.
	until := func(line string) string {
		t.Helper()
		for {
			m := next(line)
			if slicesContains(strings.Split(m, "\n"), line) {
				return m
			}
		}
	}

	m := until("READY=1")
	// Ready means ready: status, asked now, shows everything running.
	st := in.Status()
	if !running("netproc", "diskproc", "env")(st) {
		t.Fatalf("READY=1 before every component runs: %+v", st.Components)
	}
	if !strings.Contains(m, "STATUS=3 of 3 running") {
		t.Errorf("ready message %q: want STATUS=3 of 3 running", m)
	}

	// A reload says so, and says when it is done.
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m = until("RELOADING=1")
	if !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("reloading message %q lacks MONOTONIC_USEC", m)
	}
	if m = until("READY=1"); !strings.Contains(m, "STATUS=reloaded") {
		t.Errorf("after the reload %q", m)
	}
	if _, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool { return generation(st) == 2 }); !ok {
		t.Error("status does not show generation 2 after SIGHUP")
	}

	// The app did not get systemd's socket.
	if out := in.MustRun("logs", "env"); !strings.Contains(out, "notify=[]") {
		t.Errorf("the app's output %q: want notify=[] (no NOTIFY_SOCKET)", out)
	}

	in.MustRun("supervisor", "stop")
	until("STOPPING=1")
	if exited, err := sup.Wait(30 * time.Second); !exited {
		t.Fatal("supervisor still running after stop")
	} else if err != nil {
		t.Errorf("supervisor exited with %v", err)
	}

	// Journal lines have no time, and start with their syslog priority;
	// they still have the level and message.
	out, _ := os.ReadFile(stderr.Name())
	if bytes.Contains(out, []byte("time=")) || !bytes.Contains(out, []byte("\n<6>level=INFO msg=\"instance ready\"")) {
		t.Errorf("log under JOURNAL_STREAM:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, "level=") && !regexp.MustCompile(`^<[3467]>level=`).MatchString(line) {
			t.Errorf("a journal line without its priority: %q", line)
		}
	}
}

func slicesContains(lines []string, line string) bool {
	for _, l := range lines {
		if l == line {
			return true
		}
	}
	return false
}
