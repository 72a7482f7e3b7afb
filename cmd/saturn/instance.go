package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"saturn/configs"
	"saturn/proto"
	"saturn/supervisor"
)

// instanceFlags find an instance. They are accepted before or after the
// command's name.
func instanceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name: "state-dir", EnvVars: []string{"SATURN_STATE_DIR"},
			Usage:       "where instances keep their sockets and logs",
			DefaultText: supervisor.DefaultStateDir(),
		},
		&cli.StringFlag{
			Name: "instance", EnvVars: []string{"SATURN_INSTANCE"}, Value: "default",
			Usage: "the instance's name",
		},
	}
}

// withInstance adds the instance flags to a command's own.
func withInstance(flags ...cli.Flag) []cli.Flag { return append(flags, instanceFlags()...) }

// paths resolves the instance the command names.
func paths(c *cli.Context) (supervisor.Paths, error) {
	return supervisor.NewPaths(lookup(c, "state-dir"), lookup(c, "instance"))
}

// instanceConfig resolves the instance the command names and loads its
// configuration (--config, else the instance's file or the built-in
// default), with every path resolved against the instance's folder.
func instanceConfig(c *cli.Context) (supervisor.Paths, *configs.Config, error) {
	p, err := paths(c)
	if err != nil {
		return p, nil, err
	}
	cfg, err := configs.LoadInstance(c.String("config"), p.Instance)
	if err != nil {
		return p, nil, err
	}
	cfg.Resolve(p.Dir)
	return p, cfg, nil
}

// lookup finds a flag's value set on the command or before it.
func lookup(c *cli.Context, name string) string {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet(name) {
			return ctx.String(name)
		}
	}
	return c.String(name)
}

// connect opens a control session to the instance.
func connect(c *cli.Context) (*proto.Session, supervisor.Paths, error) {
	p, err := paths(c)
	if err != nil {
		return nil, p, err
	}
	conn, err := proto.Dial(p.Control)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, p, fmt.Errorf("instance %q is not running (no supervisor at %s); start it with `saturn supervisor start`", p.Instance, p.Control)
		}
		return nil, p, fmt.Errorf("instance %q: %w", p.Instance, err)
	}
	s := proto.NewSession(conn, nil)
	go s.Run()
	return s, p, nil
}

// request makes one call to the instance and closes the session.
func request(c *cli.Context, t proto.MsgType, body, out any, timeout time.Duration) error {
	s, _, err := connect(c)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	_, err = s.Call(ctx, t, body, out)
	var er *proto.ErrorReply
	if errors.As(err, &er) {
		return errors.New(er.Message)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer from the supervisor within %s", timeout)
	}
	return err
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
