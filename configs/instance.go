package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// An instance's own config file. Without --config, `saturn supervisor
// start --instance NAME` reads DIR/NAME.toml when that file exists, where
// DIR is $SATURN_CONFIG_DIR or /etc/saturn, and the embedded default
// otherwise; this is what lets the systemd unit saturn@NAME.service run
// `saturn supervisor start --instance %i` with no path in it (as nginx reads
// /etc/nginx/nginx.conf). A reload (SIGHUP) looks again, so a file created
// after the start is read at the next reload.

// DefaultConfigDir is where instances' config files live unless
// $SATURN_CONFIG_DIR says otherwise.
const DefaultConfigDir = "/etc/saturn"

// ConfigDirEnv overrides DefaultConfigDir.
const ConfigDirEnv = "SATURN_CONFIG_DIR"

// InstanceFile is the path of the config file of the instance called name:
// DIR/NAME.toml. It need not exist.
func InstanceFile(name string) string {
	dir := os.Getenv(ConfigDirEnv)
	if dir == "" {
		dir = DefaultConfigDir
	}
	return filepath.Join(dir, name+".toml")
}

// FindInstance says which file configures the instance called name when no
// --config is given: its InstanceFile if that exists, else "" (the
// embedded default). A file that exists but cannot be examined is an
// error, not a reason to fall back on the default silently.
func FindInstance(name string) (string, error) {
	path := InstanceFile(name)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("config: %w", err)
	case fi.IsDir():
		return "", fmt.Errorf("config: %s is a folder, not a config file", path)
	}
	return path, nil
}

// LoadInstance loads the config of the instance called name: path when it
// is given, else what FindInstance finds.
func LoadInstance(path, name string) (*Config, error) {
	if path == "" {
		found, err := FindInstance(name)
		if err != nil {
			return nil, err
		}
		path = found
	}
	return Load(path)
}
