package webserver

import (
	"cmp"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"time"
)

// Config says what a Server serves and within which limits. The zero value
// of every field but Root is usable: a zero limit or timeout means the
// default written beside it, not "unlimited".
type Config struct {
	// Root is the tree served. In saturn it is diskproc's file system; any
	// fs.FS works. Files are read through it only: with io.ReaderAt or
	// io.Seeker when the fs.File offers them, sequentially otherwise.
	Root fs.FS

	// IndexFile is the file served for a directory, "index.html" as a rule.
	// Empty means no index file.
	IndexFile string
	// Listing makes a directory without an index file answer with an HTML
	// listing of its entries instead of 403 Forbidden.
	Listing bool

	// MaxHeaderBytes caps a request head (request line and field lines);
	// a longer one is answered 431, or 414 when the request line alone is
	// too long. Default 16 KiB.
	MaxHeaderBytes int
	// MaxHeaderCount caps the number of field lines; more is answered 431.
	// Default 100.
	MaxHeaderCount int
	// MaxBodyBytes is the largest request body (declared by Content-Length)
	// that the server reads and discards to keep a connection; a larger one
	// is answered 413 and the connection closed. Default 64 KiB.
	MaxBodyBytes int64

	// HeaderTimeout bounds the time from a request's first byte (from the
	// accept, for a connection's first request) to the end of its head, so
	// that a client sending slowly cannot hold a connection. Default 10s.
	HeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection. Default 60s.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to the client, so that one that stops
	// reading is dropped. Default 60s.
	WriteTimeout time.Duration
	// ShutdownTimeout bounds the graceful part of the package-level Serve's
	// shutdown; Server.Shutdown takes a context instead. Default 30s.
	ShutdownTimeout time.Duration
	// ShutdownGrace is how long Shutdown lets an idle keep-alive
	// connection bring one more request, which is answered with
	// Connection: close, before it closes the connection. A client that
	// sent its next request as the shutdown began (a load generator, a
	// browser reusing its connection) is answered rather than cut off;
	// it reconnects, to the next incarnation when the supervisor is
	// restarting the server. Default 250ms; negative: none, idle
	// connections close at once.
	ShutdownGrace time.Duration

	// AccessLog, when set, receives one line per response in
	// AccessLogFormat. Writes are serialised by the server, one Write per
	// line; wrap a file in something buffered if that is too many.
	AccessLog io.Writer
	// AccessLogFormat is the access log's format: LogCombined (the zero
	// value) or LogCommon.
	AccessLogFormat LogFormat
	// ErrorLog receives accept errors and file errors other than "not
	// found". Default: discarded.
	ErrorLog *slog.Logger

	// ContentTypes adds to or overrides the built-in table of media types
	// by file extension (".ext" or "ext", matched without case).
	ContentTypes map[string]string

	// OpenFileCache, when positive, keeps regular files open between
	// requests, as nginx's open_file_cache does: a cached file is served
	// with ReadAt alone, and its metadata is checked again (one Stat)
	// once it is older than this. Within that time a file changed on disk
	// may be answered with its old size and validators, but its body is
	// always whole: as it was, or, when the file shrank, as it is now (see
	// "Files that change" in the package doc). It pays where
	// opening is dear (in saturn, an open, a stat and a close are three
	// round trips to diskproc); files that are not io.ReaderAt are never
	// cached, and cached files are not spliced with sendfile. Default: off.
	OpenFileCache time.Duration
	// OpenFileCacheSize caps the files kept open. Default 1024.
	OpenFileCacheSize int
	// ContentCache, when positive and OpenFileCache is on, makes the cache
	// keep the contents of the files it holds open too, up to this many
	// bytes in all (least recently used dropped first), for files of at
	// most ContentCacheFileMax bytes: a request for one is answered from
	// memory, without a read. The contents are read through Root when the
	// file is opened and again at every check (OpenFileCache), so a response
	// is never built from contents older than that. It pays where a read is
	// dear (in saturn, a round trip to diskproc and a copy out of its
	// buffer). Default: off.
	ContentCache int64
	// ContentCacheFileMax caps the size of a file whose contents are kept.
	// Default 1 MiB (and at most ContentCache).
	ContentCacheFileMax int64
}

// Defaults applied to zero fields.
const (
	DefaultMaxHeaderBytes  = 16 << 10
	DefaultMaxHeaderCount  = 100
	DefaultMaxBodyBytes    = 64 << 10
	DefaultHeaderTimeout   = 10 * time.Second
	DefaultIdleTimeout     = 60 * time.Second
	DefaultWriteTimeout    = 60 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultShutdownGrace   = 250 * time.Millisecond
	// DefaultOpenFileCacheSize is OpenFileCacheSize's default.
	DefaultOpenFileCacheSize = 1024
	// DefaultContentCacheFileMax is ContentCacheFileMax's default.
	DefaultContentCacheFileMax = 1 << 20
)

// minHeaderBytes keeps MaxHeaderBytes above what any real request needs.
const minHeaderBytes = 512

// ErrNoRoot is returned by New for a Config without Root.
var ErrNoRoot = errors.New("webserver: Config.Root is nil")

// withDefaults returns c with every zero limit replaced by its default, and
// every negative one too where it must be positive (cmp.Or(max(v, 0), d)).
func (c Config) withDefaults() (Config, error) {
	if c.Root == nil {
		return c, ErrNoRoot
	}
	c.MaxHeaderBytes = cmp.Or(max(c.MaxHeaderBytes, 0), DefaultMaxHeaderBytes)
	c.MaxHeaderBytes = max(c.MaxHeaderBytes, minHeaderBytes)
	c.MaxHeaderCount = cmp.Or(max(c.MaxHeaderCount, 0), DefaultMaxHeaderCount)
	c.MaxBodyBytes = cmp.Or(max(c.MaxBodyBytes, 0), DefaultMaxBodyBytes)
	c.HeaderTimeout = cmp.Or(max(c.HeaderTimeout, 0), DefaultHeaderTimeout)
	c.IdleTimeout = cmp.Or(max(c.IdleTimeout, 0), DefaultIdleTimeout)
	c.WriteTimeout = cmp.Or(max(c.WriteTimeout, 0), DefaultWriteTimeout)
	c.ShutdownTimeout = cmp.Or(max(c.ShutdownTimeout, 0), DefaultShutdownTimeout)
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, DefaultShutdownGrace)
	if c.ErrorLog == nil {
		c.ErrorLog = slog.New(slog.DiscardHandler)
	}
	c.OpenFileCacheSize = cmp.Or(max(c.OpenFileCacheSize, 0), DefaultOpenFileCacheSize)
	c.ContentCacheFileMax = cmp.Or(max(c.ContentCacheFileMax, 0), DefaultContentCacheFileMax)
	return c, nil
}
