package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"saturn/proto"
	"saturn/ring"
)

// version is set at link time (-ldflags "-X main.version=..."); otherwise
// the module's version from the build info is used.
var version = ""

func versionString() string {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return v
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print saturn's version and the ABI versions it speaks",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "saturn %s (ring ABI %d, control protocol %d) %s %s/%s\n",
				versionString(), ring.Version, proto.ControlVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
