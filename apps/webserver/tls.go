package webserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// Certificate is a certificate chain and private key loaded from PEM
// files, which Reload loads again and swaps in atomically: handshakes
// under way keep the pair they started with, later ones get the new one.
// It is safe for concurrent use.
type Certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadCertificate loads the PEM certificate chain in certFile and the
// private key in keyFile, which must match it.
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload loads the files again. On error the certificate in use stays.
func (c *Certificate) Reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("webserver: certificate %s, key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cur.Store(&pair)
	return nil
}

// NotAfter is when the certificate in use expires.
func (c *Certificate) NotAfter() time.Time {
	if leaf := c.cur.Load().Leaf; leaf != nil {
		return leaf.NotAfter
	}
	return time.Time{}
}

// GetCertificate is for tls.Config.GetCertificate: the pair in use.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// TLSConfig returns a server configuration that presents c: TLS 1.2 and
// up, HTTP/1.1 offered by ALPN (the server speaks nothing else).
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: c.GetCertificate,
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
	}
}

// handshaker is a connection with a handshake to do first: *tls.Conn.
type handshaker interface {
	HandshakeContext(context.Context) error
}

// handshake completes a TLS connection's handshake before its first
// request, within HeaderTimeout of the accept; it reports false if the
// connection is to be closed. The connection counts as idle meanwhile (no
// request has begun), so Shutdown may cut it short.
func (c *conn) handshake(h handshaker) bool {
	c.nc.SetDeadline(c.headStart.Add(c.srv.cfg.HeaderTimeout))
	c.state.Store(stateIdle) // after the deadline: see fill
	if c.srv.shutting.Load() {
		return false
	}
	err := h.HandshakeContext(context.Background())
	c.state.Store(stateBusy)
	c.nc.SetWriteDeadline(time.Time{}) // see flush
	if err == nil {
		return true
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader[:]) {
		// A plain HTTP request on the HTTPS port: say so in plain HTTP,
		// as nginx and net/http do, rather than hang up in silence.
		rh.Conn.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
		if _, err := rh.Conn.Write(plainHTTPOnTLS); err == nil {
			lingerClose(rh.Conn)
		}
	}
	c.srv.cfg.ErrorLog.Debug("webserver: TLS handshake", "remote", c.nc.RemoteAddr(), "err", err)
	return false
}

// lingerClose half-closes nc and drops what the client still sends, for
// up to lingerTime, so that closing it with the rest of a request unread
// does not make the kernel reset the connection and destroy the response
// (see conn.closeWrite).
func lingerClose(nc net.Conn) {
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	nc.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
}

var plainHTTPOnTLS = func() []byte {
	const body = "400 Bad Request: plain HTTP on an HTTPS port\n"
	return []byte("HTTP/1.1 400 Bad Request\r\nServer: " + serverName +
		"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// looksLikeHTTP reports whether the first bytes of a connection are those
// of an HTTP/1 request rather than of a TLS record.
func looksLikeHTTP(b []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH"} {
		if string(b) == m {
			return true
		}
	}
	return false
}
