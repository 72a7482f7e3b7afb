package webserver

import "unicode/utf8"

// Paths. A request-target's path is percent-decoded first and resolved
// second, so that an encoded dot ("%2e%2e") or an encoded slash ("%2f") is
// subject to the same checks as a literal one: "/..%2f..%2fetc/passwd"
// decodes to "/../../etc/passwd" and is refused for climbing above the root.
// A ".." that stays beneath the root ("/a/../b") is resolved, as nginx does
// and as RFC 3986 §5.2.4 describes. The result is a valid io/fs path
// (fs.ValidPath): no empty, "." or ".." element and no leading slash.

var (
	errBadEscape = badRequest("malformed percent-encoding in path")
	errNULInPath = badRequest("NUL in path")
	errTraversal = badRequest("path climbs above the root")
	errNotUTF8   = badRequest("path is not UTF-8")
)

// resolvePath decodes and resolves the percent-encoded path raw (which
// starts with '/') into scratch, whose capacity it reuses, and returns the
// fs.FS name: "." for the root. dir reports whether the path names a
// directory by its form (it ends in '/', "." or ".."), which decides between
// serving and redirecting. scratch is returned grown so that the caller can
// keep it for the next request.
func resolvePath(scratch, raw []byte) (name, grown []byte, dir bool, err *parseError) {
	decoded := scratch[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) {
				return nil, decoded, false, errBadEscape
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return nil, decoded, false, errBadEscape
			}
			c = hi<<4 | lo
			i += 2
		}
		if c == 0 {
			return nil, decoded, false, errNULInPath
		}
		decoded = append(decoded, c)
	}

	// Resolve in place: writing "seg" or "/seg" never overtakes reading
	// "/seg", so out may share decoded's array.
	out := decoded[:0]
	dir = true
	for r := 0; r < len(decoded); {
		// decoded[r] is '/' here (raw starts with '/' and segments end at '/').
		end := r + 1
		for end < len(decoded) && decoded[end] != '/' {
			end++
		}
		seg := decoded[r+1 : end]
		r = end
		switch string(seg) {
		case "", ".":
			dir = true
		case "..":
			dir = true
			if len(out) == 0 {
				return nil, decoded, false, errTraversal
			}
			cut := 0
			for i := len(out) - 1; i >= 0; i-- {
				if out[i] == '/' {
					cut = i
					break
				}
			}
			out = out[:cut]
		default:
			dir = false
			if len(out) > 0 {
				out = append(out, '/')
			}
			out = append(out, seg...)
		}
	}
	if len(out) == 0 {
		return append(out, '.'), decoded, true, nil
	}
	if !utf8.Valid(out) {
		// io/fs names are UTF-8 (fs.ValidPath); no file could match.
		return nil, decoded, false, errNotUTF8
	}
	return out, decoded, dir, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// appendLocation appends the target of the redirect that gives a folder's
// URL its trailing slash: "/", the resolved name, "/", then "?" and the
// query as the client sent it. It is built from the name resolvePath made,
// never from the raw path, so it is always a path on this server: the name
// has no empty element and no leading slash, and every byte outside RFC
// 3986's pchar (a backslash, which browsers read as a slash, among them)
// is percent-encoded. A Location beginning "//" or "/\" would send the
// client to another host ("GET //evil.example/..%2fsub").
func appendLocation(dst []byte, name string, query []byte) []byte {
	dst = append(dst, '/')
	if name != "." {
		for i := 0; i < len(name); i++ {
			if c := name[i]; c == '/' || isPchar(c) {
				dst = append(dst, c)
			} else {
				dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
			}
		}
		dst = append(dst, '/')
	}
	if query != nil {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	return dst
}

const upperHex = "0123456789ABCDEF"

// isPchar reports whether c may stand unencoded in a path segment (RFC
// 3986 §3.3): unreserved, sub-delims, ':' and '@'.
func isPchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}
