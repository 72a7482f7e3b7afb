package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"saturn/configs"
	"saturn/proto"
)

func killCommand() *cli.Command {
	return &cli.Command{
		Name:      "kill",
		Usage:     "signal a component as if it crashed; its restart policy decides what follows",
		ArgsUsage: "NAME",
		Flags: withInstance(&cli.StringFlag{
			Name: "signal", Aliases: []string{"s"}, Value: "KILL", Usage: "the signal, by name (KILL, TERM, SIGSEGV) or number",
		}),
		Action: func(c *cli.Context) error {
			name, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			if err := request(c, proto.MsgKill, &proto.Kill{Name: name, Signal: c.String("signal")}, nil, 10*time.Second); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "saturn: sent %s to %s\n", strings.ToUpper(strings.TrimPrefix(strings.ToUpper(c.String("signal")), "SIG")), name)
			return nil
		},
	}
}

func restartCommand() *cli.Command {
	return &cli.Command{
		Name:        "restart",
		Usage:       "stop a component gracefully and start it afresh, whatever its policy",
		Description: "Returns once the new incarnation is ready. A failed component is started again\nwith its restart count for the intensity limit cleared.",
		ArgsUsage:   "NAME",
		Flags:       withInstance(),
		Action:      nameAction(proto.MsgRestart, func(name string) any { return &proto.Restart{Name: name} }, "restarted"),
	}
}

func upgradeCommand() *cli.Command {
	return &cli.Command{
		Name:  "upgrade",
		Usage: "restart a component from a new program (or its own, rebuilt) and report the blackout",
		Description: "A restart as `saturn restart` does it, from --binary when it is given: every\n" +
			"later start of the component runs that program, until the supervisor stops\n" +
			"(the config is not changed). For netproc and diskproc, and apps started as\n" +
			"\"saturn ...\", the program is a saturn binary. The program is checked before\n" +
			"anything stops. It returns once the new incarnation is ready and prints the\n" +
			"blackout: from the old incarnation's exit to the new one's readiness. A server\n" +
			"keeps what a kill keeps, an app what a graceful restart keeps (docs/restart.md).",
		ArgsUsage: "NAME",
		Flags:     withInstance(&cli.StringFlag{Name: "binary", Usage: "the program to run from now on (default: the one it runs, as it is on disk now)"}),
		Action: func(c *cli.Context) error {
			name, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			bin := c.String("binary")
			if bin != "" {
				if bin, err = filepath.Abs(bin); err != nil {
					return err
				}
			}
			var rep proto.UpgradeReply
			if err := request(c, proto.MsgUpgrade, &proto.Upgrade{Name: name, Binary: bin}, &rep, 2*time.Minute); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "saturn: %s upgraded: %s, pid %d, blackout %v\n", name, rep.Binary, rep.PID,
				time.Duration(rep.BlackoutNS).Round(time.Millisecond))
			return nil
		},
	}
}

func attachCommand() *cli.Command {
	return &cli.Command{
		Name:      "attach",
		Usage:     "start a custom app process under the supervisor, with its channels",
		ArgsUsage: "-- CMD [ARGS...]",
		Description: "The supervisor runs CMD (relative paths and PATH lookups resolve here, and it\n" +
			"runs in this folder), gives it its channels to netproc and diskproc, watches\n" +
			"it, restarts it by --restart, and shows it in status. Apps built on appproc\n" +
			"find their channels with appproc.Attach. `saturn detach NAME` removes it.\n\n" +
			"attach returns once the app is running, or with an error once it failed. When\n" +
			"it is running depends on --type: a simple app (any program: a shell script,\n" +
			"sleep, a server in another language) once it has started; a notify app (one\n" +
			"that links appproc) once it attaches, or once it says it is ready if it asks\n" +
			"to (the web server does, once it listens). auto, the default, takes a Go\n" +
			"program built with saturn's module as notify and anything else as simple. A\n" +
			"notify app silent after [supervisor] ready_timeout is taken as running, with\n" +
			"a warning; a simple app that attaches after all gets its channels as usual.",
		Flags: withInstance(
			&cli.StringFlag{Name: "name", Aliases: []string{"n"}, Required: true, Usage: "the app's `NAME` in status"},
			&cli.StringFlag{Name: "restart", Value: "on-failure", Usage: "restart policy: always, on-failure or never"},
			&cli.StringFlag{Name: "type", Value: "auto", Usage: "when it counts as running: simple (once started), notify (once attached or ready) or auto (notify for a program that links saturn)"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "`KEY=VALUE` to add to its environment (repeatable)"},
			&cli.StringFlag{Name: "user", Usage: "who it runs as when the supervisor is root: dynamic (a uid of its own, the default), inherit (the supervisor's), a `USER`'s name, or UID[:GID]"},
			&cli.StringSliceFlag{Name: "listen", Usage: "grant: an `ADDRESS` it may listen on, HOST:PORT with * for any (repeatable; default: anywhere, ports 1024 and up)"},
			&cli.StringSliceFlag{Name: "disk-write", Usage: "grant: a `FOLDER` beneath diskproc's root it may write in (repeatable; default: none, it only reads)"},
		),
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) == 0 {
				return fmt.Errorf("attach: no command; usage: saturn attach --name NAME -- CMD [ARGS...]")
			}
			path, err := resolveCommand(args[0])
			if err != nil {
				return err
			}
			cwd, err := os.Getwd()
			if err != nil {
				return err
			}
			env := map[string]string{}
			for _, kv := range c.StringSlice("env") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--env %q: want KEY=VALUE", kv)
				}
				env[k] = v
			}
			cmd := append([]string{path}, args[1:]...)
			m := &proto.Launch{Name: c.String("name"), Command: cmd, Restart: c.String("restart"), Env: env, Dir: cwd,
				User: c.String("user"), Listen: c.StringSlice("listen"), DiskWrite: c.StringSlice("disk-write"), Type: c.String("type")}
			if err := configs.CheckAppType(m.Type); err != nil {
				return fmt.Errorf("attach --type: %w", err)
			}
			if err := request(c, proto.MsgLaunch, m, nil, 2*time.Minute); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "saturn: %s attached (see `saturn status`, `saturn logs %s`)\n", m.Name, m.Name)
			return nil
		},
	}
}

// resolveCommand makes a command name absolute as this shell would find
// it: a path relative to here, or a PATH lookup. "saturn" stays as it is:
// the supervisor runs its own binary for it.
func resolveCommand(name string) (string, error) {
	if name == "saturn" {
		return name, nil
	}
	if strings.Contains(name, "/") {
		abs, err := filepath.Abs(name)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("attach: %w", err)
		}
		return abs, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("attach: %w", err)
	}
	return filepath.Abs(p)
}

func detachCommand() *cli.Command {
	return &cli.Command{
		Name:      "detach",
		Usage:     "stop an attached app and remove it from the instance",
		ArgsUsage: "NAME",
		Flags:     withInstance(),
		Action:    nameAction(proto.MsgDetach, func(name string) any { return &proto.Detach{Name: name} }, "detached"),
	}
}

// nameAction is the action of a command whose one argument is a
// component's NAME: it sends the request body(NAME) and, once the
// supervisor has done it (2 minutes at the most: a restart waits for the
// new incarnation to be ready), says "saturn: NAME done".
func nameAction(t proto.MsgType, body func(name string) any, done string) cli.ActionFunc {
	return func(c *cli.Context) error {
		name, err := oneArg(c, "NAME")
		if err != nil {
			return err
		}
		if err := request(c, t, body(name), nil, 2*time.Minute); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "saturn: %s %s\n", name, done)
		return nil
	}
}

func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", fmt.Errorf("%s: want exactly one %s (got %d arguments)", c.Command.Name, what, c.NArg())
	}
	return c.Args().First(), nil
}
