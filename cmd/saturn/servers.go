package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"saturn/configs"
	"saturn/diskproc"
	"saturn/netproc"
)

// serverCommand is a server's hidden entry point: the supervisor starts
// `saturn netproc --config FILE` with its control link as descriptor 3.
func serverCommand(name string) *cli.Command {
	return &cli.Command{
		Name:   name,
		Usage:  "run " + name + " (started by the supervisor, not by hand)",
		Hidden: true,
		Flags:  []cli.Flag{&cli.StringFlag{Name: "config", Usage: "the effective configuration `FILE`"}},
		Action: func(c *cli.Context) error {
			cfg, err := configs.Load(c.String("config"))
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", name)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			switch name {
			case "netproc":
				err = netproc.Main(ctx, cfg, log)
			case "diskproc":
				err = diskproc.Main(ctx, cfg, log)
			default:
				err = fmt.Errorf("no server called %q", name)
			}
			if err != nil {
				log.Error("exiting", "err", err)
			} else {
				log.Info("stopped")
			}
			return err
		},
	}
}
