// Package httplex holds the byte-level lexical rules of HTTP/1.1 (RFC 9110
// §5.6, RFC 9112) that both the web server's request parser and the load
// generator's response parser need. Every function works on byte slices and
// allocates nothing, because both parsers run once per request on the hot
// path.
package httplex

import "bytes"

// tokenChars marks the bytes allowed in a token (RFC 9110 §5.6.2):
// "!#$%&'*+-.^_`|~", digits and letters.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// IsToken reports whether b is a non-empty token.
func IsToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

// ValidFieldValue reports whether b may be a field value: no control
// characters except horizontal tab (RFC 9110 §5.5). Bytes from 0x80 up are
// obs-text and allowed.
func ValidFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// TrimOWS removes optional whitespace (SP and HTAB) from both ends of b.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// CutElement cuts the first element off the comma-separated list v (RFC
// 9110 §5.6.1), with its optional whitespace trimmed, and returns the rest
// after the comma (nil after the last element). An empty element, which
// the list syntax allows, comes back empty for the caller to skip.
func CutElement(v []byte) (elem, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return TrimOWS(v[:i]), v[i+1:]
	}
	return TrimOWS(v), nil
}

// LastElementIs reports whether the last element of the comma-separated
// list v is want (lower case, compared without case); a Transfer-Encoding
// whose final coding is chunked is framed by it.
func LastElementIs(v []byte, want string) bool {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return EqualFold(TrimOWS(v), want)
}

// EqualFold reports whether b equals s under ASCII case folding. s must be
// lower case; field names and options are compared this way.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// IsDigit reports whether c is an ASCII digit.
func IsDigit(c byte) bool { return '0' <= c && c <= '9' }

// ParseUint parses 1*DIGIT into a non-negative int64. ok is false for an
// empty or non-digit value and for one of more than 18 digits, which could
// overflow; no file or body of interest is that large.
func ParseUint(b []byte) (n int64, ok bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	for _, c := range b {
		if !IsDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// ParseHex parses 1*HEXDIG, as in a chunk size, into a non-negative int64;
// more than 15 digits is refused as an overflow.
func ParseHex(b []byte) (n int64, ok bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}
