// Package seqnum defines the TCP sequence-number type. Sequence numbers live
// on a circle of 2^32 values, so "less than" only makes sense for numbers
// less than 2^31 apart; the comparisons here follow RFC 9293, section 3.4,
// and the serial-number arithmetic of RFC 1982.
package seqnum

// Value is a TCP sequence (or acknowledgment) number. Arithmetic on it wraps
// modulo 2^32; compare values only with the methods below, never with < or >.
type Value uint32

// Size is a distance in sequence space: a number of octets plus one for each
// SYN or FIN flag that occupies a sequence number.
type Size uint32

// LessThan reports whether v comes before w.
func (v Value) LessThan(w Value) bool { return int32(v-w) < 0 }

// LessThanEq reports whether v comes before w or equals it.
func (v Value) LessThanEq(w Value) bool { return int32(v-w) <= 0 }

// GreaterThan reports whether v comes after w.
func (v Value) GreaterThan(w Value) bool { return int32(v-w) > 0 }

// GreaterThanEq reports whether v comes after w or equals it.
func (v Value) GreaterThanEq(w Value) bool { return int32(v-w) >= 0 }

// InRange reports whether a <= v < b. An empty range (a == b) holds nothing.
func (v Value) InRange(a, b Value) bool { return uint32(v-a) < uint32(b-a) }

// InWindow reports whether v lies in the size values starting at first.
func (v Value) InWindow(first Value, size Size) bool {
	return uint32(v-first) < uint32(size)
}

// Add returns v advanced by s.
func (v Value) Add(s Size) Value { return v + Value(s) }

// Sub returns v moved back by s.
func (v Value) Sub(s Size) Value { return v - Value(s) }

// Size returns the distance from v forward to w. It is only meaningful when
// v <= w.
func (v Value) Size(w Value) Size { return Size(w - v) }

// Max returns the later of a and b.
func Max(a, b Value) Value {
	if a.GreaterThan(b) {
		return a
	}
	return b
}

// Min returns the earlier of a and b.
func Min(a, b Value) Value {
	if a.LessThan(b) {
		return a
	}
	return b
}

// Overlap returns the part of [a, b) that lies inside [lo, hi), and false
// when the two ranges do not meet.
func Overlap(a, b, lo, hi Value) (Value, Value, bool) {
	s, e := Max(a, lo), Min(b, hi)
	if !s.LessThan(e) {
		return 0, 0, false
	}
	return s, e, true
}
