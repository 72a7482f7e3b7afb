package webserver

import (
	"strconv"
	"sync/atomic"
	"time"
)

// serverName is sent in the Server field of every response.
const serverName = "saturn"

var statusText = map[int]string{
	200: "OK",
	206: "Partial Content",
	301: "Moved Permanently",
	304: "Not Modified",
	400: "Bad Request",
	403: "Forbidden",
	404: "Not Found",
	405: "Method Not Allowed",
	408: "Request Timeout",
	411: "Length Required",
	412: "Precondition Failed",
	413: "Content Too Large",
	414: "URI Too Long",
	416: "Range Not Satisfiable",
	417: "Expectation Failed",
	431: "Request Header Fields Too Large",
	500: "Internal Server Error",
	501: "Not Implemented",
	503: "Service Unavailable",
	505: "HTTP Version Not Supported",
}

// statusLines holds "HTTP/1.1 200 OK\r\n" and the rest, formatted once.
var statusLines = func() map[int][]byte {
	m := make(map[int][]byte, len(statusText))
	for code, text := range statusText {
		m[code] = []byte("HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n")
	}
	return m
}()

// errorBodies holds the small plain-text body of each error status.
var errorBodies = func() map[int][]byte {
	m := make(map[int][]byte, len(statusText))
	for code, text := range statusText {
		if code >= 400 {
			m[code] = []byte(strconv.Itoa(code) + " " + text + "\n")
		}
	}
	return m
}()

// dateCache keeps the Date field value of the current second, so that a
// busy server formats it once a second instead of once a response.
type dateCache struct{ cur atomic.Pointer[dateValue] }

type dateValue struct {
	sec int64
	b   []byte
}

func (d *dateCache) get(now time.Time) []byte {
	sec := now.Unix()
	if v := d.cur.Load(); v != nil && v.sec == sec {
		return v.b
	}
	v := &dateValue{sec: sec, b: appendHTTPDate(make([]byte, 0, 29), now)}
	d.cur.Store(v)
	return v.b
}

// appendResponseHead appends the status line and the fields every response
// carries: Date, Server and, when the connection is to close, Connection.
// keepAlive10 adds "Connection: keep-alive" for an HTTP/1.0 client that
// asked for it (RFC 9112 §9.3).
func (c *conn) appendResponseHead(status int) {
	b := append(c.wbuf, statusLines[status]...)
	b = append(b, "Server: "+serverName+"\r\nDate: "...)
	b = append(b, c.srv.date.get(c.now)...)
	b = append(b, "\r\n"...)
	switch {
	case !c.keep:
		b = append(b, "Connection: close\r\n"...)
	case c.req.minor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	c.wbuf = b
}

func (c *conn) appendField(name, value string) {
	b := append(c.wbuf, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	c.wbuf = append(b, "\r\n"...)
}

func (c *conn) appendFieldBytes(name string, value []byte) {
	b := append(c.wbuf, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	c.wbuf = append(b, "\r\n"...)
}

func (c *conn) appendContentLength(n int64) {
	b := append(c.wbuf, "Content-Length: "...)
	b = strconv.AppendInt(b, n, 10)
	c.wbuf = append(b, "\r\n"...)
}

// endHead appends the empty line that ends the response head.
func (c *conn) endHead() { c.wbuf = append(c.wbuf, "\r\n"...) }

// writeError appends a complete error response with a short text body
// (none for HEAD). close forces the connection shut after it, as it must be
// whenever the request's framing is in doubt.
func (c *conn) writeError(status int, close bool, extra ...string) {
	if close {
		c.keep = false
	}
	c.acquireWbuf()
	c.appendResponseHead(status)
	for i := 0; i+1 < len(extra); i += 2 {
		c.appendField(extra[i], extra[i+1])
	}
	body := errorBodies[status]
	c.appendField("Content-Type", "text/plain; charset=utf-8")
	c.appendContentLength(int64(len(body)))
	c.endHead()
	if c.req.method != methodHead {
		c.wbuf = append(c.wbuf, body...)
		c.bodySent = int64(len(body))
	}
	c.status = status
}
