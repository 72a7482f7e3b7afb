package main

import (
	"context"
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
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"saturn/appproc"
	"saturn/apps/loadgen"
	"saturn/apps/webserver"
)

func appCommand() *cli.Command {
	return &cli.Command{
		Name:  "app",
		Usage: "run one of saturn's own apps (the web server, the load generator)",
		Subcommands: []*cli.Command{
			webserverCommand(),
			loadgenCommand(),
		},
	}
}

func webserverCommand() *cli.Command {
	return &cli.Command{
		Name:  "webserver",
		Usage: "serve a folder beneath diskproc's root over HTTP/1.1, through netproc",
		Description: "A static-file server whose every file read goes through diskproc and every byte\n" +
			"on the wire through netproc. Run it under the supervisor (it is in the default\n" +
			"configuration) or `saturn attach --name web -- saturn app webserver ...`; started\n" +
			"by hand it attaches to the instance itself. SIGTERM finishes the requests in\n" +
			"flight, then exits; restarted by the supervisor, it takes its listener back.",
		Flags: withInstance(
			&cli.StringFlag{Name: "root", Value: "/", Usage: "the `FOLDER` to serve, inside diskproc's root (\"/\" is the root itself)"},
			&cli.StringFlag{Name: "listen", Value: ":8080", Usage: "the `ADDRESS` to listen on"},
			&cli.StringFlag{Name: "index", Value: "index.html", Usage: "the file served for a folder (\"\" for none)"},
			&cli.BoolFlag{Name: "listing", Value: true, Usage: "list a folder that has no index file"},
			&cli.StringFlag{Name: "access-log", Usage: "write an access log to `FILE` (\"-\": standard output)"},
			&cli.DurationFlag{Name: "header-timeout", Value: webserver.DefaultHeaderTimeout, Usage: "how long a client may take to send a request's head"},
			&cli.DurationFlag{Name: "idle-timeout", Value: webserver.DefaultIdleTimeout, Usage: "how long a kept-alive connection may stay idle"},
			&cli.IntFlag{Name: "max-header-bytes", Value: webserver.DefaultMaxHeaderBytes, Usage: "the largest request head accepted (431 past it)"},
			&cli.IntFlag{Name: "max-headers", Value: webserver.DefaultMaxHeaderCount, Usage: "the most header fields accepted (431 past it)"},
			&cli.DurationFlag{Name: "open-cache", Value: time.Second, Usage: "keep files open between requests, checking them again after this long (0: open every time)"},
			&cli.Int64Flag{Name: "content-cache", Value: 32 << 20, Usage: "with --open-cache, also keep the contents of files of at most 1 MiB in memory, up to this many `BYTES` in all, read again at every check (0: read every request's bytes through diskproc)"},
		),
		Action: runWebserver,
	}
}

func runWebserver(c *cli.Context) error {
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
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
	}
	switch p := c.String("access-log"); p {
	case "":
	case "-":
		cfg.AccessLog = os.Stdout
	default:
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.AccessLog = f
	}

	ln, err := app.ListenTCP("tcp", c.String("listen"), appproc.ListenOptions{})
	if err != nil {
		return err
	}
	log.Info("serving", "root", c.String("root"), "listen", ln.Addr().String(), "adopted", ln.Adopted())
	if err := app.Ready(ctx, map[string]string{"listen": ln.Addr().String(), "root": c.String("root")}); err != nil {
		log.Warn("could not report the listening address", "err", err)
	}
	err = webserver.Serve(ctx, ln, cfg)
	log.Info("stopped", "err", err)
	return err
}

// attachApp attaches to the instance: through the supervisor's link when
// it started us, else by the control socket of the instance the flags name.
func attachApp(ctx context.Context, c *cli.Context, name string, deferReady bool) (*appproc.App, error) {
	opts := appproc.Options{DeferReady: deferReady}
	if os.Getenv("SATURN_CONTROL_FD") == "" {
		p, err := paths(c)
		if err != nil {
			return nil, err
		}
		opts.StateDir, opts.Instance = p.StateDir, p.Instance
		opts.Name = fmt.Sprintf("%s-%d", name, os.Getpid())
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return appproc.Attach(actx, opts)
}

func loadgenCommand() *cli.Command {
	return &cli.Command{
		Name:      "loadgen",
		Usage:     "drive an HTTP server with load and report throughput and latency percentiles",
		ArgsUsage: "URL",
		Description: "Closed loop by default (like wrk: each connection sends its next request when\n" +
			"the last response ends); with --rate, an open loop at that many requests per\n" +
			"second whose latencies count from each request's scheduled time, so a stalled\n" +
			"server is not hidden (like wrk2). Its connections are active opens through\n" +
			"netproc (attaching to the instance the flags name), or plain kernel sockets\n" +
			"with --kernel.",
		Flags: withInstance(
			&cli.IntFlag{Name: "connections", Aliases: []string{"c"}, Value: 64, Usage: "connections kept open"},
			&cli.DurationFlag{Name: "duration", Aliases: []string{"d"}, Usage: "how long to run (default 10s unless --requests)"},
			&cli.Int64Flag{Name: "requests", Aliases: []string{"n"}, Usage: "stop after this many responses"},
			&cli.Float64Flag{Name: "rate", Aliases: []string{"R"}, Usage: "requests per second, open loop (0: closed loop)"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "a request slower than this counts as a timeout"},
			&cli.BoolFlag{Name: "head", Usage: "send HEAD instead of GET"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.BoolFlag{Name: "kernel", Usage: "use the kernel's sockets directly, not saturn's"},
		),
		Action: runLoadgen,
	}
}

func runLoadgen(c *cli.Context) error {
	url, err := oneArg(c, "URL")
	if err != nil {
		return err
	}
	if c.IsSet("duration") && c.IsSet("requests") {
		return errors.New("loadgen: give --duration or --requests, not both")
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := loadgen.Config{
		URL: url, Connections: c.Int("connections"), Duration: c.Duration("duration"),
		Requests: c.Int64("requests"), Rate: c.Float64("rate"), Timeout: c.Duration("timeout"),
	}
	if c.Bool("head") {
		cfg.Method = "HEAD"
	}
	if c.Bool("kernel") {
		cfg.Dial = (&net.Dialer{}).DialContext
	} else {
		app, err := attachApp(ctx, c, "loadgen", false)
		if err != nil {
			return fmt.Errorf("%w (use --kernel to run without saturn)", err)
		}
		defer app.Close()
		cfg.Dial = app.Dial
	}
	if isTerminal(os.Stderr) && !c.Bool("json") {
		cfg.Progress = progressBar(os.Stderr)
	}
	report, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		b, err := report.JSON()
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "%s\n", b)
		return nil
	}
	fmt.Fprint(c.App.Writer, report.String())
	return nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressBar draws a one-line bar on w, rewritten in place.
func progressBar(w io.Writer) func(loadgen.Progress) {
	return func(p loadgen.Progress) {
		const width = 30
		filled := int(p.Fraction * width)
		filled = min(max(filled, 0), width)
		fmt.Fprintf(w, "\r[%s%s] %5.1f%%  %s  %d responses  %d errors ",
			strings.Repeat("=", filled), strings.Repeat(" ", width-filled), 100*p.Fraction,
			p.Elapsed.Round(100*time.Millisecond), p.Responses, p.Errors)
		if p.Final {
			fmt.Fprintln(w)
		}
	}
}
