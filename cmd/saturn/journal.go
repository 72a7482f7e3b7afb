package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// supervisorLogger is the logger of `saturn supervisor start`: text lines
// on w (standard error) at the level in level. Under systemd, when w is the
// stream JOURNAL_STREAM names, the lines carry no time (the journal stamps
// every line itself, and a second time would only make them longer) and
// start with their syslog priority, as sd-daemon(3) has it, so that
// `journalctl -p warning` finds the warnings and errors.
func supervisorLogger(w *os.File, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var out io.Writer = w
	if toJournal(w) {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
		out = priorityWriter{w}
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

// priorityWriter prefixes each record with its syslog priority ("<3>" for
// an error). slog's text handler writes a record in one Write, which
// starts with its level once the time is gone.
type priorityWriter struct{ w io.Writer }

func (p priorityWriter) Write(b []byte) (int, error) {
	prio := "<6>" // info
	switch {
	case bytes.HasPrefix(b, []byte("level=ERROR")):
		prio = "<3>"
	case bytes.HasPrefix(b, []byte("level=WARN")):
		prio = "<4>"
	case bytes.HasPrefix(b, []byte("level=DEBUG")):
		prio = "<7>"
	}
	if _, err := p.w.Write(append([]byte(prio), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// toJournal reports whether f is connected to systemd's journal: systemd
// sets JOURNAL_STREAM to the device and inode of the stream it connects a
// service's output to, which a process checks against its own descriptor
// (a child whose output was redirected elsewhere inherits the variable).
func toJournal(f *os.File) bool {
	v := os.Getenv("JOURNAL_STREAM")
	if v == "" {
		return false
	}
	var dev, ino uint64
	if _, err := fmt.Sscanf(v, "%d:%d", &dev, &ino); err != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return st.Dev == dev && st.Ino == ino
}
