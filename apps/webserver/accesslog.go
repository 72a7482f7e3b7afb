package webserver

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
)

// LogFormat is an access log's line format, as Apache and nginx write it.
type LogFormat uint8

const (
	// LogCombined is the combined log format (nginx's default,
	// Apache's "combined"): the common format, then the Referer and
	// User-Agent:
	//
	//	127.0.0.1 - - [02/Jan/2006:15:04:05 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0"
	LogCombined LogFormat = iota
	// LogCommon is the Common Log Format (Apache's "common"): client,
	// identity and user (always "-"), time, request line, status, and
	// the body's bytes sent:
	//
	//	127.0.0.1 - - [02/Jan/2006:15:04:05 +0000] "GET / HTTP/1.1" 200 612
	LogCommon
)

// ParseLogFormat parses "combined" or "common".
func ParseLogFormat(s string) (LogFormat, error) {
	switch s {
	case "combined":
		return LogCombined, nil
	case "common":
		return LogCommon, nil
	}
	return 0, fmt.Errorf("webserver: access log format %q: want \"combined\" or \"common\"", s)
}

func (f LogFormat) String() string {
	if f == LogCommon {
		return "common"
	}
	return "combined"
}

// accessLog writes one line per response in its format (LogFormat).
// Each connection formats its line in its own buffer; only the Write is
// serialised, so connections do not queue behind each other's formatting.
type accessLog struct {
	format LogFormat
	mu     sync.Mutex
	w      io.Writer
}

func newAccessLog(w io.Writer, format LogFormat) *accessLog {
	if w == nil {
		return nil
	}
	return &accessLog{w: w, format: format}
}

func (l *accessLog) write(line []byte) {
	l.mu.Lock()
	l.w.Write(line) // a failing log must not fail the request
	l.mu.Unlock()
}

// logAccess logs the response just built for c.req; it must run before the
// request's bytes are released.
func (c *conn) logAccess() {
	l := c.srv.log
	if l == nil {
		return
	}
	if c.remote == "" {
		c.remote = "-"
		if a := c.nc.RemoteAddr(); a != nil {
			if host, _, err := net.SplitHostPort(a.String()); err == nil {
				c.remote = host
			} else {
				c.remote = a.String()
			}
		}
	}
	req := &c.req
	b := append(c.scratch[:0], c.remote...)
	b = append(b, " - - ["...)
	b = c.now.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	if len(req.methodRaw) == 0 {
		b = append(b, '-')
	} else {
		b = appendLogSafe(b, req.methodRaw)
		b = append(b, ' ')
		b = appendLogSafe(b, req.target)
		b = append(b, " HTTP/1."...)
		b = append(b, byte('0'+req.minor))
	}
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(c.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, c.bodySent, 10)
	if l.format == LogCombined {
		b = append(b, " \""...)
		b = appendLogSafe(b, req.referer)
		b = append(b, "\" \""...)
		b = appendLogSafe(b, req.userAgent)
		b = append(b, '"')
	}
	b = append(b, '\n')
	c.scratch = b
	l.write(b)
}

// appendLogSafe appends v with quotes, backslashes and bytes outside
// printable ASCII escaped as \xHH, so that a client cannot forge log lines
// or fields; an empty value is logged as "-".
func appendLogSafe(b, v []byte) []byte {
	if len(v) == 0 {
		return append(b, '-')
	}
	const hexDigits = "0123456789abcdef"
	for _, ch := range v {
		if ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' {
			b = append(b, '\\', 'x', hexDigits[ch>>4], hexDigits[ch&15])
			continue
		}
		b = append(b, ch)
	}
	return b
}
