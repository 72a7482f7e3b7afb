package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"saturn/configs"
)

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "show configuration",
		Subcommands: []*cli.Command{{
			Name:  "print",
			Usage: "print the effective configuration: the file (or the built-in default) with every default filled in",
			Flags: withInstance(&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "the configuration `FILE`; default: /etc/saturn/INSTANCE.toml if it exists, else the built-in one"}),
			Action: func(c *cli.Context) error {
				_, cfg, err := instanceConfig(c)
				if err != nil {
					return err
				}
				out, err := configs.Print(cfg)
				if err != nil {
					return err
				}
				src := cfg.Source
				if src == "" {
					src = "the built-in default"
				}
				fmt.Fprintf(c.App.Writer, "# effective configuration from %s\n%s", src, out)
				return nil
			},
		}},
	}
}
