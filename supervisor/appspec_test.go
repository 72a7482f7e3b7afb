package supervisor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppSpec: an app's command runs saturn's own binary for "saturn", a
// bare name found in PATH as a shell finds it, and a path as it is.
func TestAppSpec(t *testing.T) {
	s := &Supervisor{opts: Options{Binary: "/opt/saturn/bin/saturn"}}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep in PATH")
	}
	for _, tt := range []struct{ command, want string }{
		{"saturn", "/opt/saturn/bin/saturn"},
		{"sleep", sleep},
		{"./my-app", "./my-app"},
		{"/usr/local/bin/app", "/usr/local/bin/app"},
		{"no-such-program-here", "no-such-program-here"}, // the start says it is not found
	} {
		spec := s.appSpec([]string{tt.command, "arg"}, nil, "")
		if spec.path != tt.want || spec.args[0] != tt.command || spec.args[1] != "arg" {
			t.Errorf("%s: path %q args %q, want path %q", tt.command, spec.path, spec.args, tt.want)
		}
	}
}

// TestCheckBinary: an upgrade's program is refused, before anything
// stops, unless it is an absolute path to an executable regular file.
func TestCheckBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "prog")
	plain := filepath.Join(dir, "data")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(plain, []byte("x"), 0o644)
	for _, tt := range []struct {
		path, want string
	}{
		{exe, ""},
		{"prog", "not an absolute path"},
		{dir, "not a regular file"},
		{plain, "not executable"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		err := checkBinary(tt.path, nil)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.path, err, tt.want)
		}
	}
}
