package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:        "logs",
		Usage:       "print a component's captured standard output and error",
		ArgsUsage:   "NAME",
		Description: "NAME is a component, or \"supervisor\" for a detached supervisor's own log.",
		Flags: withInstance(
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing as the log grows"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 100, Usage: "print the last `N` lines (0: all)"},
		),
		Action: func(c *cli.Context) error {
			name, err := oneArg(c, "NAME")
			if err != nil {
				return err
			}
			p, err := paths(c)
			if err != nil {
				return err
			}
			path := p.Log(name)
			f, err := os.Open(path)
			if err != nil {
				entries, _ := os.ReadDir(p.LogDir)
				var names []string
				for _, e := range entries {
					names = append(names, e.Name()[:len(e.Name())-len(filepath.Ext(e.Name()))])
				}
				return fmt.Errorf("no log for %q in instance %q (logs exist for: %v)", name, p.Instance, names)
			}
			defer f.Close()
			if err := printTail(c.App.Writer, f, c.Int("lines")); err != nil {
				return err
			}
			if !c.Bool("follow") {
				return nil
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			for {
				if _, err := io.Copy(c.App.Writer, f); err != nil {
					return err
				}
				select {
				case <-sig:
					return nil
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
}

// printTail prints the last n lines of f (all when n <= 0), leaving f's
// offset at its end.
func printTail(w io.Writer, f *os.File, n int) error {
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if n > 0 && len(lines) > n {
			lines = lines[1:]
		}
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	return sc.Err()
}
