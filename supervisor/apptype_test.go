package supervisor

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"saturn/configs"
)

func TestAppType(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1) here")
	}
	self, err := os.Executable() // this test binary links saturn's module
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "run.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec "+self+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want, path, binary, is string
	}{
		{"plain program", "", sleep, "/bin/saturn", configs.AppSimple},
		{"plain program, auto", configs.AppAuto, sleep, "/bin/saturn", configs.AppSimple},
		{"Go program with saturn", "", self, "/bin/saturn", configs.AppNotify},
		{"saturn itself by name", "", "saturn", "/bin/saturn", configs.AppNotify},
		{"saturn itself by path", "", "/bin/saturn", "/bin/saturn", configs.AppNotify},
		{"script wrapping one", "", script, "/bin/saturn", configs.AppSimple},
		{"missing program", "", "/nonexistent/prog", "/bin/saturn", configs.AppSimple},
		{"explicit simple", configs.AppSimple, self, "/bin/saturn", configs.AppSimple},
		{"explicit notify", configs.AppNotify, sleep, "/bin/saturn", configs.AppNotify},
	} {
		if got := appType(tc.want, tc.path, "", tc.binary); got != tc.is {
			t.Errorf("%s: appType(%q, %s) = %s, want %s", tc.name, tc.want, tc.path, got, tc.is)
		}
	}
	// A relative path resolves in the app's folder.
	if got := appType("", filepath.Base(self), filepath.Dir(self), "/bin/saturn"); got != configs.AppNotify {
		t.Errorf("relative path: %s, want notify", got)
	}
}
