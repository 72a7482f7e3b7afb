package ring

import "testing"

// TestServerCaps: a server publishes its capabilities; the supervisor's
// EndIncarnation marks the incarnation down (before the epoch moves) and
// the next incarnation's Server clears that, leaving what the server
// published alone until it publishes again.
func TestServerCaps(t *testing.T) {
	r := newRegion(t, Geometry{SQEntrySize: 64, SQEntries: 8, CQEntrySize: 32, CQEntries: 8})
	if _, err := r.Server(Bells{}); err != nil {
		t.Fatal(err)
	}
	r.SetServerCaps(CapResume)
	if c := r.ServerCaps(); c != CapResume {
		t.Fatalf("caps %#x after publishing CapResume", c)
	}
	if err := r.EndIncarnation(); err != nil {
		t.Fatal(err)
	}
	if c := r.ServerCaps(); c != CapResume|CapDown {
		t.Fatalf("caps %#x after EndIncarnation, want resume and down", c)
	}
	r.SetServerCaps(0) // a publication does not touch CapDown
	if c := r.ServerCaps(); c != CapDown {
		t.Fatalf("caps %#x, want down only", c)
	}
	if _, err := r.Server(Bells{}); err != nil {
		t.Fatal(err)
	}
	if c := r.ServerCaps(); c != 0 {
		t.Fatalf("caps %#x after the next incarnation started, want none", c)
	}
}
