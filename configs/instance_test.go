package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadInstance: without a path, an instance reads DIR/NAME.toml when
// it exists and the embedded default when it does not; a path given wins;
// a folder where the file should be is an error.
func TestLoadInstance(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(ConfigDirEnv, dir)
	if got, want := InstanceFile("web"), filepath.Join(dir, "web.toml"); got != want {
		t.Fatalf("InstanceFile = %q, want %q", got, want)
	}
	c, err := LoadInstance("", "web")
	if err != nil || c.Source != "" {
		t.Fatalf("no file: source %q, err %v; want the embedded default", c.Source, err)
	}
	file := filepath.Join(dir, "web.toml")
	if err := os.WriteFile(file, []byte("[supervisor]\nlog_level = \"debug\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = LoadInstance("", "web")
	if err != nil || c.Source != file || c.Supervisor.LogLevel != "debug" {
		t.Fatalf("with %s: source %q, err %v, log level %q", file, c.Source, err, c.Supervisor.LogLevel)
	}
	if c, err := LoadInstance("", "other"); err != nil || c.Source != "" {
		t.Fatalf("another instance: source %q, err %v; want the embedded default", c.Source, err)
	}
	given := filepath.Join(t.TempDir(), "given.toml")
	if err := os.WriteFile(given, []byte("[supervisor]\nlog_level = \"warn\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadInstance(given, "web"); err != nil || c.Source != given || c.Supervisor.LogLevel != "warn" {
		t.Fatalf("given path: source %q, err %v", c.Source, err)
	}
	if err := os.Mkdir(filepath.Join(dir, "odd.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadInstance("", "odd"); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Fatalf("a folder for a file: err %v", err)
	}
	// The default level, and every level a config may name.
	if c, _ := LoadInstance("", "other"); c.Supervisor.LogLevel != "info" {
		t.Errorf("default log level %q, want info", c.Supervisor.LogLevel)
	}
	for _, l := range []string{"debug", "info", "warn", "error"} {
		if _, err := ParseLogLevel(l); err != nil {
			t.Errorf("%s: %v", l, err)
		}
	}
}
