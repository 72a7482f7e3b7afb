package supervisor

import (
	"debug/buildinfo"
	"path/filepath"

	"saturn/configs"
)

// saturnModule is the module path appproc lives in: a program that links
// appproc lists it as its main module or as a dependency.
const saturnModule = "saturn"

// appType decides when an app counts as running (docs/design.md, "Readiness
// is a message"): configs.AppSimple once its program has started, or
// configs.AppNotify once it attaches or says it is ready. want is what the
// config or `saturn attach --type` asked for; auto ("" too) looks at the
// program: saturn's own binary and any Go program built with saturn's module
// are notify, everything else (a shell script, a program in another
// language, a Go program that does not link saturn) is simple. A program
// that cannot be read is taken as simple: if it cannot be run either, the
// start fails and says why.
func appType(want, path, dir, saturnBinary string) string {
	if want == configs.AppSimple || want == configs.AppNotify {
		return want
	}
	if path == "saturn" || path == saturnBinary {
		return configs.AppNotify
	}
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	if linksSaturn(path) {
		return configs.AppNotify
	}
	return configs.AppSimple
}

// linksSaturn reports whether the program at path is a Go program built
// with saturn's module, by its build information (which a stripped binary
// keeps too).
func linksSaturn(path string) bool {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return false
	}
	if bi.Main.Path == saturnModule {
		return true
	}
	for _, d := range bi.Deps {
		if d.Path == saturnModule {
			return true
		}
	}
	return false
}
