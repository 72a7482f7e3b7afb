package webserver

import (
	"slices"
	"strings"
	"testing"
)

func TestParseRanges(t *testing.T) {
	const size = 100
	tests := []struct {
		spec   string
		want   []byteRange
		result rangeResult
	}{
		{"bytes=0-9", []byteRange{{0, 10}}, rangeSatisfiable},
		{"bytes=90-", []byteRange{{90, 10}}, rangeSatisfiable},
		{"bytes=-10", []byteRange{{90, 10}}, rangeSatisfiable},
		{"bytes=-1000", []byteRange{{0, 100}}, rangeSatisfiable},
		{"bytes=95-200", []byteRange{{95, 5}}, rangeSatisfiable},
		{"BYTES=0-0", []byteRange{{0, 1}}, rangeSatisfiable},
		{"bytes=0-1, 5-6 ,,9-9", []byteRange{{0, 2}, {5, 2}, {9, 1}}, rangeSatisfiable},
		{"bytes=0-1,200-300", []byteRange{{0, 2}}, rangeSatisfiable}, // unsatisfiable ones dropped
		{"bytes=100-", nil, rangeUnsatisfiable},
		{"bytes=100-200,300-", nil, rangeUnsatisfiable},
		{"bytes=-0", nil, rangeUnsatisfiable},
		{"bytes=5-1", nil, rangeIgnore},
		{"bytes=a-b", nil, rangeIgnore},
		{"bytes=1", nil, rangeIgnore},
		{"bytes=", nil, rangeIgnore},
		{"bytes=,", nil, rangeIgnore},
		{"items=0-1", nil, rangeIgnore},
		{"bytes=--1", nil, rangeIgnore},
		{"bytes=0-99,0-99", nil, rangeIgnore}, // more than the file: amplification
		{"bytes=" + strings.Repeat("0-0,", maxRanges) + "1-1", nil, rangeIgnore},
	}
	for _, tt := range tests {
		got, res := parseRanges(nil, []byte(tt.spec), size)
		if res != tt.result || (res == rangeSatisfiable && !slices.Equal(got, tt.want)) {
			t.Errorf("parseRanges(%q) = %v, %v; want %v, %v", tt.spec, got, res, tt.want, tt.result)
		}
	}
	if _, res := parseRanges(nil, []byte("bytes=0-"), 0); res != rangeUnsatisfiable {
		t.Errorf("range of an empty file: %v, want unsatisfiable", res)
	}
}
