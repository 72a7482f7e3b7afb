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

func TestInterspersed(t *testing.T) {
	app := newApp()
	tests := []struct{ in, want string }{
		{"saturn kill netproc --signal TERM", "saturn kill --signal TERM netproc"},
		{"saturn kill --signal TERM netproc", "saturn kill --signal TERM netproc"},
		{"saturn logs web -f -n 5", "saturn logs -f -n 5 web"},
		{"saturn --instance x status --json", "saturn --instance x status --json"},
		{"saturn attach --name echo -- ./echo --port 7", "saturn attach --name echo -- ./echo --port 7"},
		{"saturn attach -- ./echo -n 3 --name x", "saturn attach -- ./echo -n 3 --name x"},
		{"saturn supervisor start --detach --config c.toml", "saturn supervisor start --detach --config c.toml"},
		{"saturn restart web --instance x", "saturn restart --instance x web"},
	}
	for _, tt := range tests {
		got := strings.Join(interspersed(app, strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("%s\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}
