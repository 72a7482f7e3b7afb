package supervisor

import (
	"fmt"
	"path/filepath"
	"regexp"

	"saturn/proto"
)

// Paths are where one instance keeps its files: STATE_DIR/INSTANCE holds the
// control socket, the pid and lock files, the effective configuration and
// the logs.
type Paths struct {
	StateDir string
	Instance string
	Dir      string // STATE_DIR/INSTANCE
	Control  string // the control socket
	PIDFile  string
	LockFile string
	Config   string // the effective configuration the components read
	LogDir   string
}

var instanceRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// NewPaths lays out the files of instance under stateDir (DefaultStateDir
// when empty).
func NewPaths(stateDir, instance string) (Paths, error) {
	if stateDir == "" {
		stateDir = DefaultStateDir()
	}
	if !instanceRE.MatchString(instance) {
		return Paths{}, fmt.Errorf("instance name %q: use 1 to 63 letters, digits, '.', '_' or '-'", instance)
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return Paths{}, err
	}
	dir := filepath.Join(abs, instance)
	return Paths{
		StateDir: abs,
		Instance: instance,
		Dir:      dir,
		Control:  filepath.Join(dir, "control.sock"),
		PIDFile:  filepath.Join(dir, "supervisor.pid"),
		LockFile: filepath.Join(dir, "supervisor.lock"),
		Config:   filepath.Join(dir, "config.toml"),
		LogDir:   filepath.Join(dir, "logs"),
	}, nil
}

// Log is the log file of the component called name.
func (p Paths) Log(name string) string { return filepath.Join(p.LogDir, name+".log") }

// DefaultStateDir is /run/saturn for root, else $XDG_RUNTIME_DIR/saturn, or
// saturn-UID under the temporary folder when that is unset.
func DefaultStateDir() string { return proto.DefaultStateDir() }
