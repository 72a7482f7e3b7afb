// Command saturn is the one binary of the saturn runtime: the CLI, and the
// hidden entry points through which the supervisor starts each component.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	app := newApp()
	if err := app.Run(interspersed(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "saturn:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "saturn",
		Usage: "a microkernel-style runtime for network services",
		Description: "saturn runs network services as separate processes: netproc owns packet I/O and\n" +
			"a user-level TCP/IP stack, diskproc owns disk I/O over io_uring, and apps make\n" +
			"their system calls as entries on shared-memory rings. A supervisor starts,\n" +
			"watches and restarts them all.\n\n" +
			"Every command takes --state-dir and --instance to find its instance (or the\n" +
			"SATURN_STATE_DIR and SATURN_INSTANCE variables).",
		HideHelpCommand: true,
		Flags:           instanceFlags(),
		Commands: []*cli.Command{
			supervisorCommand(),
			statusCommand(),
			topCommand(),
			killCommand(),
			restartCommand(),
			upgradeCommand(),
			attachCommand(),
			detachCommand(),
			logsCommand(),
			configCommand(),
			captureCommand(),
			appCommand(),
			versionCommand(),
			serverCommand("netproc"),
			serverCommand("diskproc"),
		},
	}
}
