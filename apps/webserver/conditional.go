package webserver

import (
	"bytes"
	"strconv"
	"time"

	"saturn/apps/internal/httplex"
)

// Validators and conditional requests (RFC 9110 §8.8, §13).
//
// The entity tag is strong and derived from the modification time in
// nanoseconds and the size, as nginx derives its own from seconds and size:
// the fs.FS offers nothing better without reading the file. Two writes of the
// same size within one clock tick give the same tag; that is the price of
// not hashing content.

// appendETag appends the quoted entity tag of a file.
func appendETag(b []byte, mod time.Time, size int64) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, mod.UnixNano(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, size, 16)
	return append(b, '"')
}

// outcome is what the preconditions decide.
type outcome uint8

const (
	proceed            outcome = iota
	notModified                // 304
	preconditionFailed         // 412
)

// evalPreconditions applies RFC 9110 §13.2.2's order: If-Match, else
// If-Unmodified-Since; then If-None-Match, else If-Modified-Since. mod is
// the Last-Modified time at one-second precision (zero when unknown).
func evalPreconditions(req *request, etag []byte, mod time.Time) outcome {
	if len(req.ifMatch) > 0 {
		if !etagListMatch(req.ifMatch, etag, false) {
			return preconditionFailed
		}
	} else if len(req.ifUnmodifiedSince) > 0 && !mod.IsZero() {
		if t, ok := parseHTTPDate(req.ifUnmodifiedSince); ok && mod.After(t) {
			return preconditionFailed
		}
	}
	if len(req.ifNoneMatch) > 0 {
		if etagListMatch(req.ifNoneMatch, etag, true) {
			return notModified // for GET and HEAD, the only methods served
		}
	} else if len(req.ifModifiedSince) > 0 && !mod.IsZero() {
		if t, ok := parseHTTPDate(req.ifModifiedSince); ok && !mod.After(t) {
			return notModified
		}
	}
	return proceed
}

// rangeApplies decides If-Range (RFC 9110 §13.1.5): the Range is honoured
// only when the validator still matches, else the whole file is sent. A weak
// tag never matches; a date must equal Last-Modified exactly.
func rangeApplies(req *request, etag []byte, mod time.Time) bool {
	v := req.ifRange
	if len(v) == 0 {
		return true
	}
	if v[0] == '"' {
		return bytes.Equal(v, etag)
	}
	if len(v) >= 2 && v[0] == 'W' && v[1] == '/' {
		return false
	}
	t, ok := parseHTTPDate(v)
	return ok && !mod.IsZero() && t.Equal(mod)
}

// etagListMatch reports whether etag is in any of the field values, each a
// "*" or a comma-separated list of entity tags. weak selects the weak
// comparison (If-None-Match) over the strong one (If-Match). A malformed
// element matches nothing; the rest of the list still counts.
func etagListMatch(fields [][]byte, etag []byte, weak bool) bool {
	for _, list := range fields {
		if string(httplex.TrimOWS(list)) == "*" {
			return true
		}
		for len(list) > 0 {
			list = httplex.TrimOWS(list)
			isWeak := false
			if len(list) >= 2 && list[0] == 'W' && list[1] == '/' {
				isWeak, list = true, list[2:]
			}
			if len(list) > 0 && list[0] == '"' {
				end := bytes.IndexByte(list[1:], '"')
				if end < 0 {
					break
				}
				tag := list[:end+2]
				if (weak || !isWeak) && bytes.Equal(tag, etag) {
					return true
				}
				list = list[end+2:]
			}
			i := bytes.IndexByte(list, ',')
			if i < 0 {
				break
			}
			list = list[i+1:]
		}
	}
	return false
}

var (
	dayNames   = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	monthNames = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

// appendHTTPDate appends t in IMF-fixdate form, "Sun, 06 Nov 1994 08:49:37
// GMT" (RFC 9110 §5.6.7), by hand: time.AppendFormat costs several times
// more, and this runs for every response.
func appendHTTPDate(b []byte, t time.Time) []byte {
	t = t.UTC()
	yy, mm, dd := t.Date()
	hh, mi, ss := t.Clock()
	b = append(b, dayNames[t.Weekday()]...)
	b = append(b, ", "...)
	b = append2(b, dd)
	b = append(b, ' ')
	b = append(b, monthNames[mm-1]...)
	b = append(b, ' ')
	b = append2(b, yy/100)
	b = append2(b, yy%100)
	b = append(b, ' ')
	b = append2(b, hh)
	b = append(b, ':')
	b = append2(b, mi)
	b = append(b, ':')
	b = append2(b, ss)
	return append(b, " GMT"...)
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10%10), byte('0'+n%10)) }

// parseHTTPDate reads the three forms of HTTP-date a recipient must accept
// (RFC 9110 §5.6.7). IMF-fixdate, the only one clients still send, is read
// by hand without allocating; the obsolete forms go through time.Parse.
func parseHTTPDate(b []byte) (time.Time, bool) {
	if t, ok := parseIMFFixdate(b); ok {
		return t, true
	}
	for _, layout := range [...]string{"Monday, 02-Jan-06 15:04:05 GMT", time.ANSIC} {
		if t, err := time.Parse(layout, string(b)); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseIMFFixdate parses "Sun, 06 Nov 1994 08:49:37 GMT". The day name is
// checked for form only, as RFC 9110 lets a recipient ignore it.
func parseIMFFixdate(b []byte) (time.Time, bool) {
	if len(b) != 29 || b[3] != ',' || b[4] != ' ' || b[7] != ' ' || b[11] != ' ' ||
		b[16] != ' ' || b[19] != ':' || b[22] != ':' || b[25] != ' ' || string(b[26:]) != "GMT" {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if !httplex.IsDigit(c) {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	month := -1
	for i, m := range monthNames {
		if string(b[8:11]) == m {
			month = i + 1
		}
	}
	day, ok1 := num(b[5:7])
	year, ok2 := num(b[12:16])
	hh, ok3 := num(b[17:19])
	mi, ok4 := num(b[20:22])
	ss, ok5 := num(b[23:25])
	if month < 0 || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || day < 1 || day > 31 || hh > 23 || mi > 59 || ss > 60 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hh, mi, ss, 0, time.UTC), true
}
