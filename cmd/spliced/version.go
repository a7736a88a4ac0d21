package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version describes the build from the binary's build info: the module version (or the
// VCS revision of a development build) and the Go version.
func version() string {
	v, rev, dirty := "(devel)", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
	}
	if rev != "" {
		v += fmt.Sprintf(" (%.12s%s)", rev, dirty)
	}
	return fmt.Sprintf("spliced %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	c := newCommand("version", "Usage: spliced version\n\nPrints the version of spliced and of Go it was built with.\n", stdout, stderr)
	if code := c.parse(args); code >= 0 {
		return code
	}
	fmt.Fprintln(stdout, version())
	return 0
}
