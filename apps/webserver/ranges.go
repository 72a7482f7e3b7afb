package webserver

import (
	"bytes"
	"strconv"

	"saturn/apps/internal/httplex"
)

// Range requests (RFC 9110 §14). Only the "bytes" unit exists. A field that
// does not parse is ignored and the whole file is sent, as §14.2 allows; so
// is one whose ranges are too many or add up to more than the file, which is
// how a client would turn one request into a large amplified response.

// maxRanges is the most ranges one request may ask for before the server
// ignores its Range field.
const maxRanges = 32

// byteRange is a satisfiable range: length ≥ 1 and start+length ≤ size.
type byteRange struct{ start, length int64 }

type rangeResult uint8

const (
	rangeIgnore        rangeResult = iota // send the whole file, 200
	rangeSatisfiable                      // send the ranges, 206
	rangeUnsatisfiable                    // 416
)

// parseRanges parses a Range field value for a file of size bytes, appending
// its satisfiable ranges to dst.
func parseRanges(dst []byteRange, v []byte, size int64) ([]byteRange, rangeResult) {
	dst = dst[:0]
	v = httplex.TrimOWS(v)
	if len(v) < 6 || !httplex.EqualFold(v[:6], "bytes=") {
		return dst, rangeIgnore
	}
	v = v[6:]
	specs, total := 0, int64(0)
	for len(v) > 0 {
		var spec []byte
		spec, v = httplex.CutElement(v)
		if len(spec) == 0 {
			continue // empty list elements are allowed (RFC 9110 §5.6.1)
		}
		if specs++; specs > maxRanges {
			return dst, rangeIgnore
		}
		dash := bytes.IndexByte(spec, '-')
		if dash < 0 {
			return dst, rangeIgnore
		}
		first, last := spec[:dash], spec[dash+1:]
		var r byteRange
		switch {
		case len(first) == 0: // suffix: the last n bytes
			n, ok := httplex.ParseUint(last)
			if !ok {
				return dst, rangeIgnore
			}
			if n == 0 || size == 0 {
				continue // unsatisfiable
			}
			n = min(n, size)
			r = byteRange{size - n, n}
		default:
			a, ok := httplex.ParseUint(first)
			if !ok {
				return dst, rangeIgnore
			}
			b := size - 1
			if len(last) > 0 {
				if b, ok = httplex.ParseUint(last); !ok || b < a {
					return dst, rangeIgnore
				}
			}
			if a >= size {
				continue // unsatisfiable
			}
			b = min(b, size-1)
			r = byteRange{a, b - a + 1}
		}
		total += r.length
		dst = append(dst, r)
	}
	if specs == 0 {
		return dst, rangeIgnore
	}
	if len(dst) == 0 {
		return dst, rangeUnsatisfiable
	}
	if total > size {
		return dst[:0], rangeIgnore
	}
	return dst, rangeSatisfiable
}

// appendContentRange appends "bytes first-last/size".
func appendContentRange(b []byte, r byteRange, size int64) []byte {
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, r.start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.start+r.length-1, 10)
	b = append(b, '/')
	return strconv.AppendInt(b, size, 10)
}

// appendPartHeader appends the delimiter and header of one body part of a
// multipart/byteranges response (RFC 9110 §14.6).
func appendPartHeader(b []byte, boundary []byte, ctype string, r byteRange, size int64) []byte {
	b = append(b, "\r\n--"...)
	b = append(b, boundary...)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, ctype...)
	b = append(b, "\r\nContent-Range: "...)
	b = appendContentRange(b, r, size)
	return append(b, "\r\n\r\n"...)
}

// appendCloseDelimiter appends the delimiter that ends the multipart body.
func appendCloseDelimiter(b []byte, boundary []byte) []byte {
	b = append(b, "\r\n--"...)
	b = append(b, boundary...)
	return append(b, "--\r\n"...)
}

// multipartLength is the Content-Length of a multipart/byteranges body,
// computed before any of it is sent by formatting each part header into
// scratch.
func multipartLength(scratch []byte, ranges []byteRange, boundary []byte, ctype string, size int64) (int64, []byte) {
	var n int64
	for _, r := range ranges {
		scratch = appendPartHeader(scratch[:0], boundary, ctype, r, size)
		n += int64(len(scratch)) + r.length
	}
	scratch = appendCloseDelimiter(scratch[:0], boundary)
	return n + int64(len(scratch)), scratch
}
