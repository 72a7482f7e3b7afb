package webserver

import (
	"bytes"

	"saturn/apps/internal/httplex"
)

// method is what the server does with a request method: serve it, answer
// 405 (a method RFC 9110 defines but a static server does not do), or answer
// 501 (a method the server does not recognise, RFC 9110 §9.1).
type method uint8

const (
	methodGet method = iota
	methodHead
	methodNotAllowed
	methodUnknown
)

// request is one parsed request head. Every byte slice points into the
// connection's read buffer and is valid only until the buffer is compacted,
// that is until the response to this request has been written.
type request struct {
	method    method
	methodRaw []byte
	target    []byte // the raw request-target, for the access log
	path      []byte // the path of the target, still percent-encoded
	query     []byte // after '?', without it; nil when absent
	minor     int    // HTTP/1.minor; 0 or 1 (higher minors read as 1)

	host          []byte
	hostCount     int
	connClose     bool  // a "close" connection option
	connKeepAlive bool  // a "keep-alive" connection option (HTTP/1.0)
	contentLength int64 // -1 when absent
	hasTE         bool  // a Transfer-Encoding field was present
	teChunked     bool  // and its final coding is chunked

	// The members of the Expect fields (RFC 9110 §10.1.1): 100-continue,
	// and whether any other was present.
	expectContinue bool
	expectOther    bool

	rangeSpec         []byte
	rangeCount        int
	ifRange           []byte
	ifNoneMatch       [][]byte // one entry per field line; reused across requests
	ifMatch           [][]byte
	ifModifiedSince   []byte
	ifUnmodifiedSince []byte

	referer   []byte
	userAgent []byte
}

// reset readies r for the next request, keeping the capacity of its lists.
func (r *request) reset() {
	inm, im := r.ifNoneMatch[:0], r.ifMatch[:0]
	*r = request{contentLength: -1, ifNoneMatch: inm, ifMatch: im}
}

// keepAlive reports whether the connection may carry another request after
// this one, as far as the request says (RFC 9112 §9.3).
func (r *request) keepAlive() bool {
	if r.connClose {
		return false
	}
	return r.minor >= 1 || r.connKeepAlive
}

// hasBody reports whether a request body follows the head.
func (r *request) hasBody() bool { return r.hasTE || r.contentLength > 0 }

// parseError is a request the server refuses while reading it. Status is the
// response to send; after it the connection is closed, because the framing
// of what follows can no longer be trusted.
type parseError struct {
	status int
	reason string // for tests and debugging; never sent to the client
}

func (e *parseError) Error() string { return "webserver: bad request: " + e.reason }

func badRequest(reason string) *parseError { return &parseError{status: 400, reason: reason} }

// Errors that need no detail are allocated once: a flood of bad requests
// costs no garbage.
var (
	errBadRequestLine  = badRequest("malformed request line")
	errBadMethod       = badRequest("method is not a token")
	errBadTarget       = badRequest("malformed request-target")
	errBadVersion      = badRequest("malformed HTTP version")
	errVersion         = &parseError{status: 505, reason: "HTTP major version is not 1"}
	errBadHeaderLine   = badRequest("malformed header field line")
	errBadHeaderName   = badRequest("header field name is not a token")
	errBadHeaderValue  = badRequest("control character in header field value")
	errObsFold         = badRequest("obsolete line folding")
	errTooManyHeaders  = &parseError{status: 431, reason: "too many header fields"}
	errNoHost          = badRequest("HTTP/1.1 request without Host")
	errManyHosts       = badRequest("more than one Host field")
	errBadLength       = badRequest("malformed or conflicting Content-Length")
	errLengthAndCoding = badRequest("both Content-Length and Transfer-Encoding")
)

// headEnd returns the length of the request head at the start of buf (the
// request line, the field lines and the empty line that ends them), or -1
// when buf does not yet hold all of it. from is where a previous call on a
// shorter prefix of the same buffer stopped looking, so that a head that
// arrives a byte at a time is scanned once, not once per byte. A lone LF is
// accepted as a line end (RFC 9112 §2.2).
func headEnd(buf []byte, from int) int {
	// A line end at from-1 or from-2 may be the first half of the empty line.
	i := max(from-2, 0)
	for {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(buf) && buf[i] == '\n' {
			return i + 1
		}
		if i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n' {
			return i + 2
		}
		if i >= len(buf) {
			return -1
		}
	}
}

// skipEmptyLines returns how many bytes of empty lines precede the request
// line; RFC 9112 §2.2 asks a server to ignore at least one, which some
// clients send after a request body.
func skipEmptyLines(buf []byte) int {
	n := 0
	for {
		switch {
		case n < len(buf) && buf[n] == '\n':
			n++
		case n+1 < len(buf) && buf[n] == '\r' && buf[n+1] == '\n':
			n += 2
		default:
			return n
		}
	}
}

// nextLine splits the first line off b; the line excludes its CRLF or LF.
// ok is false when b holds no LF, or when a CR appears anywhere but before
// the LF (a bare CR is not a line end and is refused, RFC 9112 §2.2).
func nextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, false
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, rest, true
}

// parseRequest parses a complete request head, as delimited by headEnd, into
// req. maxHeaders caps the number of field lines. It never reads past head,
// allocates nothing once req's lists have grown, and returns a *parseError
// for every request it refuses.
func parseRequest(head []byte, maxHeaders int, req *request) *parseError {
	req.reset()
	line, rest, ok := nextLine(head)
	if !ok {
		return errBadRequestLine
	}
	if err := parseRequestLine(line, req); err != nil {
		return err
	}
	count := 0
	for {
		line, rest, ok = nextLine(rest)
		if !ok {
			return errBadHeaderLine
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errObsFold // RFC 9112 §5.2: reject, or replace by SP
		}
		if count++; count > maxHeaders {
			return errTooManyHeaders
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errBadHeaderLine
		}
		name, value := line[:colon], httplex.TrimOWS(line[colon+1:])
		if !httplex.IsToken(name) {
			// Also refuses whitespace before the colon (RFC 9112 §5.1).
			return errBadHeaderName
		}
		if !httplex.ValidFieldValue(value) {
			return errBadHeaderValue
		}
		if err := req.field(name, value); err != nil {
			return err
		}
	}
	if len(rest) != 0 {
		return errBadHeaderLine // head was not delimited by headEnd
	}
	if req.minor >= 1 && req.hostCount == 0 {
		return errNoHost // RFC 9112 §3.2
	}
	if req.hasTE && req.contentLength >= 0 {
		return errLengthAndCoding // RFC 9112 §6.3: a smuggling attempt
	}
	return nil
}

// parseRequestLine parses "method SP request-target SP HTTP-version".
func parseRequestLine(line []byte, req *request) *parseError {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errBadRequestLine
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errBadRequestLine
	}
	req.methodRaw, req.target = line[:sp1], rest[:sp2]
	version := rest[sp2+1:]
	if !httplex.IsToken(req.methodRaw) {
		return errBadMethod
	}
	req.method = classifyMethod(req.methodRaw)
	if len(version) != 8 || string(version[:5]) != "HTTP/" || version[6] != '.' ||
		!httplex.IsDigit(version[5]) || !httplex.IsDigit(version[7]) {
		return errBadVersion
	}
	if version[5] != '1' {
		return errVersion
	}
	req.minor = min(int(version[7]-'0'), 1)
	return splitTarget(req)
}

// splitTarget finds the path and query of the request-target, accepting the
// origin form and the absolute form (RFC 9112 §3.2.1, §3.2.2). The asterisk
// and authority forms belong to OPTIONS and CONNECT, which are refused with
// 405 later, so their target is kept whole and not checked here.
func splitTarget(req *request) *parseError {
	t := req.target
	for _, c := range t {
		if c <= ' ' || c == 0x7f || c == '#' {
			return errBadTarget // fragments are never sent (RFC 9110 §4.2.4)
		}
	}
	if req.method == methodNotAllowed && (len(t) == 0 || t[0] != '/') {
		return nil
	}
	if len(t) > 0 && t[0] != '/' {
		// absolute-form: scheme "://" authority path-abempty
		i := bytes.Index(t, []byte("://"))
		if i <= 0 || !isScheme(t[:i]) {
			return errBadTarget
		}
		t = t[i+3:]
		slash := bytes.IndexAny(t, "/?")
		switch {
		case slash < 0:
			t = []byte("/")
		case t[slash] == '?':
			t = append([]byte("/"), t[slash:]...) // rare; allocation accepted
		default:
			t = t[slash:]
		}
	}
	if len(t) == 0 || t[0] != '/' {
		return errBadTarget
	}
	if q := bytes.IndexByte(t, '?'); q >= 0 {
		req.path, req.query = t[:q], t[q+1:]
	} else {
		req.path = t
	}
	return nil
}

func isScheme(b []byte) bool {
	return httplex.EqualFold(b, "http") || httplex.EqualFold(b, "https")
}

func classifyMethod(m []byte) method {
	switch string(m) { // the compiler does not allocate for this conversion
	case "GET":
		return methodGet
	case "HEAD":
		return methodHead
	case "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return methodNotAllowed
	}
	return methodUnknown
}

// expectation records the members of one Expect field value, a
// comma-separated list whose empty members do not count (RFC 9110 §5.6.1).
// 100-continue is matched without case; anything else, parameters
// included, is an expectation the server cannot meet.
func (r *request) expectation(value []byte) {
	for len(value) > 0 {
		var member []byte
		switch member, value = httplex.CutElement(value); {
		case len(member) == 0:
		case httplex.EqualFold(member, "100-continue"):
			r.expectContinue = true
		default:
			r.expectOther = true
		}
	}
}

// field records the header fields the server acts on and ignores the rest.
// Matching is on the length first so that most fields cost one comparison.
func (r *request) field(name, value []byte) *parseError {
	switch len(name) {
	case 4:
		if httplex.EqualFold(name, "host") {
			r.hostCount++
			if r.hostCount > 1 {
				return errManyHosts // RFC 9112 §3.2
			}
			r.host = value
		}
	case 5:
		if httplex.EqualFold(name, "range") {
			r.rangeSpec = value
			r.rangeCount++
		}
	case 6:
		if httplex.EqualFold(name, "expect") {
			r.expectation(value)
		}
	case 7:
		if httplex.EqualFold(name, "referer") {
			r.referer = value
		}
	case 8:
		switch {
		case httplex.EqualFold(name, "if-match"):
			r.ifMatch = append(r.ifMatch, value)
		case httplex.EqualFold(name, "if-range"):
			r.ifRange = value
		}
	case 10:
		switch {
		case httplex.EqualFold(name, "connection"):
			r.connectionOptions(value)
		case httplex.EqualFold(name, "user-agent"):
			r.userAgent = value
		}
	case 13:
		if httplex.EqualFold(name, "if-none-match") {
			r.ifNoneMatch = append(r.ifNoneMatch, value)
		}
	case 14:
		if httplex.EqualFold(name, "content-length") {
			n, ok := httplex.ParseUint(value)
			if !ok || (r.contentLength >= 0 && r.contentLength != n) {
				return errBadLength // RFC 9112 §6.3 item 5
			}
			r.contentLength = n
		}
	case 17:
		switch {
		case httplex.EqualFold(name, "transfer-encoding"):
			r.hasTE = true
			r.teChunked = httplex.LastElementIs(value, "chunked")
		case httplex.EqualFold(name, "if-modified-since"):
			r.ifModifiedSince = value
		}
	case 19:
		if httplex.EqualFold(name, "if-unmodified-since") {
			r.ifUnmodifiedSince = value
		}
	}
	return nil
}

// connectionOptions reads the comma-separated options of a Connection field.
func (r *request) connectionOptions(v []byte) {
	for len(v) > 0 {
		var opt []byte
		opt, v = httplex.CutElement(v)
		switch {
		case httplex.EqualFold(opt, "close"):
			r.connClose = true
		case httplex.EqualFold(opt, "keep-alive"):
			r.connKeepAlive = true
		}
	}
}
