package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/pin"
)

// BuildOptions are the flags of `buildguard build`.
type BuildOptions struct {
	// File is the configuration (-f); default buildguard.yaml.
	File string
	// Out is the evidence directory; default .buildguard.
	Out string
	// Runtime replaces builder.runtime when set: auto, crun or runc.
	Runtime string
	// Cache is the rootfs cache directory; empty means the default.
	Cache string
	JSON  bool
	Quiet bool
	// remote holds registry options (tests use them for a loopback registry).
	remote []remote.Option
}

// Validate rejects bad or contradictory flags before anything runs.
func (o *BuildOptions) Validate(args []string) error {
	if len(args) > 0 {
		return usageArgs("build", args)
	}
	if o.File == "" || o.Out == "" {
		return exitcode.UsageErrorf("-f and --out need a value")
	}
	switch o.Runtime {
	case "", builder.RuntimeAuto, builder.RuntimeCrun, builder.RuntimeRunc:
	default:
		return exitcode.UsageErrorf("--runtime %q: want %s, %s or %s", o.Runtime, builder.RuntimeAuto, builder.RuntimeCrun, builder.RuntimeRunc)
	}
	if o.JSON && o.Quiet {
		return exitcode.UsageErrorf("--json and --quiet contradict each other")
	}
	return nil
}

func buildCommand() *command {
	return &command{
		name:    "build",
		summary: "run the configured build step hermetically in the pinned builder image",
		usage:   "[-f buildguard.yaml] [--out DIR] [--runtime auto|crun|runc] [--json]",
		long: `Run the build step of buildguard.yaml (builder.command) once, inside the
builder image, through an OCI runtime, and print the digest of the output
tree.

Every image the file names must be pinned by digest: an unpinned builder,
diverse builder or base image is refused (exit 1) before anything runs, and
each is named. The builder image is fetched by digest, its layers checked
against their digests, and unpacked once per digest into the rootfs cache
($XDG_CACHE_HOME/buildguard/rootfs, else ~/.cache/buildguard/rootfs).

The build runs with no network (a new network namespace with only its own
loopback), new pid, ipc, uts and mount namespaces, the image's root
read-only, the source read-only at builder.workdir, an empty writable /out,
tmpfs /tmp and $HOME, no capabilities and no_new_privs, builder.limits
applied through cgroups where the host allows it (a note says when not),
and only builder.env plus SOURCE_DATE_EPOCH, HOME and the image's PATH in
its environment. SOURCE_DATE_EPOCH is the last commit time of the source
when it is a git checkout, else sourceDateEpoch, else 0.

Runtimes: --runtime (or builder.runtime) auto tries crun, then runc, as found
on PATH; a runtime that cannot start the container is skipped for the next
one, with a note saying why. On hosts with hybrid cgroups crun runs in a
private mount namespace where /sys/fs/cgroup/unified is hidden. An explicit
runtime that is missing or cannot start is an error (exit 3). bwrap, docker
and podman are not supported yet. crun and runc need root.

Written under --out DIR: logs/run-1.log (the build's output, capped at 16 MiB)
and output/ (what the build wrote to /out). This command runs the build
step only: it verifies no signatures, does not rebuild to compare, and
decides nothing beyond the build's own success.`,
		examples: `  # run the build step of ./buildguard.yaml
  buildguard build

  # another file and evidence directory, with runc
  buildguard build -f ci/buildguard.yaml --out /tmp/evidence --runtime runc

  # for a machine: the run as JSON on standard output
  buildguard build --json`,
		setup: func(fs *pflag.FlagSet) func(context.Context, []string, IO) error {
			o := &BuildOptions{}
			fs.StringVarP(&o.File, "file", "f", "buildguard.yaml", "the configuration `FILE`")
			fs.StringVar(&o.Out, "out", ".buildguard", "the evidence `DIR`: logs/ and output/ are written there")
			fs.StringVar(&o.Runtime, "runtime", "", "OCI runtime `NAME`: auto (crun, then runc), crun or runc; replaces builder.runtime")
			fs.StringVar(&o.Cache, "cache", "", "rootfs cache `DIR` (default $XDG_CACHE_HOME/buildguard/rootfs)")
			fs.BoolVar(&o.JSON, "json", false, "print the run as JSON")
			fs.BoolVarP(&o.Quiet, "quiet", "q", false, "do not stream the build's output; print only the digest and problems")
			return func(ctx context.Context, args []string, io IO) error {
				if err := o.Validate(args); err != nil {
					return err
				}
				return runBuild(ctx, o, io)
			}
		},
	}
}

// buildReport is the --json output of `buildguard build`.
type buildReport struct {
	APIVersion      string   `json:"apiVersion"`
	Builder         string   `json:"builder"`
	Runtime         string   `json:"runtime"`
	SourceDateEpoch int64    `json:"sourceDateEpoch"`
	EpochFrom       string   `json:"sourceDateEpochFrom"`
	ExitCode        int      `json:"exitCode"`
	TimedOut        bool     `json:"timedOut,omitempty"`
	OutputDigest    string   `json:"outputDigest,omitempty"`
	Log             string   `json:"log,omitempty"`
	LogTruncated    bool     `json:"logTruncated,omitempty"`
	Notes           []string `json:"notes,omitempty"`
	Error           string   `json:"error,omitempty"`
}

func runBuild(ctx context.Context, o *BuildOptions, io IO) error {
	cfg, err := config.Load(o.File)
	if err != nil {
		return err
	}
	if err := refuseUnpinned(cfg); err != nil {
		return err
	}
	epoch, from, err := builder.SourceDateEpoch(ctx, cfg.Source.Resolved, cfg.SourceDateEpoch)
	if err != nil {
		return err
	}
	logs := filepath.Join(o.Out, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", logs, err)
	}
	outAbs, err := filepath.Abs(o.Out)
	if err != nil {
		return err
	}
	tmpOut, err := os.MkdirTemp(outAbs, ".output-")
	if err != nil {
		return fmt.Errorf("creating the output directory: %w", err)
	}
	if err := os.Chmod(tmpOut, 0o755); err != nil {
		return err
	}
	rt := string(cfg.Builder.Runtime)
	if o.Runtime != "" {
		rt = o.Runtime
	}
	step := builder.Step{
		Command: cfg.Builder.Command, Workdir: cfg.Builder.Workdir, Source: cfg.Source.Resolved, Out: tmpOut,
		Env: cfg.Builder.Env, SourceDateEpoch: epoch, Timeout: time.Duration(cfg.Builder.Timeout), Runtime: rt,
		Memory: int64(cfg.Builder.Limits.Memory), Pids: cfg.Builder.Limits.Pids,
		Log: filepath.Join(logs, "run-1.log"),
	}
	if !o.Quiet && !o.JSON {
		step.Stream, step.Prefix = io.Err, "build | "
	}
	opts := append([]remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("buildguard")}, o.remote...)
	res, err := builder.Build(ctx, cfg.Builder.Image, &builder.Cache{Dir: o.Cache}, step, opts...)
	if res != nil {
		if perr := placeOutput(tmpOut, filepath.Join(outAbs, "output")); perr != nil {
			err = errors.Join(err, perr)
		}
	} else {
		_ = os.RemoveAll(tmpOut)
	}
	return printBuild(io, o, cfg, res, epoch, from, err)
}

// refuseUnpinned is the fail decision (exit 1) for every image of cfg that
// carries no digest, each named with its field and line.
func refuseUnpinned(cfg *config.Config) error {
	var bad []string
	for _, im := range cfg.Images() {
		r, err := pin.ParseRef(im.Ref)
		if err == nil && r.Pinned() {
			continue
		}
		where := im.Field
		if im.Line > 0 {
			where = fmt.Sprintf("%s:%d: %s", cfg.File(), im.Line, im.Field)
		}
		if err != nil {
			return exitcode.WithCode(exitcode.Usage, fmt.Errorf("%s: %w", where, err))
		}
		bad = append(bad, fmt.Sprintf("%s %q", where, im.Ref))
	}
	if len(bad) > 0 {
		return exitcode.Failf("not pinned by digest, so nothing was run (pin with: buildguard pin --write %s):\n  %s",
			cfg.File(), strings.Join(bad, "\n  "))
	}
	return nil
}

// placeOutput renames the finished output directory into place, replacing
// the one a previous run left.
func placeOutput(tmp, final string) error {
	if err := os.RemoveAll(final); err != nil {
		return fmt.Errorf("replacing %s: %w", final, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("moving the output to %s: %w", final, err)
	}
	return nil
}

func printBuild(io IO, o *BuildOptions, cfg *config.Config, res *builder.Result, epoch int64, from string, runErr error) error {
	if o.JSON {
		rep := buildReport{APIVersion: "buildguard/v1", Builder: cfg.Builder.Image, SourceDateEpoch: epoch, EpochFrom: from, ExitCode: -1}
		if res != nil {
			rep.Runtime, rep.ExitCode, rep.TimedOut, rep.Notes = res.Runtime, res.ExitCode, res.TimedOut, res.Notes
			rep.Log, rep.LogTruncated = res.Log, res.LogTruncated
			if res.Output != nil {
				rep.OutputDigest = res.Output.Digest()
			}
		}
		if runErr != nil {
			rep.Error = runErr.Error()
		}
		if err := writeJSON(io.Out, rep); err != nil {
			return err
		}
		return runErr
	}
	if res != nil {
		for _, n := range res.Notes {
			fmt.Fprintf(io.Err, "note: %s\n", n)
		}
		if !o.Quiet {
			fmt.Fprintf(io.Err, "ran %s in %s with %s (SOURCE_DATE_EPOCH=%d from %s) in %s; log: %s\n",
				strings.Join(cfg.Builder.Command, " "), res.Image, res.Runtime, epoch, from, res.Duration.Round(time.Millisecond), res.Log)
		}
		if res.Output != nil && runErr == nil {
			fmt.Fprintln(io.Out, res.Output.Digest())
		}
	}
	return runErr
}
