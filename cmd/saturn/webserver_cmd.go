package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"saturn/appproc"
	"saturn/apps/webserver"
)

func webserverCommand() *cli.Command {
	return &cli.Command{
		Name:  "webserver",
		Usage: "serve a folder beneath diskproc's root over HTTP/1.1 and HTTPS, through netproc",
		Description: "A static-file server whose every file read goes through diskproc and every byte\n" +
			"on the wire through netproc. Run it under the supervisor (it is in the default\n" +
			"configuration) or `saturn attach --name web -- saturn app webserver ...`; started\n" +
			"by hand it attaches to the instance itself. SIGTERM finishes the requests in\n" +
			"flight, then exits; restarted by the supervisor, it takes its listener back.\n\n" +
			"HTTPS: give --tls-cert and --tls-key (PEM files, read by the app's own user) and\n" +
			"it listens on --tls-listen as well; --listen \"\" leaves plain HTTP off. SIGHUP\n" +
			"(`saturn kill web --signal HUP`) reads the certificate and key again, keeping the\n" +
			"old pair if the new one is bad, and reopens the access log, for logrotate.",
		Flags: withInstance(
			&cli.StringFlag{Name: "root", Value: "/", Usage: "the `FOLDER` to serve, inside diskproc's root (\"/\" is the root itself)"},
			&cli.StringFlag{Name: "listen", Value: ":8080", Usage: "the `ADDRESS` to listen on for plain HTTP (\"\": none, with --tls-cert)"},
			&cli.StringFlag{Name: "tls-listen", Value: ":8443", Usage: "the `ADDRESS` to listen on for HTTPS, with --tls-cert and --tls-key"},
			&cli.StringFlag{Name: "tls-cert", Usage: "serve HTTPS with the PEM certificate chain in `FILE` (read again on SIGHUP)"},
			&cli.StringFlag{Name: "tls-key", Usage: "the PEM private key of --tls-cert, in `FILE` (read again on SIGHUP)"},
			&cli.StringFlag{Name: "index", Value: "index.html", Usage: "the file served for a folder (\"\" for none)"},
			&cli.BoolFlag{Name: "listing", Value: true, Usage: "list a folder that has no index file"},
			&cli.StringFlag{Name: "access-log", Usage: "write an access log to `FILE` (\"-\": standard output), reopened on SIGHUP"},
			&cli.StringFlag{Name: "access-log-format", Value: "combined", Usage: "the access log's `FORMAT`: combined (nginx's default) or common"},
			&cli.DurationFlag{Name: "header-timeout", Value: webserver.DefaultHeaderTimeout, Usage: "how long a client may take to send a request's head (and a TLS handshake)"},
			&cli.DurationFlag{Name: "idle-timeout", Value: webserver.DefaultIdleTimeout, Usage: "how long a kept-alive connection may stay idle"},
			&cli.IntFlag{Name: "max-header-bytes", Value: webserver.DefaultMaxHeaderBytes, Usage: "the largest request head accepted (431 past it)"},
			&cli.IntFlag{Name: "max-headers", Value: webserver.DefaultMaxHeaderCount, Usage: "the most header fields accepted (431 past it)"},
			&cli.DurationFlag{Name: "open-cache", Value: time.Second, Usage: "keep files open between requests, checking them again after this long (0: open every time)"},
			&cli.Int64Flag{Name: "content-cache", Value: 32 << 20, Usage: "with --open-cache, also keep the contents of files of at most 1 MiB in memory, up to this many `BYTES` in all, read again at every check (0: read every request's bytes through diskproc)"},
		),
		Action: runWebserver,
	}
}

// webserverTLS checks the TLS flags and loads the certificate, before
// anything else, so that a bad one fails the start with the reason; nil
// without --tls-cert.
func webserverTLS(c *cli.Context) (*webserver.Certificate, error) {
	certFile, keyFile := c.String("tls-cert"), c.String("tls-key")
	switch {
	case certFile == "" && keyFile == "":
		if c.IsSet("tls-listen") {
			return nil, errors.New("webserver: --tls-listen needs --tls-cert and --tls-key")
		}
		return nil, nil
	case certFile == "":
		return nil, errors.New("webserver: --tls-key needs --tls-cert")
	case keyFile == "":
		return nil, errors.New("webserver: --tls-cert needs --tls-key")
	case c.String("tls-listen") == "":
		return nil, errors.New("webserver: --tls-listen is empty: give the address to listen on for HTTPS")
	}
	return webserver.LoadCertificate(certFile, keyFile)
}

func runWebserver(c *cli.Context) error {
	// Every flag is checked before attaching: a bad one is an error at
	// start, not a listener half set up.
	format, err := webserver.ParseLogFormat(c.String("access-log-format"))
	if err != nil {
		return fmt.Errorf("--access-log-format: %w", err)
	}
	cert, err := webserverTLS(c)
	if err != nil {
		return err
	}
	if c.String("listen") == "" && cert == nil {
		return errors.New("webserver: --listen is empty and there is no --tls-cert: nothing to listen on")
	}
	var accessLog io.Writer
	var logFile *reopenFile
	switch p := c.String("access-log"); p {
	case "":
	case "-":
		accessLog = os.Stdout
	default:
		if logFile, err = openReopenFile(p); err != nil {
			return fmt.Errorf("--access-log: %w", err)
		}
		defer logFile.Close()
		accessLog = logFile
	}

	// SIGTERM (the supervisor's stop, restart or upgrade) or SIGINT ends
	// ctx, and from then on closing a listener leaves it to the next
	// incarnation (appproc.Stopping).
	ctx := appproc.StopContext(c.Context)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("app", "webserver")
	app, err := attachApp(ctx, c, "web", true)
	if err != nil {
		return err
	}
	defer app.Close()

	files, err := app.FS()
	if err != nil {
		return err
	}
	var root fs.FS = files
	if dir := strings.Trim(path.Clean("/"+c.String("root")), "/"); dir != "" {
		if root, err = fs.Sub(files, dir); err != nil {
			return fmt.Errorf("--root %q: %w", c.String("root"), err)
		}
	}
	cfg := webserver.Config{
		Root: root, IndexFile: c.String("index"), Listing: c.Bool("listing"),
		HeaderTimeout: c.Duration("header-timeout"), IdleTimeout: c.Duration("idle-timeout"),
		MaxHeaderBytes: c.Int("max-header-bytes"), MaxHeaderCount: c.Int("max-headers"),
		ErrorLog: log, OpenFileCache: c.Duration("open-cache"), ContentCache: c.Int64("content-cache"),
		AccessLog: accessLog, AccessLogFormat: format,
	}

	var lns []net.Listener
	info := map[string]string{"root": c.String("root")}
	adopted := false
	if addr := c.String("listen"); addr != "" {
		ln, err := app.ListenTCP("tcp", addr, appproc.ListenOptions{})
		if err != nil {
			return err
		}
		lns = append(lns, ln)
		info["listen"] = ln.Addr().String()
		adopted = ln.Adopted()
	}
	if cert != nil {
		ln, err := app.ListenTCP("tcp", c.String("tls-listen"), appproc.ListenOptions{})
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("--tls-listen: %w", err)
		}
		lns = append(lns, tls.NewListener(ln, cert.TLSConfig()))
		info["tls_listen"] = ln.Addr().String()
		log.Info("HTTPS", "listen", ln.Addr().String(), "cert", c.String("tls-cert"), "not_after", cert.NotAfter())
		warnExpired(log, cert)
	}
	log.Info("serving", "root", c.String("root"), "listen", info["listen"], "tls_listen", info["tls_listen"], "adopted", adopted)
	if err := app.Ready(ctx, info); err != nil {
		log.Warn("could not report the listening address", "err", err)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reloadWebserver(log, cert, logFile)
			}
		}
	}()

	err = webserver.ServeListeners(ctx, cfg, lns...)
	log.Info("stopped", "err", err)
	return err
}

// reloadWebserver is SIGHUP: the access log reopened, then the
// certificate read again (the old one stays if the new one cannot be
// loaded). In that order, so that once the new certificate is presented
// every line goes to the new log.
func reloadWebserver(log *slog.Logger, cert *webserver.Certificate, logFile *reopenFile) {
	if logFile != nil {
		if err := logFile.Reopen(); err != nil {
			log.Error("SIGHUP: access log not reopened; writing to the old file", "err", err)
		} else {
			log.Info("SIGHUP: access log reopened", "path", logFile.path)
		}
	}
	if cert != nil {
		if err := cert.Reload(); err != nil {
			log.Error("SIGHUP: certificate not reloaded; the old one stays in use", "err", err)
		} else {
			log.Info("SIGHUP: certificate reloaded", "not_after", cert.NotAfter())
			warnExpired(log, cert)
		}
	}
}

// warnExpired says so when the certificate is out of its validity: it is
// served all the same, as nginx does, but clients will refuse it.
func warnExpired(log *slog.Logger, cert *webserver.Certificate) {
	if na := cert.NotAfter(); !na.IsZero() && time.Now().After(na) {
		log.Warn("the TLS certificate has expired; clients will refuse it", "not_after", na)
	}
}

// reopenFile is a file opened for appending that Reopen opens again by
// its name: after logrotate has moved it, writes go to a new file. It is
// safe for concurrent use.
type reopenFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openReopenFile(path string) (*reopenFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &reopenFile{path: path, f: f}, nil
}

func (r *reopenFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Write(p)
}

// Reopen opens the path again; on error the old file stays.
func (r *reopenFile) Reopen() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	r.mu.Lock()
	old := r.f
	r.f = f
	r.mu.Unlock()
	return old.Close()
}

func (r *reopenFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Close()
}
