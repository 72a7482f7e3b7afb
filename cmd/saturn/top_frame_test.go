package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"saturn/proto"
)

func topStatus(sub, done uint64, epoch uint32, restarts int) *proto.StatusReply {
	return &proto.StatusReply{Instance: "t", Supervisor: 1, Metrics: "http://127.0.0.1:9464/metrics", Components: []proto.ComponentStatus{
		{Name: "netproc", Kind: proto.KindServer, PID: 10, State: proto.StateRunning, Uptime: 5,
			Counters: map[string]uint64{"tcp.in_segs": 100 + sub, "tcp.out_segs": 50, "tcp.curr_estab": 3, "tcp.conns": 4},
			Channels: []proto.ChannelStatus{{ID: 7, App: "web", Server: "netproc", Epoch: epoch, Submitted: sub, Completed: done, SQDepth: 2,
				Usage: &proto.ChannelUsage{Sockets: 3, Waiting: 1}}}},
		{Name: "web", Kind: proto.KindApp, PID: 20, State: proto.StateRunning, Uptime: 4, Restarts: restarts},
	}}
}

// row finds the line that starts with the fields of prefix and returns its
// fields.
func row(t *testing.T, frame string, prefix ...string) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + strings.Join(prefix, `\s+`) + `\s.*$`)
	line := re.FindString(frame)
	if line == "" {
		t.Fatalf("no row %v in\n%s", prefix, frame)
	}
	return strings.Fields(line)
}

func TestTopFrame(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	first := topSample{at: t0, st: topStatus(1000, 990, 1, 0)}
	var b strings.Builder
	topFrame(&b, nil, first, time.Second, 0, 0)
	// No rates without a sample before.
	if r := row(t, b.String(), "web", "app"); r[7] != "-" || r[8] != "-" || r[6] != "3" {
		t.Errorf("first frame, web: %v", r)
	}
	if !strings.Contains(b.String(), "metrics at http://127.0.0.1:9464/metrics") {
		t.Errorf("no metrics line:\n%s", b.String())
	}

	// Half a second later: 500 submissions, 400 completions: 1000/s, 800/s.
	second := topSample{at: t0.Add(500 * time.Millisecond), st: topStatus(1500, 1390, 1, 0)}
	b.Reset()
	topFrame(&b, &first, second, time.Second, 0, 0)
	f := b.String()
	if r := row(t, f, "netproc", "server"); r[6] != "3" || r[7] != "1000" || r[8] != "800" {
		t.Errorf("netproc: %v", r)
	}
	if r := row(t, f, "web", "app"); r[7] != "1000" || r[8] != "800" {
		t.Errorf("web: %v", r)
	}
	// CHANNEL APP SERVER EPOCH SUBMIT/s COMPLETE/s SQ CQ SOCKETS WAITING
	if r := row(t, f, "7", "web", "netproc"); strings.Join(r, " ") != "7 web netproc 1 1000 800 2 0 3 1" {
		t.Errorf("channel row: %v", r)
	}
	if !strings.Contains(f, "segments in 1000/s, out 0/s") || !strings.Contains(f, "4 connections") {
		t.Errorf("netproc's traffic line:\n%s", f)
	}

	// A new incarnation of the server starts its counts over: no negative
	// rate, and a restart shows.
	third := topSample{at: t0.Add(time.Second), st: topStatus(10, 10, 3, 1)}
	b.Reset()
	topFrame(&b, &second, third, time.Second, 0, 0)
	f = b.String()
	if r := row(t, f, "7", "web", "netproc"); r[4] != "-" || r[5] != "-" {
		t.Errorf("channel after its counts went back: %v", r)
	}
	if r := row(t, f, "web", "app"); r[5] != "1" || r[7] != "0" {
		t.Errorf("web after a restart: %v", r)
	}

	// Cut to the terminal: no line wider, no more lines than asked.
	b.Reset()
	topFrame(&b, &first, second, time.Second, 30, 5)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Errorf("%d lines for a height of 5", len(lines))
	}
	for _, l := range lines {
		if len(l) > 30 {
			t.Errorf("line of %d columns: %q", len(l), l)
		}
	}
}
