package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"
)

// Version is set at link time (-X github.com/buildguard/buildguard/internal/cli.Version=v1.2.3);
// otherwise the module version from the build info is shown.
var Version = ""

// VersionInfo is what `buildguard version` reports.
type VersionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	Revision  string `json:"revision,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
}

func versionInfo() VersionInfo {
	v := VersionInfo{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

func versionCommand() *command {
	return &command{
		name:     "version",
		summary:  "print the version and build information",
		usage:    "[--json]",
		long:     "Print buildguard's version, the Go version it was built with, and the source revision when known.",
		examples: "  buildguard version\n  buildguard version --json",
		setup: func(fs *pflag.FlagSet) func(context.Context, []string, IO) error {
			asJSON := fs.Bool("json", false, "print as JSON")
			return func(_ context.Context, args []string, io IO) error {
				if len(args) > 0 {
					return usageArgs("version", args)
				}
				v := versionInfo()
				if *asJSON {
					enc := json.NewEncoder(io.Out)
					enc.SetIndent("", "  ")
					return enc.Encode(v)
				}
				fmt.Fprintf(io.Out, "buildguard %s (%s, %s)", v.Version, v.GoVersion, v.Platform)
				if v.Revision != "" {
					fmt.Fprintf(io.Out, " revision %s", v.Revision)
					if v.Modified {
						fmt.Fprint(io.Out, " (modified)")
					}
				}
				fmt.Fprintln(io.Out)
				return nil
			}
		},
	}
}
