package supervisor_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"saturn/internal/testkit"
	"saturn/proto"
)

// attachSession opens a control session that attaches apps itself, as
// appproc.Attach does; it is closed when the test ends.
func attachSession(t *testing.T, in *testkit.Instance) *proto.Session {
	t.Helper()
	s := proto.NewSession(dialControl(t, in), nil)
	go s.Run()
	t.Cleanup(func() { s.Close(); <-s.Done() })
	return s
}

// attach makes one Attach call, by a deadline (a reply that never comes
// fails the test instead of hanging it), and closes the descriptors that
// come back.
func attach(t *testing.T, s *proto.Session, m *proto.Attach) (*proto.AttachReply, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rep proto.AttachReply
	files, err := s.Call(ctx, proto.MsgAttach, m, &rep)
	for _, f := range files {
		f.Close()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("attach %+v: no answer within 10 s", m)
	}
	return &rep, err
}

// channelsOf lists the apps with a channel to server in st.
func channelsOf(st *proto.StatusReply, server string) []string {
	var apps []string
	for _, ch := range testkit.Component(st, server).Channels {
		apps = append(apps, ch.App)
	}
	return apps
}

// TestHostileAttachTwice: one control connection could attach several
// apps; when it ended only the first was forgotten, and the others stayed
// "running" with a dead pid, undetachable, holding their channels. Now a
// second attach on a connection is refused, and when the connection ends
// its app is forgotten and its channels released.
func TestHostileAttachTwice(t *testing.T) {
	in := startInstance(t)
	s := attachSession(t, in)
	rep, err := attach(t, s, &proto.Attach{Name: "first", PID: os.Getpid()})
	if err != nil || len(rep.Channels) != 2 {
		t.Fatalf("first attach: %+v %v", rep, err)
	}
	_, err = attach(t, s, &proto.Attach{Name: "second", PID: os.Getpid()})
	var er *proto.ErrorReply
	if !errors.As(err, &er) || !strings.Contains(er.Message, `already attached "first"`) {
		t.Fatalf("second attach on one connection: %v, want a refusal naming the first", err)
	}
	st := in.Status()
	if testkit.Component(st, "second") != nil {
		t.Fatal("the refused app is in status")
	}
	if c := testkit.Component(st, "first"); c == nil || c.State != proto.StateRunning || !c.Attached {
		t.Fatalf("first: %+v", c)
	}
	// The same name again on another connection is taken while the first
	// lives, and free once its connection ends.
	s2 := attachSession(t, in)
	if _, err := attach(t, s2, &proto.Attach{Name: "first"}); !errors.As(err, &er) || er.Code != proto.CodeExists {
		t.Fatalf("attach of a taken name: %v", err)
	}
	s.Close()
	st, ok := in.WaitFor(10*time.Second, func(st *proto.StatusReply) bool {
		return testkit.Component(st, "first") == nil && len(channelsOf(st, "netproc")) == 0 && len(channelsOf(st, "diskproc")) == 0
	})
	if !ok {
		t.Fatalf("after its connection ended: first %+v, netproc's channels %v, diskproc's %v",
			testkit.Component(st, "first"), channelsOf(st, "netproc"), channelsOf(st, "diskproc"))
	}
	if _, err := attach(t, s2, &proto.Attach{Name: "first"}); err != nil {
		t.Fatalf("attach once the name is free: %v", err)
	}
}

// TestHostileAttachServers: an attach naming many servers got a reply the
// connection refused to carry (more than proto.MaxFDs descriptors), and
// the app waited for ever; duplicate server names were accepted. Now
// duplicates and unknown servers are refused with a clear error, at once.
func TestHostileAttachServers(t *testing.T) {
	in := startInstance(t)
	many := slices.Repeat([]string{"netproc", "diskproc"}, 12) // 24 channels: 72 descriptors
	for _, c := range []struct {
		servers []string
		want    string
	}{
		{[]string{"netproc", "netproc"}, `names server "netproc" twice`},
		{many, "twice"},
		{[]string{"netproc", "nosuch"}, `no server called "nosuch"`},
		{slices.Repeat([]string{"x"}, 1000), `no server called "x"`},
	} {
		s := attachSession(t, in)
		_, err := attach(t, s, &proto.Attach{Name: "greedy", Servers: c.servers})
		var er *proto.ErrorReply
		if !errors.As(err, &er) || er.Code != proto.CodeBadRequest || !strings.Contains(er.Message, c.want) {
			t.Errorf("attach to %d servers %v...: %v, want a refusal saying %q", len(c.servers), c.servers[:2], err, c.want)
		}
		s.Close()
	}
	st := in.Status()
	if testkit.Component(st, "greedy") != nil || len(channelsOf(st, "netproc")) != 0 {
		t.Fatalf("a refused attach left something: %+v", st)
	}
}
