package deps_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const module = "saturn"

// A rule says which packages may not import which. Paths are relative to
// the module ("netproc/tcp"); standard and third-party packages keep their
// own paths ("os", "golang.org/x/sys/unix").
type rule struct {
	says    string                 // the rule, as docs/design.md states it
	why     string                 // its reason, for the failure message
	applies func(string) bool      // to the importing package
	forbids func(p, i string) bool // does importer p break it by importing i?
}

// under reports whether p is one of roots or inside one of them.
func under(p string, roots ...string) bool {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// ours holds saturn's packages (relative paths): standard packages have no
// dot in their first element either, so ours are told apart by being
// listed (see packages).
var ours = map[string]bool{}

// server returns which server p belongs to, or "".
func server(p string) string {
	for _, s := range []string{"netproc", "diskproc"} {
		if under(p, s) {
			return s
		}
	}
	return ""
}

// doesIO reports whether a standard or third-party package does I/O: files,
// sockets, system calls, logging. (Reading the clock is checked apart, in
// TestTCPCoreReadsNoClock: the core uses package time for durations.)
func doesIO(p string) bool {
	if p == "net/netip" { // addresses as values
		return false
	}
	return under(p, "os", "net", "syscall", "io/ioutil", "io/fs", "log", "runtime/pprof", "golang.org/x/sys")
}

var rules = []rule{
	{
		says:    "ring imports nothing of saturn",
		why:     "ring is the bottom layer, the shared memory every process maps; it builds and is tested alone",
		applies: func(p string) bool { return under(p, "ring") },
		forbids: func(_, i string) bool { return ours[i] && !under(i, "ring") },
	},
	{
		says:    "proto imports nothing of saturn but ring",
		why:     "proto is the ABI between processes; an app links the ABI and the rings, nothing of the processes behind them",
		applies: func(p string) bool { return under(p, "proto") },
		forbids: func(_, i string) bool { return ours[i] && !under(i, "proto", "ring") },
	},
	{
		says: "the TCP core (netproc/tcp, netproc/tcp/seqnum) imports no I/O and nothing of saturn but netproc/header",
		why: "the core is a step function, state and input and now in, actions out: it reads no clock and does no I/O, " +
			"which makes it deterministic in the simulator and lets its state live in shared memory; I/O is the shell's (netproc/usertcp)",
		applies: func(p string) bool { return p == "netproc/tcp" || p == "netproc/tcp/seqnum" },
		forbids: func(_, i string) bool { return doesIO(i) || ours[i] && !under(i, "netproc/tcp", "netproc/header") },
	},
	{
		says:    "appproc imports nothing of saturn but proto and ring",
		why:     "appproc is what every app links: it reaches servers only through the rings, and the supervisor only through proto's control protocol",
		applies: func(p string) bool { return under(p, "appproc") },
		forbids: func(_, i string) bool { return ours[i] && !under(i, "appproc", "proto", "ring") },
	},
	{
		says: "apps (apps/, examples/, bench/) never import a server, the supervisor or the servers' kit",
		why: "an app talks to servers only through appproc's rings; a server linked into an app would be one that the supervisor " +
			"does not start, restart or confine",
		applies: func(p string) bool { return under(p, "apps", "examples", "bench") },
		forbids: func(_, i string) bool {
			return under(i, "netproc", "diskproc", "supervisor", "internal/serverkit", "cmd")
		},
	},
	{
		says:    "servers (netproc, diskproc) never import each other",
		why:     "each server is a process of its own that crashes and restarts alone; servers meet only through channels the supervisor made",
		applies: func(p string) bool { return server(p) != "" },
		forbids: func(p, i string) bool { return server(i) != "" && server(i) != server(p) },
	},
	{
		says: "servers never import the supervisor, appproc or an app",
		why: "a server is started by the supervisor, not part of it, and is no app: a tool that attaches as an app belongs under bench/ " +
			"or internal/ (servers may import configs, ring, proto and internal/serverkit)",
		applies: func(p string) bool { return server(p) != "" },
		forbids: func(_, i string) bool { return under(i, "supervisor", "appproc", "apps", "examples", "bench", "cmd") },
	},
	{
		says: "the supervisor imports no server but netproc/leftover, and no app",
		why: "the supervisor starts servers as processes and must not link their code; netproc/leftover is the one small package " +
			"netproc exports for undoing what a dead netproc left (its namespace), so that this knowledge stays netproc's",
		applies: func(p string) bool { return under(p, "supervisor") },
		forbids: func(_, i string) bool {
			return under(i, "netproc", "diskproc", "appproc", "apps", "examples", "bench", "internal/serverkit") && !under(i, "netproc/leftover")
		},
	},
	{
		says:    "netproc/leftover imports nothing of saturn but netproc/link",
		why:     "it is the supervisor's only window into netproc, and must not bring the stack with it",
		applies: func(p string) bool { return under(p, "netproc/leftover") },
		forbids: func(_, i string) bool { return ours[i] && !under(i, "netproc/leftover", "netproc/link") },
	},
	{
		says:    "configs and internal/serverkit import nothing of saturn but proto and ring",
		why:     "every component reads the config and every server runs the kit's loop; neither may pull a component in",
		applies: func(p string) bool { return under(p, "configs", "internal/serverkit") },
		forbids: func(_, i string) bool { return ours[i] && !under(i, "configs", "internal/serverkit", "proto", "ring") },
	},
}

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Error      *struct{ Err string }
}

// packages lists the module's packages with `go list`, paths relative.
func packages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Dir,GoFiles,Imports,Error", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Errorf("%s: %s", p.ImportPath, p.Error.Err)
		}
		p.ImportPath = rel(p.ImportPath)
		for k, i := range p.Imports {
			p.Imports[k] = rel(i)
		}
		pkgs = append(pkgs, p)
		ours[p.ImportPath] = true
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; is the test running inside the module?", len(pkgs))
	}
	return pkgs
}

func rel(p string) string {
	if p == module {
		return "."
	}
	return strings.TrimPrefix(p, module+"/")
}

func TestDependencyRules(t *testing.T) {
	pkgs := packages(t)
	for _, r := range rules {
		applied := false
		for _, p := range pkgs {
			if !r.applies(p.ImportPath) {
				continue
			}
			applied = true
			for _, i := range p.Imports {
				if r.forbids(p.ImportPath, i) {
					t.Errorf("%s imports %s, but %s: %s", p.ImportPath, i, r.says, r.why)
				}
			}
		}
		if !applied {
			t.Errorf("the rule %q applies to no package: was a package moved or renamed? Update the rule and docs/design.md", r.says)
		}
	}
}

// The TCP core reads no clock: its time comes in with each input. Imports
// cannot show that (it uses time.Duration), so its files are read.
func TestTCPCoreReadsNoClock(t *testing.T) {
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true,
		"AfterFunc": true, "NewTimer": true, "NewTicker": true, "Tick": true}
	for _, p := range packages(t) {
		if p.ImportPath != "netproc/tcp" && p.ImportPath != "netproc/tcp/seqnum" {
			continue
		}
		fset := token.NewFileSet()
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			timeName := ""
			for _, is := range f.Imports {
				if path, _ := strconv.Unquote(is.Path.Value); path == "time" {
					timeName = "time"
					if is.Name != nil {
						timeName = is.Name.Name
					}
				}
			}
			if timeName == "" {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == timeName && clock[sel.Sel.Name] {
					t.Errorf("%s: time.%s: the TCP core reads no clock; time is passed in with each input (docs/design.md)",
						fset.Position(sel.Pos()), sel.Sel.Name)
				}
				return true
			})
		}
	}
}
