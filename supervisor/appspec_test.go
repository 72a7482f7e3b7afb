package supervisor

import (
	"os/exec"
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
