package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"saturn/proto"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name:  "top",
		Usage: "watch the instance live: components, channels' rates and ring depths, connections, restarts",
		Description: "Redraws every --interval (1s) as top does: every component (state, pid,\n" +
			"uptime, restarts, connections, and the submissions and completions per second\n" +
			"on its channels), netproc's segments per second where its backend counts them,\n" +
			"and every channel (submissions and completions per second, ring depths,\n" +
			"sockets). q (or Ctrl-C) quits.\n\n" +
			"When standard output is not a terminal, it prints one frame and exits, taken\n" +
			"over one interval so that it has rates (--iterations N prints N of them).",
		Flags: withInstance(
			&cli.DurationFlag{Name: "interval", Aliases: []string{"d"}, Value: time.Second, Usage: "time between frames"},
			&cli.IntFlag{Name: "iterations", Aliases: []string{"n"}, Usage: "stop after this many frames (default: until q on a terminal, 1 otherwise)"},
		),
		Action: runTop,
	}
}

// Terminal control sequences: the alternate screen (the shell's screen is
// back as it was on exit), the cursor hidden, home and clear.
const (
	enterScreen = "\x1b[?1049h\x1b[?25l"
	leaveScreen = "\x1b[?25h\x1b[?1049l"
	clearScreen = "\x1b[H\x1b[2J"
)

func runTop(c *cli.Context) error {
	every := c.Duration("interval")
	if every < 100*time.Millisecond {
		return fmt.Errorf("top: --interval %s: want at least 100ms", every)
	}
	frames := c.Int("iterations")
	if frames < 0 {
		return fmt.Errorf("top: --iterations %d is negative", frames)
	}
	sess, _, err := connect(c)
	if err != nil {
		return err
	}
	defer sess.Close()
	sample := func() (topSample, error) {
		ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
		defer cancel()
		var st proto.StatusReply
		_, err := sess.Call(ctx, proto.MsgStatus, &proto.Status{}, &st)
		var er *proto.ErrorReply
		if errors.As(err, &er) {
			err = errors.New(er.Message)
		}
		return topSample{at: time.Now(), st: &st}, err
	}
	out, _ := c.App.Writer.(*os.File)
	if out == nil || !isTerminal(out) {
		if frames == 0 {
			frames = 1
		}
		return topBatch(c.App.Writer, sample, every, frames)
	}
	return topLive(c.Context, out, os.Stdin, sample, every, frames)
}

// topBatch prints frames one after another, for a pipe or a file: the first
// after one interval, so that it has rates.
func topBatch(w io.Writer, sample func() (topSample, error), every time.Duration, frames int) error {
	prev, err := sample()
	if err != nil {
		return err
	}
	for i := 0; i < frames; i++ {
		time.Sleep(every)
		cur, err := sample()
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		topFrame(w, &prev, cur, every, 0, 0)
		prev = cur
	}
	return nil
}

// topLive redraws on the terminal out until q, Ctrl-C, the frame count, or
// the instance going away (which it says after leaving the screen). Keys
// are read from in without echo or line buffering when it is a terminal.
func topLive(ctx context.Context, out *os.File, in *os.File, sample func() (topSample, error), every time.Duration, frames int) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if restore, err := rawInput(in); err == nil {
		defer restore()
	}
	quit := make(chan struct{})
	go func() { // ends with the process: a read of the terminal cannot be cut short
		buf := make([]byte, 16)
		for {
			n, err := in.Read(buf)
			if bytes.ContainsAny(buf[:n], "qQ\x03") {
				close(quit)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	resized := make(chan os.Signal, 1)
	signal.Notify(resized, syscall.SIGWINCH)
	defer signal.Stop(resized)

	io.WriteString(out, enterScreen)
	defer io.WriteString(out, leaveScreen)
	var prev *topSample
	tick := time.NewTicker(every)
	defer tick.Stop()
	var buf bytes.Buffer
	for n := 0; ; {
		cur, err := sample()
		if err != nil {
			return fmt.Errorf("top: %w", err)
		}
		draw := func() {
			cols, rows := terminalSize(out)
			buf.Reset()
			buf.WriteString(clearScreen)
			topFrame(&buf, prev, cur, every, cols, rows-1)
			out.Write(buf.Bytes())
		}
		draw()
		n++
		if frames > 0 && n >= frames {
			return nil
		}
		for waiting := true; waiting; {
			select {
			case <-tick.C:
				waiting = false
			case <-resized:
				draw()
			case <-quit:
				return nil
			case <-ctx.Done():
				return nil
			}
		}
		prev = &cur
	}
}

// rawInput turns off echo and line buffering on f, if it is a terminal, so
// that a key press arrives at once and unseen; signals (Ctrl-C) stay on.
func rawInput(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *old
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

// terminalSize is f's size in columns and rows, 80x24 if it does not say.
func terminalSize(f *os.File) (cols, rows int) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 || ws.Row == 0 {
		return 80, 24
	}
	return int(ws.Col), int(ws.Row)
}
