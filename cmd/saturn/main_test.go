package main

import (
	"bytes"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	app.ErrWriter = &out
	if err := app.Run(append([]string{"saturn"}, args...)); err != nil {
		t.Fatalf("saturn %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func TestVersion(t *testing.T) {
	out := run(t, "version")
	for _, want := range []string{"saturn ", "ring ABI 1", "control protocol 1", "go1."} {
		if !strings.Contains(out, want) {
			t.Errorf("version output %q lacks %q", out, want)
		}
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, cmd := range newApp().Commands {
		out := run(t, cmd.Name, "--help")
		if !strings.Contains(out, cmd.Usage) {
			t.Errorf("%s --help does not show its usage line:\n%s", cmd.Name, out)
		}
	}
}
