package httplex

import (
	"strings"
	"testing"
)

func TestLex(t *testing.T) {
	for s, want := range map[string]bool{"GET": true, "x-y_z.1~": true, "": false, "a b": false, "a:b": false, "a\"": false, "caf\xc3\xa9": false} {
		if got := IsToken([]byte(s)); got != want {
			t.Errorf("IsToken(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"text/html; q=1": true, "a\tb": true, "obs\xfftext": true, "nul\x00": false, "cr\r": false, "del\x7f": false} {
		if got := ValidFieldValue([]byte(s)); got != want {
			t.Errorf("ValidFieldValue(%q) = %v", s, got)
		}
	}
	if got := string(TrimOWS([]byte(" \t a b\t "))); got != "a b" {
		t.Errorf("TrimOWS = %q", got)
	}
	if !EqualFold([]byte("Content-LENGTH"), "content-length") || EqualFold([]byte("content-lengths"), "content-length") {
		t.Error("EqualFold")
	}
	for s, want := range map[string]int64{"0": 0, "123": 123, "999999999999999999": 999999999999999999, "": -1, "1a": -1, "+1": -1, "9999999999999999999": -1} {
		n, ok := ParseUint([]byte(s))
		if (want < 0 && ok) || (want >= 0 && (!ok || n != want)) {
			t.Errorf("ParseUint(%q) = %d, %v", s, n, ok)
		}
	}
	for s, want := range map[string]int64{"0": 0, "fF": 255, "7fffffffffffffff"[1:]: 0xfffffffffffffff, "": -1, "g": -1, "1234567890abcdef": -1} {
		n, ok := ParseHex([]byte(s))
		if (want < 0 && ok) || (want >= 0 && (!ok || n != want)) {
			t.Errorf("ParseHex(%q) = %d, %v", s, n, ok)
		}
	}
	for s, want := range map[string]string{"": "", "a": "a", " a , b ,, c\t": "a|b||c", ",": "", "a,": "a"} {
		var got []string
		for v := []byte(s); len(v) > 0; {
			var e []byte
			e, v = CutElement(v)
			got = append(got, string(e))
		}
		if strings.Join(got, "|") != want {
			t.Errorf("CutElement over %q: %q, want %q", s, got, want)
		}
	}
	for s, want := range map[string]bool{"chunked": true, "gzip, Chunked ": true, "chunked, gzip": false, "": false, "xchunked": false} {
		if got := LastElementIs([]byte(s), "chunked"); got != want {
			t.Errorf("LastElementIs(%q, chunked) = %v", s, got)
		}
	}
}
