package tcp

import "testing"

// TestStepDoesNotAllocate: a Step that sends nothing, on a connection whose
// caller keeps the counters, allocates nothing (usertcp steps every
// connection on every segment and timer).
func TestStepDoesNotAllocate(t *testing.T) {
	p := newPair([2]Config{{}, {}}, [2]int{4000, 4000}, [2]int{4000, 4000}, CookiesWhenFull)
	p.settle()
	if p.conns[0].State() != StateEstablished {
		t.Fatalf("state %v, want established", p.conns[0].State())
	}
	mem := p.mem(0)
	var out Output
	allocs := testing.AllocsPerRun(100, func() {
		out = Output{Segments: out.Segments[:0]}
		if err := p.conns[0].Step(Input{Kind: InTimer}, p.now, mem, &out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Step allocated %v times per call, want 0", allocs)
	}
}

// BenchmarkStepTimer: the cost of a Step that finds nothing to do.
func BenchmarkStepTimer(b *testing.B) {
	p := newPair([2]Config{{}, {}}, [2]int{4000, 4000}, [2]int{4000, 4000}, CookiesWhenFull)
	p.settle()
	mem := p.mem(0)
	var out Output
	b.ReportAllocs()
	for b.Loop() {
		out = Output{Segments: out.Segments[:0]}
		if err := p.conns[0].Step(Input{Kind: InTimer}, p.now, mem, &out); err != nil {
			b.Fatal(err)
		}
	}
}
