package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"saturn/appproc"
	"saturn/apps/loadgen"
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
			&cli.StringFlag{Name: "report", Usage: "also write the report as a self-contained HTML page to `FILE` (latency by percentile, throughput and latency over time)"},
			&cli.BoolFlag{Name: "kernel", Usage: "use the kernel's sockets directly, not saturn's"},
		),
		Action: runLoadgen,
	}
}

func runLoadgen(c *cli.Context) (err error) {
	url, err := oneArg(c, "URL")
	if err != nil {
		return err
	}
	if c.IsSet("duration") && c.IsSet("requests") {
		return errors.New("loadgen: give --duration or --requests, not both")
	}
	// The page's file is made before the run, so that a path that cannot
	// be written fails now rather than after the load.
	var page *os.File
	if name := c.String("report"); name != "" {
		if page, err = os.Create(name); err != nil {
			return fmt.Errorf("loadgen: --report: %w", err)
		}
		written := false
		defer func() {
			page.Close()
			if !written { // no run, no page: leave no empty file behind
				os.Remove(name)
			}
		}()
		defer func() { written = err == nil }()
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
	if isTerminal(os.Stderr) {
		cfg.Progress = progressLine(os.Stderr)
	}
	report, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if page != nil {
		if err := report.WriteHTML(page); err != nil {
			return fmt.Errorf("loadgen: --report: %w", err)
		}
		if err := page.Close(); err != nil {
			return fmt.Errorf("loadgen: --report: %w", err)
		}
		defer fmt.Fprintf(os.Stderr, "loadgen: report written to %s\n", page.Name()) // after the report
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

// progressLine draws the run's progress on the terminal w as one line,
// rewritten in place (carriage return, then erase to the end of the line):
// a bar, elapsed time, requests, the current rate and errors. The last
// call leaves the line, with the run's mean rate, and moves on.
func progressLine(w io.Writer) func(loadgen.Progress) {
	return func(p loadgen.Progress) {
		const width = 20
		filled := int(p.Fraction * width)
		filled = min(max(filled, 0), width)
		rate := "req/s now"
		if p.Final {
			rate = "req/s"
		}
		fmt.Fprintf(w, "\r\x1b[K[%s%s] %3.0f%%  %6s  %d requests  %.0f %s  %d errors",
			strings.Repeat("=", filled), strings.Repeat(" ", width-filled), 100*p.Fraction,
			p.Elapsed.Round(100*time.Millisecond), p.Responses, p.Rate, rate, p.Errors)
		if p.Final {
			fmt.Fprintln(w)
		}
	}
}
