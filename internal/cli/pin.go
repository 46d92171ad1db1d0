package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/pin"
)

// PinOptions are the flags of `buildguard pin`.
type PinOptions struct {
	Write    bool
	Check    bool
	Update   bool
	Lock     string
	Platform string
	Jobs     int
	JSON     bool
	Quiet    bool
	Files    []string
}

// Validate rejects contradictory or missing flags before anything runs.
func (o *PinOptions) Validate() error {
	if len(o.Files) == 0 {
		return exitcode.UsageErrorf("name at least one file: a Dockerfile, Containerfile or YAML file (run: buildguard pin --help)")
	}
	if o.Check {
		conflicts := []struct {
			flag string
			set  bool
		}{{"--write", o.Write}, {"--update", o.Update}, {"--platform", o.Platform != ""}}
		for _, c := range conflicts {
			if c.set {
				return exitcode.UsageErrorf("--check needs no network and changes nothing; it cannot be combined with %s", c.flag)
			}
		}
	}
	if o.Platform != "" {
		p, err := v1.ParsePlatform(o.Platform)
		if err != nil || p.OS == "" || p.Architecture == "" {
			return exitcode.UsageErrorf("--platform %q: want OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64", o.Platform)
		}
	}
	if o.Jobs < 0 {
		return exitcode.UsageErrorf("--jobs must be 0 (automatic) or more")
	}
	if o.JSON && o.Quiet {
		return exitcode.UsageErrorf("--json and --quiet contradict each other")
	}
	return nil
}

func pinCommand() *command {
	return &command{
		name:    "pin",
		summary: "pin image references in Dockerfiles and YAML to digests; --check them",
		usage:   "[--write] [--check] [--update] [--lock FILE] [--platform OS/ARCH] FILE...",
		long: `Find every image reference in the given files and pin it to the digest the
registry serves now. Without flags, print each reference with its digest and
change nothing.

Files understood: Dockerfiles and Containerfiles (FROM, FROM --platform,
multi-stage builds, ARG defaults used as FROM ${ARG}, COPY --from=IMAGE,
RUN --mount=from=IMAGE), buildguard.yaml (builder, diverse builders, base;
publish.image is a destination and is never pinned), GitHub Actions workflows
(container:, services.*.image, uses: docker://) and Kubernetes or Tekton YAML
(every image: field).

A short name such as golang:1.26 resolves as Docker does
(docker.io/library/golang) but keeps its spelling; a reference without a tag
resolves "latest", is written name:latest@sha256:... and is warned about. By
default a reference pins to its image index (all platforms); --platform pins
to one platform's manifest. Registry credentials come from the Docker config
and credential helpers.

--check needs no network: it lists every unpinned reference and, with a
lockfile (--lock FILE, or ./buildguard.lock when present), every digest the
lockfile does not record, and exits 1 if there is any.`,
		examples: `  # show what each reference resolves to, change nothing
  buildguard pin Dockerfile .github/workflows/ci.yml

  # rewrite the files in place and record a lockfile
  buildguard pin --write --lock buildguard.lock Dockerfile buildguard.yaml

  # in CI: fail when anything is unpinned or disagrees with the lockfile
  buildguard pin --check Dockerfile buildguard.yaml

  # move pins whose tags have moved, and say which
  buildguard pin --update --write Dockerfile`,
		setup: func(fs *pflag.FlagSet) func(context.Context, []string, IO) error {
			o := &PinOptions{}
			fs.BoolVarP(&o.Write, "write", "w", false, "rewrite the files in place (atomically) as name:tag@sha256:...")
			fs.BoolVar(&o.Check, "check", false, "fail (exit 1) on any unpinned reference or lockfile disagreement; no network")
			fs.BoolVar(&o.Update, "update", false, "re-resolve references that already carry a digest and report each that moved")
			fs.StringVar(&o.Lock, "lock", "", "lockfile `FILE` to write (or, with --check, to read; default ./"+pin.DefaultLockFile+" when present)")
			fs.StringVar(&o.Platform, "platform", "", "pin to this platform's manifest (`OS/ARCH`[/VARIANT]) instead of the index")
			fs.IntVar(&o.Jobs, "jobs", 0, "`N` concurrent registry look-ups (0: 4 per core)")
			fs.BoolVar(&o.JSON, "json", false, "print the result as JSON")
			fs.BoolVarP(&o.Quiet, "quiet", "q", false, "print only problems and errors")
			return func(ctx context.Context, args []string, io IO) error {
				o.Files = args
				if err := o.Validate(); err != nil {
					return err
				}
				return runPin(ctx, o, io)
			}
		},
	}
}

// pinReport is the --json output of `buildguard pin`.
type pinReport struct {
	APIVersion string        `json:"apiVersion"`
	References []*pin.Change `json:"references,omitempty"`
	Problems   []pin.Problem `json:"problems,omitempty"`
	Written    []string      `json:"written,omitempty"`
	Lock       string        `json:"lock,omitempty"`
}

func runPin(ctx context.Context, o *PinOptions, io IO) error {
	files := make([]*pin.File, 0, len(o.Files))
	for _, path := range o.Files {
		f, err := pin.ScanFile(path)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	if o.Check {
		return runPinCheck(files, o, io)
	}
	res, err := pin.Pin(ctx, files, pin.Options{
		Platform: o.Platform,
		Update:   o.Update,
		Lock:     o.Lock != "",
		Resolver: &pin.Resolver{Jobs: o.Jobs},
	})
	if err != nil {
		return err
	}
	report := pinReport{APIVersion: "buildguard/v1", References: res.Changes}
	if o.Write {
		contents, err := res.Rewrite()
		if err != nil {
			return err
		}
		if err := res.WriteFiles(); err != nil {
			return err
		}
		for _, f := range files {
			if _, ok := contents[f.Path]; ok {
				report.Written = append(report.Written, f.Path)
			}
		}
	}
	if o.Lock != "" {
		if err := pin.WriteLock(o.Lock, res.Lock); err != nil {
			return err
		}
		report.Lock = o.Lock
	}
	if o.JSON {
		return writeJSON(io.Out, report)
	}
	for _, c := range res.Changes {
		switch {
		case c.Warning:
			fmt.Fprintf(io.Err, "warning: %s: %s: %s\n", c.Pos(), c.Text, c.Note)
			if c.Changed && !o.Quiet {
				fmt.Fprintf(io.Out, "%s: %s -> %s\n", c.Pos(), c.Text, c.Pinned)
			}
		case o.Quiet:
		case c.Changed:
			fmt.Fprintf(io.Out, "%s: %s -> %s", c.Pos(), c.Text, c.Pinned)
			if c.Note != "" {
				fmt.Fprintf(io.Out, " (%s)", c.Note)
			}
			fmt.Fprintln(io.Out)
		default:
			fmt.Fprintf(io.Out, "%s: %s (%s)\n", c.Pos(), c.Text, c.Note)
		}
	}
	if !o.Quiet {
		n := res.Changed()
		switch {
		case o.Write:
			fmt.Fprintf(io.Err, "pinned %d reference(s) in %d file(s)\n", n, len(report.Written))
		case n > 0:
			fmt.Fprintf(io.Err, "%d reference(s) would change; run with --write to rewrite the files\n", n)
		default:
			fmt.Fprintln(io.Err, "every reference is pinned")
		}
		if o.Lock != "" {
			fmt.Fprintf(io.Err, "wrote %s\n", o.Lock)
		}
	}
	return nil
}

func runPinCheck(files []*pin.File, o *PinOptions, io IO) error {
	lockPath := o.Lock
	if lockPath == "" {
		if _, err := os.Stat(pin.DefaultLockFile); err == nil {
			lockPath = pin.DefaultLockFile
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", pin.DefaultLockFile, err)
		}
	}
	var lock *pin.Lock
	if lockPath != "" {
		l, err := pin.ReadLock(lockPath)
		if err != nil {
			return err
		}
		lock = l
	}
	problems, err := pin.Check(files, lock, lockPath)
	if err != nil {
		return err
	}
	if o.JSON {
		if err := writeJSON(io.Out, pinReport{APIVersion: "buildguard/v1", Problems: problems, Lock: lockPath}); err != nil {
			return err
		}
	} else {
		for _, p := range problems {
			fmt.Fprintln(io.Out, p.String())
		}
	}
	if len(problems) > 0 {
		return exitcode.Failf("%d reference(s) not pinned or not matching the lockfile", len(problems))
	}
	if !o.Quiet && !o.JSON {
		n := 0
		for _, f := range files {
			n += len(f.Occurrences)
		}
		fmt.Fprintf(io.Err, "all %d reference(s) in %d file(s) are pinned\n", n, len(files))
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func usageArgs(cmd string, args []string) error {
	return exitcode.UsageErrorf("%s takes no arguments, got %q (run: buildguard %s --help)", cmd, args, cmd)
}
