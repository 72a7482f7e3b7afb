package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves a command's flags in front of its positional
// arguments, so that `saturn kill netproc --signal TERM` works as well as
// `saturn kill --signal TERM netproc` (urfave/cli stops reading flags at
// the first argument). Everything after "--" is left alone: it belongs to
// the command being launched.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	commands, flags := app.Commands, app.Flags
	// Walk global flags and the command path.
	for len(rest) > 0 {
		tok := rest[0]
		if tok == "--" {
			break
		}
		if strings.HasPrefix(tok, "-") {
			out = append(out, tok)
			rest = rest[1:]
			if takesValue(flags, tok) && len(rest) > 0 {
				out = append(out, rest[0])
				rest = rest[1:]
			}
			continue
		}
		cmd := findCommand(commands, tok)
		if cmd == nil {
			break
		}
		out = append(out, tok)
		rest = rest[1:]
		commands, flags = cmd.Subcommands, cmd.Flags
		if len(commands) == 0 {
			break
		}
	}
	var opts, positional []string
	for len(rest) > 0 {
		tok := rest[0]
		if tok == "--" {
			break
		}
		rest = rest[1:]
		if strings.HasPrefix(tok, "-") && tok != "-" {
			opts = append(opts, tok)
			if takesValue(flags, tok) && len(rest) > 0 {
				opts = append(opts, rest[0])
				rest = rest[1:]
			}
			continue
		}
		positional = append(positional, tok)
	}
	out = append(out, opts...)
	if len(rest) > 0 { // "--" and what follows
		out = append(out, rest[0])
		out = append(out, positional...)
		return append(out, rest[1:]...)
	}
	return append(out, positional...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.Name == name {
			return c
		}
		for _, a := range c.Aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

// takesValue reports whether tok names a flag that takes its value from
// the next argument.
func takesValue(flags []cli.Flag, tok string) bool {
	name := strings.TrimLeft(tok, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}
