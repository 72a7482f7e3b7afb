package supervisor

import (
	"strings"
	"testing"
	"time"

	"saturn/configs"
)

func policy(mode configs.RestartMode, intensity int, period time.Duration) configs.Policy {
	return configs.Policy{
		Restart: mode, Backoff: configs.Duration(100 * time.Millisecond), MaxBackoff: configs.Duration(time.Second),
		Intensity: intensity, Period: configs.Duration(period),
	}
}

var (
	crash = Exit{Signal: "KILL"}
	clean = Exit{}
	fail  = Exit{Code: 3}
)

func TestPolicyModes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		mode       configs.RestartMode
		exit       Exit
		restart    bool
		failed     bool
		reasonPart string
	}{
		{configs.RestartAlways, clean, true, false, "exit 0; restarting in 100ms"},
		{configs.RestartAlways, crash, true, false, "signal KILL"},
		{configs.RestartOnFailure, clean, false, false, "on-failure"},
		{configs.RestartOnFailure, fail, true, false, "exit 3"},
		{configs.RestartNever, crash, false, true, "never"},
		{configs.RestartNever, clean, false, false, "never"},
	}
	for _, tt := range tests {
		tr := NewTracker(policy(tt.mode, 5, 10*time.Second))
		tr.Started(t0)
		d := tr.Exited(t0.Add(time.Second), tt.exit)
		if d.Restart != tt.restart || d.Failed != tt.failed || !strings.Contains(d.Reason, tt.reasonPart) {
			t.Errorf("%s after %s: %+v", tt.mode, tt.exit, d)
		}
	}
}

func TestPolicyBackoffAndIntensity(t *testing.T) {
	tr := NewTracker(policy(configs.RestartAlways, 3, 10*time.Second))
	now := time.Unix(1000, 0)
	var delays []time.Duration
	for range 3 {
		tr.Started(now)
		now = now.Add(500 * time.Millisecond)
		d := tr.Exited(now, crash)
		if !d.Restart {
			t.Fatalf("restart %d refused: %+v", len(delays)+1, d)
		}
		delays = append(delays, d.After)
		now = now.Add(d.After)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("back-off %v, want %v", delays, want)
		}
	}
	// The fourth crash within the period exceeds the intensity of 3.
	tr.Started(now)
	d := tr.Exited(now.Add(time.Millisecond), crash)
	if d.Restart || !d.Failed || !strings.Contains(d.Reason, "giving up") {
		t.Fatalf("fourth crash: %+v", d)
	}
}

func TestPolicyWindowSlides(t *testing.T) {
	tr := NewTracker(policy(configs.RestartAlways, 2, 10*time.Second))
	now := time.Unix(1000, 0)
	// Crashes 11 s apart never put two restarts in one 10 s window, so an
	// intensity of 2 is never reached however many there are.
	for i := range 10 {
		tr.Started(now)
		now = now.Add(11 * time.Second)
		d := tr.Exited(now, crash)
		if !d.Restart {
			t.Fatalf("crash %d, 11 s apart, refused: %+v", i, d)
		}
		// It ran longer than the period, so the back-off starts over.
		if d.After != 100*time.Millisecond {
			t.Fatalf("crash %d after a stable run: back-off %v, want the initial 100ms", i, d.After)
		}
	}
}

func TestPolicyBackoffCaps(t *testing.T) {
	tr := NewTracker(policy(configs.RestartAlways, 100, time.Hour))
	now := time.Unix(1000, 0)
	var last time.Duration
	for range 10 {
		tr.Started(now)
		d := tr.Exited(now, crash)
		last = d.After
		now = now.Add(d.After)
	}
	if last != time.Second {
		t.Fatalf("back-off grew to %v, past its maximum of 1s", last)
	}
	tr.Reset()
	if d := tr.Exited(now, crash); d.After != 100*time.Millisecond {
		t.Fatalf("after Reset: %v", d.After)
	}
}

// TestSetPolicy: a reload's new policy takes effect at the next exit, with
// the restarts already counted and the back-off kept within the new bounds.
func TestSetPolicy(t *testing.T) {
	p := configs.Policy{Restart: configs.RestartAlways, Backoff: configs.Duration(100 * time.Millisecond),
		MaxBackoff: configs.Duration(10 * time.Second), Intensity: 5, Period: configs.Duration(time.Minute)}
	tr := NewTracker(p)
	now := time.Unix(1000, 0)
	crash := Exit{Code: 1}
	for range 3 {
		tr.Started(now)
		now = now.Add(time.Second)
		tr.Exited(now, crash)
	}
	// Back-off is now 800ms; the new policy caps it at 300ms and allows
	// only 4 restarts in the period, of which 3 are used.
	q := p
	q.MaxBackoff, q.Intensity = configs.Duration(300*time.Millisecond), 4
	tr.SetPolicy(q)
	tr.Started(now)
	now = now.Add(time.Second)
	if d := tr.Exited(now, crash); !d.Restart || d.After != 300*time.Millisecond {
		t.Fatalf("after SetPolicy: %+v, want a restart after 300ms", d)
	}
	tr.Started(now)
	now = now.Add(time.Second)
	if d := tr.Exited(now, crash); !d.Failed {
		t.Fatalf("fifth crash with intensity 4: %+v, want failed", d)
	}
	// A policy of never stops restarts at once.
	tr = NewTracker(p)
	q = p
	q.Restart = configs.RestartNever
	tr.SetPolicy(q)
	if d := tr.Exited(now, crash); d.Restart {
		t.Fatalf("restart never: %+v", d)
	}
}
