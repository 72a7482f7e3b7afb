// Package webserver is saturn's static-file HTTP/1.1 server, as a library.
//
// It serves the files of an io/fs.FS over any net.Listener: in saturn the
// listener and its connections come from appproc (their bytes travel over
// rings to netproc) and the FS is diskproc's, but the package knows only
// Go's interfaces, so kernel sockets and os.DirFS work the same.
//
// # What it speaks
//
// HTTP/1.1 and 1.0 (RFC 9110, RFC 9112): keep-alive and pipelining (the
// responses to requests that arrive together leave together, in order, in
// one write), GET and HEAD, single and multiple byte ranges (the latter as
// multipart/byteranges) with If-Range, the conditional requests If-Match,
// If-None-Match, If-Modified-Since and If-Unmodified-Since against a strong
// ETag and Last-Modified, Content-Type by file extension, and for a
// directory an index file, an HTML listing or 403, as configured.
// "Expect: 100-continue" (RFC 9110 §10.1.1) is answered at once with the
// final status, never a 100 (Continue), since a static server has no use
// for a request's content; after a request that has content the connection
// is closed, since the client may or may not send it. Other expectations
// are answered 417. HTTP/1.0 requests' expectations are ignored.
//
// Paths are percent-decoded and then resolved: a ".." that would climb
// above the root, encoded or not, is answered 400. Other refusals: 405 for
// the methods a static server does not do, 501 for unknown methods and
// transfer codings, 505 for HTTP major versions other than 1, 411 for a
// chunked request body, 413 for a body over Config.MaxBodyBytes, 414 and 431
// for heads over Config.MaxHeaderBytes or Config.MaxHeaderCount, 408 for a
// head not received within Config.HeaderTimeout.
//
// # How it is built, and why
//
// The server has its own lean HTTP/1.1 path rather than building on
// net/http, because measurement said so: with wrk on loopback sockets
// (bench/webserver-kernel.sh, 64 connections, medians of 5 runs on a shared
// 2-core machine) it served a 1 KiB file at about 2x the rate of net/http's
// FileServer, and a 100 KiB file at about 1.2x (both use sendfile there).
// net/http over an io/fs.FS, the constraint saturn works under, was no
// faster than plain FileServer for 1 KiB and half as fast for 100 KiB. The
// gain comes mostly from allocating almost nothing per request (6 small
// allocations, all inside os.DirFS, for a 1 KiB file) and from answering
// pipelined requests in one write. One goroutine serves each
// connection and owns all of its state: a small read buffer kept for the
// connection's life, a write buffer borrowed from a pool only while a
// response is pending, and scratch space reused from request to request. The
// request parser (request.go) works on the buffered head in place and
// copies nothing.
//
// Files are read through the FS only. A small body is read straight into
// the write buffer with io.ReaderAt, so head and body (and any pipelined
// responses) leave in one write. A large body from a kernel-backed file is
// handed to the connection's io.ReadFrom when it has one (sendfile, on
// kernel sockets); one on a connection that reads a file into its own send
// buffers (appproc's TCPConn, through its WriteFrom method) is handed to it
// with the buffered head, so that the bytes are copied once in the app, from
// diskproc's buffer into netproc's; otherwise it is copied through the
// write buffer.
//
// Config.OpenFileCache keeps files open between requests, and
// Config.ContentCache their contents as well, read again at every check of
// the open-file cache, so that what is served is never older than its
// validity: in saturn a hit then costs no round trip to diskproc at all.
//
// # HTTPS
//
// HTTPS is the same server over crypto/tls: give Serve a listener made by
// tls.NewListener with a tls.Config from Certificate.TLSConfig (or any
// other). Each accepted *tls.Conn does its handshake on the connection's
// goroutine before its first request, within HeaderTimeout; a client that
// speaks plain HTTP to it is answered 400. Certificate.Reload swaps the
// certificate for the handshakes that follow (saturn's app does it on
// SIGHUP). Bodies are encrypted through the write buffer: no sendfile and
// no WriteFrom.
//
// A TLS connection does not park while idle, as a plain one on appproc's
// connections does (giving back its goroutine and read buffer): crypto/tls
// reads ahead of what it hands out and keeps records it has decrypted but
// not yet returned, so the underlying connection's readiness says nothing
// about whether a Read would block. An idle keep-alive TLS connection
// therefore keeps its goroutine and its read buffer, and crypto/tls's own
// buffers, for as long as IdleTimeout allows.
//
// # Files that change
//
// A file truncated, rewritten, replaced or deleted while it is served, or
// while the open-file cache holds it, is served whole as it was or whole as
// it is now, never as a body cut short of the Content-Length announced.
// A replaced or deleted file that is still open is the old file, whole.
// Kept contents are a copy, served whole. Otherwise a short read is
// noticed before anything of the response has left whenever the body is
// read whole into the write buffer (64 KiB) before it is written: the
// response is taken back and the request served again from a fresh open
// and stat, at most three times (then 503). A body that leaves while it is
// read (one larger than the write buffer, or of 16 KiB and more on a
// connection with WriteFrom, as saturn's are) is sent from a cached file
// only after a Stat of the open file has confirmed the size in the head:
// one more round trip to diskproc for such a file when its contents are not
// kept. Only a file that shrinks during such a transfer, after its head
// has left, cannot be answered whole; the connection is then closed short of the announced
// length, which clients report as an incomplete response (RFC 9112 §8),
// and the cache drops the file. A small file rewritten in place to the
// same size may be served as it is now under its old ETag until the cache
// checks it again; a write racing with a read can mix old and new bytes,
// as with any server that reads a file others write in place (replace
// files by renaming instead).
//
// # Shutting down
//
// Server.Shutdown closes the listeners, closes idle connections, lets busy
// ones finish the request they are on (answering it with Connection:
// close), and waits; the package-level Serve does this when its context
// ends, which is how an app answers SIGTERM.
package webserver
