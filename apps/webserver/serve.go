package webserver

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"strconv"
	"syscall"
	"time"
)

// handle answers the parsed request in c.req, appending the response to
// c.wbuf (and writing it out early when the body is large). It returns an
// error only when the connection can no longer be used: a response was
// started that cannot be finished.
func (c *conn) handle() error {
	req := &c.req
	c.acquireWbuf()
	// Bodies are refused before anything else: a body the server cannot
	// skip leaves the connection's framing unknown.
	if req.hasTE {
		if req.teChunked {
			c.writeError(411, true) // a body of unknown length: ask for one with Content-Length
		} else {
			c.writeError(501, true) // RFC 9112 §6.1: an unknown transfer coding
		}
		return nil
	}
	if req.contentLength > c.srv.cfg.MaxBodyBytes {
		c.writeError(413, true)
		return nil
	}
	if req.minor >= 1 && (req.expectContinue || req.expectOther) {
		// RFC 9110 §10.1.1. A static server's answer never depends on a
		// request's content, so it never asks for it with a 100
		// (Continue): the final response goes out at once, and a client
		// waiting to send its content learns that it need not. Whether
		// the client then sends it anyway is its choice, so after a
		// request with content the connection cannot be reused and says
		// so. An HTTP/1.0 request's expectations are ignored, as the RFC
		// asks of 100-continue (Expect is HTTP/1.1's).
		if req.hasBody() {
			c.keep = false
		}
		if req.expectOther {
			c.writeError(417, false) // an expectation the server cannot meet
			return nil
		}
	}
	switch req.method {
	case methodUnknown:
		c.writeError(501, false)
		return nil
	case methodNotAllowed:
		c.writeError(405, false, "Allow", "GET, HEAD")
		return nil
	}
	name, grown, dirForm, perr := resolvePath(c.pathBuf, req.path)
	c.pathBuf = grown[:0]
	if perr != nil {
		c.writeError(perr.status, false)
		return nil
	}
	return c.serveName(string(name), dirForm)
}

// errChanged: the file being served is not what its stat said (it
// shrank, or the stat of the open file now differs from the one the
// response was to be built from), and nothing of the response has left
// yet. The request is served again from a fresh open (see serveName).
var errChanged = errors.New("webserver: the file changed while it was served")

// maxServeAttempts bounds how often one request is served again because
// its file changed under it; past it the answer is 503.
const maxServeAttempts = 3

// serveName serves the fs name: a file, or a directory's index file or
// listing. dirForm is whether the request path named a directory by its
// form (a trailing slash).
//
// A file that changes while it is served (truncated, or written to while
// the open-file cache holds it) is served either whole as it was or whole
// as it is now, never as a body cut short of the Content-Length already
// announced, in three ways. Kept contents (Config.ContentCache) are a copy
// as of a check and are served whole. A body read into the write buffer
// is read whole before anything of the response is written; if the read
// comes back short, the response is taken back and the request served
// again from a fresh open (errChanged). A body that leaves in pieces while
// it is read (sendBody: larger than the write buffer, or for a fromWriter)
// is sent from a cached file only after one Stat of the open file has
// confirmed the size and time the head announces; only a file that shrinks
// during that transfer, after the head has left, can still cut it short,
// and then the connection is closed before the announced length, which
// every client detects as an incomplete response (RFC 9112 §8), and the
// cache lets the file go.
func (c *conn) serveName(name string, dirForm bool) error {
	for attempt := 1; ; attempt++ {
		err := c.serveNameOnce(name, dirForm)
		if err != errChanged {
			return err
		}
		if attempt == maxServeAttempts {
			c.srv.cfg.ErrorLog.Warn("webserver: the file keeps changing while it is served; answering 503", "name", name)
			c.writeError(503, false, "Retry-After", "1")
			return nil
		}
	}
}

// serveNameOnce is one attempt of serveName's.
func (c *conn) serveNameOnce(name string, dirForm bool) error {
	var f fs.File
	var fi fs.FileInfo
	var err error
	if cache := c.srv.cache; cache != nil && dirForm && c.srv.cfg.IndexFile != "" {
		// A folder's URL: its index file, if it has one, comes from the
		// cache like any file (the folder need not be opened at all).
		e, f, _, err := cache.get(indexName(name, c.srv.cfg.IndexFile), cache.clock())
		if f != nil {
			f.Close() // not a regular file: the folder's own path decides
		}
		if err == nil && e != nil {
			defer cache.release(e)
			c.view = cache.view(e)
			err := c.serveFile(&c.view, e.fi, e.name)
			c.view = shared{}
			cache.forgetIfChanged(e, err)
			return err
		}
	}
	if cache := c.srv.cache; cache != nil {
		var e *cachedFile
		e, f, fi, err = cache.get(name, cache.clock())
		if err != nil {
			c.writeOpenError(err, name)
			return nil
		}
		if e != nil {
			defer cache.release(e)
			if dirForm {
				c.writeError(404, false)
				return nil
			}
			c.view = cache.view(e)
			err := c.serveFile(&c.view, e.fi, name)
			c.view = shared{} // let its contents go with the cache's
			cache.forgetIfChanged(e, err)
			return err
		}
	} else if f, err = c.srv.cfg.Root.Open(name); err == nil {
		if fi, err = f.Stat(); err != nil {
			f.Close()
		}
	}
	if err != nil {
		c.writeOpenError(err, name)
		return nil
	}
	defer f.Close()
	if fi.IsDir() {
		if !dirForm {
			// Relative links in the directory's page resolve against the
			// URL with a slash; send the client there (as nginx does), to
			// the path as resolved: the raw one may say "//host".
			loc := appendLocation(c.scratch[:0], name, c.req.query)
			c.scratch = loc
			c.writeError(301, false, "Location", string(loc))
			return nil
		}
		return c.serveDir(f, name)
	}
	if dirForm || !fi.Mode().IsRegular() {
		c.writeError(404, false)
		return nil
	}
	return c.serveFile(f, fi, name)
}

func (c *conn) serveDir(dir fs.File, name string) error {
	if idx := c.srv.cfg.IndexFile; idx != "" {
		iname := indexName(name, idx)
		if f, err := c.srv.cfg.Root.Open(iname); err == nil {
			defer f.Close()
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				return c.serveFile(f, fi, iname)
			}
		}
	}
	if c.srv.cfg.Listing {
		return c.serveListing(dir, name)
	}
	c.writeError(403, false)
	return nil
}

// indexName is the name of folder name's index file idx.
func indexName(name, idx string) string {
	if name == "." {
		return idx
	}
	return name + "/" + idx
}

// writeOpenError maps a file system error to a status: 404 for a name that
// does not exist or cannot be one (a file used as a directory, a name the
// FS refuses, a name whose symbolic links lead out of the root or round in
// a loop), 403 for one the server may not read, 503 with Retry-After when
// the server is out of a resource for the moment (open files, memory: a
// burst of requests past diskproc's limits), 500 for the rest. 503s and
// 500s are logged, 503s at most once a second.
func (c *conn) writeOpenError(err error, name string) {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrInvalid),
		errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ENAMETOOLONG):
		c.writeError(404, false)
	case errors.Is(err, syscall.EXDEV), errors.Is(err, syscall.ELOOP):
		// A sandboxed root refusing to follow a link out of it (diskproc,
		// like any openat2 with RESOLVE_BENEATH, says EXDEV; a link loop,
		// or a /proc-style link it will not follow, is ELOOP). Not the
		// server's failure, and not the client's to learn about: it is
		// answered as if the file did not exist, and logged only at debug
		// level, since a client can ask for it at any rate.
		c.srv.cfg.ErrorLog.Debug("webserver: open refused: the name leads out of the root", "name", name, "err", err)
		c.writeError(404, false)
	case errors.Is(err, fs.ErrPermission):
		c.writeError(403, false)
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE),
		errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.ENOMEM), errors.Is(err, syscall.EAGAIN):
		if c.srv.busyLog.allow(time.Now()) {
			c.srv.cfg.ErrorLog.Warn("webserver: out of a resource; answering 503", "name", name, "err", err)
		}
		c.writeError(503, false, "Retry-After", "1")
	default:
		c.srv.cfg.ErrorLog.Error("webserver: open", "name", name, "err", err)
		c.writeError(500, false)
	}
}

// serveFile sends a regular file, whole or in ranges, after evaluating the
// request's preconditions.
func (c *conn) serveFile(f fs.File, fi fs.FileInfo, name string) error {
	req := &c.req
	size, mod := fi.Size(), fi.ModTime()
	c.etagBuf = appendETag(c.etagBuf[:0], mod, size)
	etag := c.etagBuf
	modSec := mod.Truncate(time.Second) // HTTP dates have one-second precision
	if mod.IsZero() || mod.Unix() <= 0 {
		modSec = time.Time{} // an FS without times: send no Last-Modified
	}
	body := newFileBody(f)

	switch evalPreconditions(req, etag, modSec) {
	case notModified:
		c.appendResponseHead(304)
		c.appendValidators(etag, modSec)
		c.endHead()
		c.status = 304
		return nil
	case preconditionFailed:
		c.writeError(412, false)
		return nil
	}

	ctype := c.srv.types.lookup(name)
	result := rangeIgnore
	if req.method == methodGet && req.rangeCount == 1 && body.positional() && rangeApplies(req, etag, modSec) {
		c.rangeBuf, result = parseRanges(c.rangeBuf, req.rangeSpec, size)
	}
	switch {
	case result == rangeUnsatisfiable:
		c.scratch = append(append(c.scratch[:0], "bytes */"...), strconv.FormatInt(size, 10)...)
		c.writeError(416, false, "Content-Range", string(c.scratch))
		return nil
	case result == rangeSatisfiable && len(c.rangeBuf) > 1:
		return c.sendMultipart(body, size, etag, modSec, ctype, name)
	}

	start, length, status := int64(0), size, 200
	if result == rangeSatisfiable {
		r := c.rangeBuf[0]
		start, length, status = r.start, r.length, 206
	}
	mark, writes := len(c.wbuf), c.writes
	c.appendResponseHead(status)
	c.appendField("Content-Type", ctype)
	c.appendContentLength(length)
	if status == 206 {
		c.scratch = appendContentRange(c.scratch[:0], c.rangeBuf[0], size)
		c.appendFieldBytes("Content-Range", c.scratch)
	}
	c.appendValidators(etag, modSec)
	if body.positional() {
		c.appendField("Accept-Ranges", "bytes")
	}
	c.endHead()
	c.status = status
	if req.method == methodHead {
		return nil
	}
	return c.takeBack(c.sendBody(&body, start, length), mark, writes, name)
}

// takeBack handles the error of a response's body: if nothing of the
// response has been written yet (the connection has written nothing since
// writes, and the response begins at wbuf[mark]), the response is taken
// back, and a file that changed is served again (errChanged) while another
// failure is answered 500. Otherwise the response is cut and the error
// returned, which closes the connection.
func (c *conn) takeBack(err error, mark int, writes uint64, name string) error {
	if err == nil || c.writes != writes {
		return err
	}
	c.wbuf = c.wbuf[:mark]
	c.status, c.bodySent = 0, 0
	if err == errChanged || errors.Is(err, io.ErrUnexpectedEOF) {
		return errChanged
	}
	c.srv.cfg.ErrorLog.Error("webserver: read", "name", name, "err", err)
	c.writeError(500, false)
	return nil
}

// fromWriter is a connection that sends a head and then a reader's bytes
// itself, reading them straight into its own send buffers: appproc's
// TCPConn, whose WriteFrom reads a file from diskproc into the buffers it
// hands to netproc (one copy in the app instead of two, through the write
// buffer), several buffers at once.
type fromWriter interface {
	WriteFrom(head []byte, r io.Reader) (int64, error)
}

// fromWriterMin is the smallest body handed to a fromWriter even when it
// would fit in the write buffer: below it, the copy saved is worth less than
// sending the response with the ones pipelined before it.
const fromWriterMin = 16 << 10

func (c *conn) appendValidators(etag []byte, modSec time.Time) {
	c.appendFieldBytes("ETag", etag)
	if !modSec.IsZero() {
		b := append(c.wbuf, "Last-Modified: "...)
		b = appendHTTPDate(b, modSec)
		c.wbuf = append(b, "\r\n"...)
	}
}

// sendMultipart sends several ranges as multipart/byteranges (RFC 9110
// §14.6), with a Content-Length computed in advance so that the connection
// stays reusable.
func (c *conn) sendMultipart(body fileBody, size int64, etag []byte, modSec time.Time, ctype string, name string) error {
	var bnd [16]byte
	b := strconv.AppendUint(bnd[:0], rand.Uint64()|1<<63, 16) // always 16 digits
	boundary := bnd[:len(b)]
	var total int64
	total, c.scratch = multipartLength(c.scratch, c.rangeBuf, boundary, ctype, size)

	mark, writes := len(c.wbuf), c.writes
	c.appendResponseHead(206)
	c.wbuf = append(c.wbuf, "Content-Type: multipart/byteranges; boundary="...)
	c.wbuf = append(c.wbuf, boundary...)
	c.wbuf = append(c.wbuf, "\r\n"...)
	c.appendContentLength(total)
	c.appendValidators(etag, modSec)
	c.appendField("Accept-Ranges", "bytes")
	c.endHead()
	c.status = 206
	for _, r := range c.rangeBuf {
		if cap(c.wbuf)-len(c.wbuf) < 512+len(ctype) {
			if err := c.flush(); err != nil {
				return err
			}
		}
		c.wbuf = appendPartHeader(c.wbuf, boundary, ctype, r, size)
		if err := c.sendBody(&body, r.start, r.length); err != nil {
			return c.takeBack(err, mark, writes, name)
		}
	}
	c.wbuf = appendCloseDelimiter(c.wbuf, boundary)
	c.bodySent = total
	return nil
}

// sendBody sends length bytes of the file from start. A body that fits in
// the write buffer is read straight into it, so that a small response and
// its head (and the responses pipelined with it) go out in one write. A
// larger one from a kernel-backed file on a connection that can splice
// (io.ReaderFrom; on kernel sockets, sendfile) is handed to the connection;
// so is a large one on a connection that reads a file into its own send
// buffers (fromWriter: saturn's), with the buffered head; anything else is
// copied through the write buffer.
func (c *conn) sendBody(body *fileBody, start, length int64) error {
	free := int64(cap(c.wbuf) - len(c.wbuf))
	fw, isFW := c.nc.(fromWriter)
	isFW = isFW && body.at != nil && (length > free || length >= fromWriterMin)
	if (isFW || length > free) && !body.inMemory(start, length) {
		// The body leaves in pieces while it is read: make sure first
		// that the size announced is still the file's (see serveName).
		if err := body.confirm(); err != nil {
			return err
		}
	}
	if isFW {
		c.writes++
		c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
		var src io.Reader
		if body.inMemory(start, length) {
			c.memReader.Reset(body.mem[start : start+length])
			src = &c.memReader
		} else {
			src = io.NewSectionReader(body.at, start, length)
		}
		n, err := fw.WriteFrom(c.wbuf, src)
		c.nc.SetWriteDeadline(time.Time{}) // see flush
		c.wbuf = c.wbuf[:0]
		c.bodySent += n
		if err == nil && n < length {
			err = io.ErrUnexpectedEOF // the file shrank after its Stat
		}
		return err
	}
	if length <= free {
		n := len(c.wbuf)
		c.wbuf = c.wbuf[:n+int(length)]
		if err := body.readAt(c.wbuf[n:], start); err != nil {
			c.wbuf = c.wbuf[:n]
			return err
		}
		c.bodySent += length
		return nil
	}
	if rf, ok := c.nc.(io.ReaderFrom); ok && body.spliceable() {
		if err := c.flush(); err != nil {
			return err
		}
		if start != body.pos { // a fresh file is at 0: save the lseek
			if _, err := body.seeker.Seek(start, io.SeekStart); err != nil {
				return err
			}
		}
		// flush set the write deadline only if it had bytes to write.
		c.writes++
		c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
		c.limited = io.LimitedReader{R: body.f, N: length}
		n, err := rf.ReadFrom(&c.limited)
		c.nc.SetWriteDeadline(time.Time{}) // see flush
		c.limited.R = nil
		body.pos = -1 // the splice moved the offset; Seek again if read again
		c.bodySent += n
		if err == nil && n < length {
			err = io.ErrUnexpectedEOF // the file shrank after its Stat
		}
		return err
	}
	for length > 0 {
		free := int64(cap(c.wbuf) - len(c.wbuf))
		if free == 0 {
			if err := c.flush(); err != nil {
				return err
			}
			continue
		}
		k := min(length, free)
		n := len(c.wbuf)
		c.wbuf = c.wbuf[:n+int(k)]
		if err := body.readAt(c.wbuf[n:], start); err != nil {
			c.wbuf = c.wbuf[:n]
			return err
		}
		start += k
		length -= k
		c.bodySent += k
	}
	return nil
}
