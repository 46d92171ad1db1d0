package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/doctor"
	"github.com/buildguard/buildguard/internal/exitcode"
)

// DoctorOptions are the flags of `buildguard doctor`.
type DoctorOptions struct {
	JSON bool
	Args []string
}

// Validate checks the arguments before anything is read.
func (o *DoctorOptions) Validate() error {
	if len(o.Args) > 0 {
		return usageArgs("doctor", o.Args)
	}
	return nil
}

func doctorCommand() *command {
	return &command{
		name:    "doctor",
		summary: "say what a guarded build needs on this machine, and how to fix it",
		usage:   "[--json]",
		long: `Check what a guarded build needs on this machine and print each check
with its fix: whether a build would run as root or rootless (ranged or
single), an OCI runtime (crun or runc), cgroup limits, overlayfs, user
namespaces, subordinate ids and newuidmap, libfaketime (the time
variation), seccomp, the caches and their free space, the registries
dependencies would be fetched from, git.

No container is started and nothing is fetched: the runtime is found and
asked its version, a user namespace is created for true(1), the registries
are resolved as a build would, not contacted.
A status is ok, warn (a build does without it, and its report says so) or
missing (a build cannot run). See docs/doctor.md.

Exit 0 when the machine is ready (no check missing), 3 when it is not.`,
		examples: `  buildguard doctor
  sudo buildguard doctor
  buildguard doctor --json | jq '.checks[] | select(.status != "ok")'`,
		setup: func(fs *pflag.FlagSet) func(context.Context, []string, IO) error {
			o := &DoctorOptions{}
			fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
			return func(ctx context.Context, args []string, io IO) error {
				o.Args = args
				if err := o.Validate(); err != nil {
					return err
				}
				return printDoctor(io.Out, doctor.Run(ctx, doctor.Options{}), o.JSON)
			}
		},
	}
}

// printDoctor prints r and returns exit 3 when the machine is not ready.
func printDoctor(w io.Writer, r *doctor.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		for _, c := range r.Checks {
			line := fmt.Sprintf("%-8s %s: %s", c.Status, c.Name, c.Detail)
			if c.Fix != "" {
				line += " — fix: " + c.Fix
			}
			fmt.Fprintln(w, line)
		}
		warn := ""
		switch n := r.Warnings(); n {
		case 0:
		case 1:
			warn = " (1 warning)"
		default:
			warn = fmt.Sprintf(" (%d warnings)", n)
		}
		if r.Ready {
			fmt.Fprintf(w, "ready: a guarded build can run on this machine%s\n", warn)
		} else {
			fmt.Fprintf(w, "not ready: missing %s%s\n", strings.Join(r.Missing(), ", "), warn)
		}
	}
	if !r.Ready {
		return exitcode.WithCode(exitcode.Incomplete, fmt.Errorf("this machine cannot run a guarded build: missing %s", strings.Join(r.Missing(), ", ")))
	}
	return nil
}
