package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"saturn/configs"
	"saturn/proto"
	"saturn/supervisor"
)

const readyFDEnv = "SATURN_READY_FD"

func supervisorCommand() *cli.Command {
	return &cli.Command{
		Name:  "supervisor",
		Usage: "start or stop an instance's supervisor",
		Subcommands: []*cli.Command{
			{
				Name:  "start",
				Usage: "start the instance: netproc, diskproc, then the configured apps",
				Description: "Runs in the foreground, logging to standard error, until SIGINT or SIGTERM or\n" +
					"`saturn supervisor stop`. With --detach it runs in the background instead and\n" +
					"returns once every component is ready, or exits non-zero with the reason.\n" +
					"Without --config it reads /etc/saturn/INSTANCE.toml ($SATURN_CONFIG_DIR instead\n" +
					"of /etc/saturn) if that file exists, else the default configuration built into\n" +
					"saturn (`saturn config print` shows it). SIGHUP reloads the configuration:\n" +
					"policies and log_level at once, apps added started, removed stopped, changed\n" +
					"restarted; `saturn status` shows the generation in force. Under systemd it\n" +
					"reports readiness (Type=notify) and logs without timestamps to the journal.",
				Flags: withInstance(
					&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "the configuration `FILE` (TOML)"},
					&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background"},
				),
				Action: supervisorStart,
			},
			{
				Name:        "stop",
				Usage:       "stop the instance: apps first, then the servers",
				Description: "Each component gets SIGTERM, then SIGKILL after the grace period. Returns once\nthe supervisor has exited and removed its socket, pid file and regions.",
				Flags:       withInstance(),
				Action:      supervisorStop,
			},
		},
	}
}

func supervisorStart(c *cli.Context) error {
	p, cfg, err := instanceConfig(c)
	if err != nil {
		return err
	}
	if c.Bool("detach") {
		return startDetached(c, p, cfg)
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	var ready *os.File
	if v := os.Getenv(readyFDEnv); v != "" {
		if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
			ready = os.NewFile(uintptr(fd), "ready")
		}
		os.Unsetenv(readyFDEnv)
	}
	level := new(slog.LevelVar)
	lv, _ := configs.ParseLogLevel(cfg.Supervisor.LogLevel) // Load checked it
	level.Set(lv)
	log := supervisorLogger(os.Stderr, level).With("instance", p.Instance)
	log.Info("configuration", "source", configSource(cfg))
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts := supervisor.Options{Paths: p, Config: cfg, Binary: bin, Logger: log, Ready: ready, LogLevel: level}
	if ready == nil { // in the foreground, say where to go
		opts.OnReady = func(st *proto.StatusReply) {
			fmt.Fprintf(os.Stderr, "\nsaturn: instance %q is running; `saturn status` shows it, Ctrl-C stops it\n%s%s\n", p.Instance, reachString(st), metricsString(st))
		}
	}
	sup := supervisor.New(opts)
	defer sup.ReloadOn(syscall.SIGHUP)()
	return sup.Run(ctx)
}

// startDetached starts the supervisor in the background, in a session of
// its own, and waits for its verdict on the ready pipe.
func startDetached(c *cli.Context, p supervisor.Paths, cfg *configs.Config) error {
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.LogDir, 0o700); err != nil {
		return err
	}
	logPath := filepath.Join(p.LogDir, "supervisor.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	args := []string{"supervisor", "start", "--state-dir", p.StateDir, "--instance", p.Instance}
	if cfg.Source != "" {
		args = append(args, "--config", cfg.Source)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	w.Close()
	pid := cmd.Process.Pid

	wait := 2*cfg.Supervisor.ReadyTimeout.D()*time.Duration(2+len(cfg.Apps)) + 10*time.Second
	r.SetReadDeadline(time.Now().Add(wait))
	line, err := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case line == "ready":
		fmt.Fprintf(c.App.Writer, "saturn: instance %q is running (supervisor pid %d)\n", p.Instance, pid)
		fmt.Fprintf(c.App.Writer, "  control socket: %s\n  logs:           %s\n", p.Control, p.LogDir)
		fmt.Fprintf(c.App.Writer, "  see it with `saturn status`; stop it with `saturn supervisor stop`\n")
		var st proto.StatusReply
		if err := request(c, proto.MsgStatus, &proto.Status{}, &st, 5*time.Second); err == nil {
			printReach(c.App.Writer, &st)
			fmt.Fprint(c.App.Writer, metricsString(&st))
		}
		return nil
	case strings.HasPrefix(line, "failed: "):
		// The supervisor stops what it started and exits: wait for that,
		// so that nothing of the instance runs once we have said so.
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(cfg.Supervisor.StopGrace.D() + 10*time.Second):
		}
		return fmt.Errorf("instance %q did not start: %s (log: %s)", p.Instance, strings.TrimPrefix(line, "failed: "), logPath)
	case err != nil && os.IsTimeout(err):
		return fmt.Errorf("instance %q did not report ready within %s (log: %s)", p.Instance, wait, logPath)
	default:
		return fmt.Errorf("the supervisor exited during start (log: %s)", logPath)
	}
}

func supervisorStop(c *cli.Context) error {
	s, p, err := connect(c)
	if err != nil {
		return err
	}
	defer s.Close()
	pid, _ := strconv.Atoi(strings.TrimSpace(readFile(p.PIDFile)))
	ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
	defer cancel()
	if _, err := s.Call(ctx, proto.MsgStop, nil, nil); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	// The supervisor closes our session when everything is down.
	select {
	case <-s.Done():
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("instance %q is still stopping after 2 minutes", p.Instance)
	}
	if pid > 0 {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if !processAlive(pid) {
				break
			}
		}
	}
	fmt.Fprintf(c.App.Writer, "saturn: instance %q stopped\n", p.Instance)
	return nil
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// processAlive reports whether pid runs (a zombie waiting for its reaper
// counts as gone).
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// configSource names where cfg came from, for people.
func configSource(cfg *configs.Config) string {
	if cfg.Source == "" {
		return "the built-in default"
	}
	return cfg.Source
}

// metricsString says where the metrics endpoint is, or why there is none.
func metricsString(st *proto.StatusReply) string {
	switch {
	case st.Metrics != "":
		return fmt.Sprintf("  metrics for Prometheus at %s; `saturn top` watches it live\n", st.Metrics)
	case st.MetricsError != "":
		return fmt.Sprintf("  no metrics endpoint: %s ([supervisor] metrics)\n", st.MetricsError)
	}
	return ""
}
