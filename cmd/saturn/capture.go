package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"saturn/proto"
)

func captureCommand() *cli.Command {
	return &cli.Command{
		Name:      "capture",
		Usage:     "write what netproc sends and receives as a pcap file (usertcp backend)",
		ArgsUsage: " ",
		Description: "netproc writes every packet its own TCP/IP stack sends and receives into FILE,\n" +
			"as tcpdump, tshark and Wireshark read it (raw IPv4, nanosecond stamps), until\n" +
			"--count packets or Ctrl-C. Without -w it writes to standard output, unless\n" +
			"that is a terminal:\n\n" +
			"   saturn capture -w netproc.pcap --count 1000\n" +
			"   saturn capture | tshark -r -\n\n" +
			"Sent packets are recorded before the link cuts them to the MTU, so a GSO\n" +
			"packet is one large record, as tcpdump shows it on an interface with TSO.\n" +
			"With the kernel backend there is nothing to capture: use tcpdump.",
		Flags: withInstance(
			&cli.StringFlag{Name: "w", Usage: "write to `FILE` (\"-\": standard output, the default)"},
			&cli.IntFlag{Name: "count", Aliases: []string{"c"}, Usage: "stop after `N` packets (0: until interrupted)"},
		),
		Action: captureAction,
	}
}

func captureAction(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return fmt.Errorf("capture takes no arguments (got %q); write to a file with -w FILE", c.Args().First())
	}
	count := c.Int("count")
	if count < 0 {
		return fmt.Errorf("--count %d: want 0 or more", count)
	}
	out, name := os.Stdout, "standard output"
	if w := c.String("w"); w != "" && w != "-" {
		f, err := os.OpenFile(w, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		out, name = f, w
	} else if isTTY(out) {
		return errors.New("standard output is a terminal, which is no place for a binary pcap stream: " +
			"write to a file with -w FILE, or pipe it (saturn capture | tshark -r -)")
	}
	sess, _, err := connect(c)
	if err != nil {
		return err
	}
	defer sess.Close()

	type result struct {
		rep proto.CaptureReply
		err error
	}
	done := make(chan result, 1)
	go func() {
		var rep proto.CaptureReply
		_, err := sess.Call(context.Background(), proto.MsgCapture, &proto.Capture{Count: count}, &rep, out)
		done <- result{rep, err}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	defer signal.Stop(sig)
	var res result
	select {
	case res = <-done:
	case <-sig:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		sess.Call(ctx, proto.MsgCaptureStop, &proto.CaptureStop{}, nil)
		cancel()
		select {
		case res = <-done:
		case <-time.After(15 * time.Second):
			return errors.New("capture: no answer from the supervisor after stopping")
		}
	}
	var er *proto.ErrorReply
	switch {
	case errors.As(res.err, &er):
		return fmt.Errorf("capture: %s", er.Message)
	case res.err != nil:
		return fmt.Errorf("capture: %w", res.err)
	}
	fmt.Fprintf(c.App.ErrWriter, "saturn: %d packets captured to %s\n", res.rep.Packets, name)
	if res.rep.Error != "" {
		return fmt.Errorf("capture ended early: %s", res.rep.Error)
	}
	return nil
}

// isTTY reports whether f is a terminal.
func isTTY(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
