package supervisor

import (
	"fmt"
	"time"

	"saturn/configs"
)

// Tracker is one component's restart bookkeeping. It is plain data that does
// no I/O and reads no clock: the supervisor's loop tells it when the
// component started and how it exited, with the time, and it says what to
// do next. This keeps the restart logic testable with made-up clocks.
type Tracker struct {
	Policy configs.Policy

	backoff   time.Duration // the delay before the next restart
	recent    []time.Time   // restarts within the last Period, oldest first
	startedAt time.Time
}

// NewTracker returns a tracker for policy p.
func NewTracker(p configs.Policy) *Tracker {
	return &Tracker{Policy: p, backoff: p.Backoff.D()}
}

// Exit describes how an incarnation ended.
type Exit struct {
	Code   int    // exit status, when Signal is ""
	Signal string // the signal that killed it, or ""
}

// Clean reports whether the process exited by itself with status 0.
func (e Exit) Clean() bool { return e.Signal == "" && e.Code == 0 }

func (e Exit) String() string {
	if e.Signal != "" {
		return "signal " + e.Signal
	}
	return fmt.Sprintf("exit %d", e.Code)
}

// Decision is what to do after an exit.
type Decision struct {
	Restart bool          // start it again...
	After   time.Duration // ...after this delay
	Failed  bool          // give up: the component is failed
	Reason  string        // why, for logs and status
}

// Started records that an incarnation started at now.
func (t *Tracker) Started(now time.Time) { t.startedAt = now }

// Exited decides what follows an exit at now. An incarnation that ran for
// at least Period was stable: the back-off starts over from its initial
// value. Restarts are counted within the sliding window of Period; the one
// that would exceed Intensity fails the component instead.
func (t *Tracker) Exited(now time.Time, exit Exit) Decision {
	p := t.Policy
	switch {
	case p.Restart == configs.RestartNever:
		return Decision{Failed: !exit.Clean(), Reason: fmt.Sprintf("%s; restart policy is never", exit)}
	case p.Restart == configs.RestartOnFailure && exit.Clean():
		return Decision{Reason: "exited cleanly; restart policy is on-failure"}
	}
	if !t.startedAt.IsZero() && now.Sub(t.startedAt) >= p.Period.D() {
		t.backoff = p.Backoff.D()
	}
	cutoff := now.Add(-p.Period.D())
	kept := t.recent[:0]
	for _, at := range t.recent {
		if at.After(cutoff) {
			kept = append(kept, at)
		}
	}
	t.recent = kept
	if len(t.recent) >= p.Intensity {
		return Decision{Failed: true, Reason: fmt.Sprintf("%s after %d restarts within %s; giving up (intensity %d in %s)",
			exit, len(t.recent), p.Period.D(), p.Intensity, p.Period.D())}
	}
	d := Decision{Restart: true, After: t.backoff, Reason: fmt.Sprintf("%s; restarting in %s", exit, t.backoff)}
	t.recent = append(t.recent, now)
	t.backoff = min(2*t.backoff, p.MaxBackoff.D())
	return d
}

// Reset forgets past restarts, as after a manual restart or a fresh start
// of a failed component.
func (t *Tracker) Reset() {
	t.recent = t.recent[:0]
	t.backoff = t.Policy.Backoff.D()
}

// SetPolicy changes the policy (a reload): the restarts counted so far
// carry over, and the next back-off is the one reached, kept within the new
// policy's bounds.
func (t *Tracker) SetPolicy(p configs.Policy) {
	t.Policy = p
	t.backoff = min(max(t.backoff, p.Backoff.D()), p.MaxBackoff.D())
}
