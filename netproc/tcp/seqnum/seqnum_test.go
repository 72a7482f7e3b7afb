package seqnum

import "testing"

// TestCompare checks the comparisons across the wrap-around point
// (RFC 9293, section 3.4; RFC 1982, section 3.2).
func TestCompare(t *testing.T) {
	tests := []struct {
		a, b       Value
		lt, lte, g bool
	}{
		{1, 2, true, true, false},
		{2, 1, false, false, true},
		{5, 5, false, true, false},
		{0xffffffff, 0, true, true, false}, // 2^32-1 precedes 0 after wrapping
		{0, 0xffffffff, false, false, true},
		{0xfffffff0, 0x10, true, true, false},
		{0x7fffffff, 0, false, false, true},
	}
	for _, tt := range tests {
		if got := tt.a.LessThan(tt.b); got != tt.lt {
			t.Errorf("%d.LessThan(%d) = %v", tt.a, tt.b, got)
		}
		if got := tt.a.LessThanEq(tt.b); got != tt.lte {
			t.Errorf("%d.LessThanEq(%d) = %v", tt.a, tt.b, got)
		}
		if got := tt.a.GreaterThan(tt.b); got != tt.g {
			t.Errorf("%d.GreaterThan(%d) = %v", tt.a, tt.b, got)
		}
		if got := tt.a.GreaterThanEq(tt.b); got != !tt.lt {
			t.Errorf("%d.GreaterThanEq(%d) = %v", tt.a, tt.b, got)
		}
	}
}

func TestRanges(t *testing.T) {
	if !Value(0xfffffffe).InRange(0xfffffff0, 0x10) {
		t.Error("value before the wrap not in a range spanning it")
	}
	if !Value(3).InRange(0xfffffff0, 0x10) {
		t.Error("value after the wrap not in a range spanning it")
	}
	if Value(0x10).InRange(0xfffffff0, 0x10) {
		t.Error("range end is exclusive")
	}
	if Value(7).InRange(7, 7) {
		t.Error("empty range holds a value")
	}
	if !Value(2).InWindow(0xffffffff, 4) || Value(3).InWindow(0xffffffff, 4) {
		t.Error("InWindow wrong across the wrap")
	}
	if got := Value(0xfffffff0).Size(0x10); got != 0x20 {
		t.Errorf("Size across the wrap = %#x", got)
	}
	if Max(0xfffffff0, 5) != 5 || Min(0xfffffff0, 5) != 0xfffffff0 {
		t.Error("Max/Min wrong across the wrap")
	}
	s, e, ok := Overlap(0xfffffff0, 0x20, 0x10, 0x40)
	if !ok || s != 0x10 || e != 0x20 {
		t.Errorf("Overlap = %#x %#x %v", s, e, ok)
	}
	if _, _, ok := Overlap(1, 5, 5, 9); ok {
		t.Error("touching ranges overlap")
	}
}
