package loadgen

import (
	"bytes"
	"errors"
	"io"
	"os"

	"saturn/apps/internal/httplex"
)

// errorKind classifies a failed request for the report.
type errorKind uint8

const (
	kindNone errorKind = iota
	kindConnect
	kindRead
	kindWrite
	kindTimeout
	kindMalformed
)

// requestError is a failed request: its kind and the cause.
type requestError struct {
	kind errorKind
	err  error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

var (
	errMalformedStatus  = errors.New("loadgen: malformed status line")
	errMalformedHeader  = errors.New("loadgen: malformed header field")
	errMalformedLength  = errors.New("loadgen: malformed or conflicting Content-Length")
	errMalformedChunk   = errors.New("loadgen: malformed chunk")
	errHeadTooLarge     = errors.New("loadgen: response head larger than the read buffer")
	errUnexpectedSwitch = errors.New("loadgen: unexpected 101 Switching Protocols")
)

func malformed(err error) *requestError { return &requestError{kindMalformed, err} }

// readError classifies an I/O error met while reading a response. An EOF
// before the response is complete is a truncation and counts as a read
// error: a cut-off body is never a success.
func readError(err error) *requestError {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &requestError{kindTimeout, err}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &requestError{kindRead, err}
}

// response is what the load generator keeps of a response.
type response struct {
	status int
	close  bool // the connection cannot carry another request
}

// respReader reads responses from a connection through its own buffer. It
// copies nothing: a body is counted and dropped as it passes through.
type respReader struct {
	r          io.Reader
	buf        []byte
	start, end int   // unread bytes are buf[start:end]
	total      int64 // bytes read from r
}

func newRespReader(r io.Reader, size int) *respReader {
	return &respReader{r: r, buf: make([]byte, size)}
}

// fill reads more bytes, compacting the buffer first when it is full.
func (rr *respReader) fill() error {
	if rr.start > 0 && rr.end == len(rr.buf) {
		rr.end = copy(rr.buf, rr.buf[rr.start:rr.end])
		rr.start = 0
	}
	if rr.end == len(rr.buf) {
		return errHeadTooLarge
	}
	n, err := rr.r.Read(rr.buf[rr.end:])
	rr.end += n
	rr.total += int64(n)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// line returns the next line without its CRLF or LF, reading as needed. The
// line stays valid until the next call.
func (rr *respReader) line() ([]byte, *requestError) {
	l, _, err := rr.lineCR()
	return l, err
}

// lineCR is line that also says whether the line ended in CRLF: chunked
// framing insists on it, as net/http does, since a lenient chunk parser is
// how request smuggling begins.
func (rr *respReader) lineCR() ([]byte, bool, *requestError) {
	scanned := rr.start
	for {
		if i := bytes.IndexByte(rr.buf[scanned:rr.end], '\n'); i >= 0 {
			l := rr.buf[rr.start : scanned+i]
			rr.start = scanned + i + 1
			cr := false
			if n := len(l); n > 0 && l[n-1] == '\r' {
				l, cr = l[:n-1], true
			}
			return l, cr, nil
		}
		scanned = rr.end
		before := rr.start
		if err := rr.fill(); err != nil {
			if err == errHeadTooLarge {
				return nil, false, malformed(err)
			}
			return nil, false, readError(err)
		}
		scanned -= before - rr.start // the buffer may have been compacted
	}
}

// skip consumes n body bytes.
func (rr *respReader) skip(n int64) *requestError {
	for n > 0 {
		if rr.start == rr.end {
			rr.start, rr.end = 0, 0
			if err := rr.fill(); err != nil {
				return readError(err)
			}
		}
		k := min(n, int64(rr.end-rr.start))
		rr.start += int(k)
		n -= k
	}
	return nil
}

// skipToEOF consumes a body delimited by the connection's end.
func (rr *respReader) skipToEOF() *requestError {
	for {
		rr.start, rr.end = 0, 0
		if err := rr.fill(); err == io.EOF {
			return nil
		} else if err != nil {
			return readError(err)
		}
	}
}

// readResponse reads one whole response to a request, skipping interim 1xx
// responses. head says the request was HEAD, whose response has no body.
// The body's length is checked against its framing (RFC 9112 §6.3):
// a response whose body ends early is an error.
func (rr *respReader) readResponse(head bool) (response, *requestError) {
	for {
		resp, err := rr.readOne(head)
		if err != nil || resp.status >= 200 {
			return resp, err
		}
	}
}

func (rr *respReader) readOne(head bool) (response, *requestError) {
	l, rerr := rr.line()
	if rerr != nil {
		return response{}, rerr
	}
	var resp response
	minor, ok := parseStatusLine(l, &resp.status)
	if !ok {
		return resp, malformed(errMalformedStatus)
	}
	if resp.status == 101 {
		return resp, malformed(errUnexpectedSwitch)
	}
	keepAlive := minor >= 1
	contentLength, chunked, coded := int64(-1), false, false
	for {
		l, rerr = rr.line()
		if rerr != nil {
			return resp, rerr
		}
		if len(l) == 0 {
			break
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || !httplex.IsToken(l[:colon]) {
			return resp, malformed(errMalformedHeader)
		}
		name, value := l[:colon], httplex.TrimOWS(l[colon+1:])
		switch {
		case httplex.EqualFold(name, "content-length"):
			n, ok := httplex.ParseUint(value)
			if !ok || (contentLength >= 0 && n != contentLength) {
				return resp, malformed(errMalformedLength)
			}
			contentLength = n
		case httplex.EqualFold(name, "transfer-encoding"):
			coded = true
			chunked = httplex.LastElementIs(value, "chunked")
		case httplex.EqualFold(name, "connection"):
			if hasToken(value, "close") {
				keepAlive = false
			} else if hasToken(value, "keep-alive") {
				keepAlive = true
			}
		}
	}
	resp.close = !keepAlive
	switch {
	case resp.status < 200:
		return resp, nil // interim: the final response follows
	case head || resp.status == 204 || resp.status == 304:
		return resp, nil
	case coded && chunked:
		return resp, rr.skipChunked()
	case coded:
		resp.close = true // RFC 9112 §6.3 item 4: read until close
		return resp, rr.skipToEOF()
	case contentLength >= 0:
		return resp, rr.skip(contentLength)
	default:
		resp.close = true
		return resp, rr.skipToEOF()
	}
}

// parseStatusLine reads "HTTP/1.x SP 3DIGIT [SP reason]".
func parseStatusLine(l []byte, status *int) (minor int, ok bool) {
	if len(l) < 12 || string(l[:7]) != "HTTP/1." || !httplex.IsDigit(l[7]) || l[8] != ' ' {
		return 0, false
	}
	code := l[9:12]
	if !httplex.IsDigit(code[0]) || !httplex.IsDigit(code[1]) || !httplex.IsDigit(code[2]) || code[0] == '0' {
		return 0, false
	}
	if len(l) > 12 && l[12] != ' ' {
		return 0, false
	}
	*status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	return int(l[7] - '0'), true
}

// skipChunked consumes a chunked body and its trailer section (RFC 9112 §7.1).
func (rr *respReader) skipChunked() *requestError {
	for {
		l, cr, err := rr.lineCR()
		if err != nil {
			return err
		}
		if !cr {
			return malformed(errMalformedChunk)
		}
		if i := bytes.IndexByte(l, ';'); i >= 0 {
			l = l[:i] // chunk extensions are ignored
		}
		size, ok := httplex.ParseHex(httplex.TrimOWS(l))
		if !ok {
			return malformed(errMalformedChunk)
		}
		if size == 0 {
			break
		}
		if err := rr.skip(size); err != nil {
			return err
		}
		if l, cr, err = rr.lineCR(); err != nil {
			return err
		}
		if len(l) != 0 || !cr {
			return malformed(errMalformedChunk)
		}
	}
	for { // trailer fields, up to the empty line
		l, cr, err := rr.lineCR()
		if err != nil {
			return err
		}
		if !cr {
			return malformed(errMalformedChunk)
		}
		if len(l) == 0 {
			return nil
		}
		if colon := bytes.IndexByte(l, ':'); colon <= 0 || !httplex.IsToken(l[:colon]) {
			return malformed(errMalformedHeader)
		}
	}
}

// hasToken reports whether the comma-separated list v has the element want
// (lower case, compared without case), as Connection: close does.
func hasToken(v []byte, want string) bool {
	for len(v) > 0 {
		var t []byte
		if t, v = httplex.CutElement(v); httplex.EqualFold(t, want) {
			return true
		}
	}
	return false
}

// errDeadline is what a connection's I/O returns once its deadline passes.
var errDeadline = os.ErrDeadlineExceeded
