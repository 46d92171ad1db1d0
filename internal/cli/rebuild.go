package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/internal/rootless"
	"github.com/buildguard/buildguard/pin"
	"github.com/buildguard/buildguard/rebuild"
)

// RebuildOptions are the flags of `buildguard rebuild`.
type RebuildOptions struct {
	Trust TrustOptions
	// Source is a checkout of the source; empty: clone the recorded
	// commit (from Repository when set).
	Source     string
	Repository string
	Out        string
	Runtime    string
	Cache      string
	Jobs       int
	// Signing signs the build result (--signing-key) and logs the
	// signature (--signing-config).
	Signing SigningOptions
	JSON    bool
	Image   string
	// Timeout, Memory and Pids are the rebuild's builder.timeout and
	// builder.limits: a provenance does not record the build's, so a
	// rebuild has the defaults unless told. Memory is a quantity (8Gi).
	Timeout time.Duration
	Memory  string
	Pids    int64
	limits  config.Limits
}

// Validate rejects bad flags before anything is read.
func (o *RebuildOptions) Validate(args []string) error {
	if len(args) != 1 {
		return exitcode.UsageErrorf("name one published image as NAME@sha256:... (run: buildguard rebuild --help)")
	}
	o.Image = args[0]
	r, err := pin.ParseRef(o.Image)
	if err != nil {
		return err
	}
	if !r.Pinned() {
		return exitcode.UsageErrorf("%q: no digest; a rebuild compares with one published digest: name the image as NAME@sha256:... (buildguard build prints it)", o.Image)
	}
	if o.Source != "" && o.Repository != "" {
		return exitcode.UsageErrorf("--source and --repository contradict each other: --source is a checkout to use as it is, --repository where to clone the recorded commit from")
	}
	if o.Out == "" {
		return exitcode.UsageErrorf("--out needs a value")
	}
	if err := validateRuntime(o.Runtime); err != nil {
		return err
	}
	if o.Jobs < 0 {
		return exitcode.UsageErrorf("--jobs must be 0 (the core count) or more")
	}
	if o.Timeout < 0 {
		return exitcode.UsageErrorf("--timeout %s: want a positive duration such as 3h (0: builder.timeout's default, %s)", o.Timeout, time.Duration(config.DefaultTimeout))
	}
	if o.Memory != "" {
		q, err := config.ParseQuantity(o.Memory)
		if err != nil || q <= 0 {
			return exitcode.UsageErrorf("--memory %q: want a quantity such as 8Gi or 512Mi", o.Memory)
		}
		o.limits.Memory = q
	}
	if o.Pids < 0 {
		return exitcode.UsageErrorf("--pids %d: want a positive number of processes (0: no limit)", o.Pids)
	}
	o.limits.Pids = o.Pids
	return o.Trust.Validate()
}

func rebuildCommand() *command {
	return &command{
		name:    "rebuild",
		summary: "rebuild a published image from its verified provenance and compare (exit 0 same, 1 not)",
		usage:   "[trust flags] [--source DIR | --repository URL] [--signing-key KEY] [--out DIR] [--json] IMAGE@DIGEST",
		long: `Rebuild an image that 'buildguard build' published (publish.image, with
--signing-key) from the recipe its provenance records, and say whether the
rebuild made the same bits. Nothing is pushed.

1. The image is verified as 'buildguard verify' verifies it, with the same
   trust flags (--key or a keyless identity, --trusted-root or
   --insecure-ignore-tlog, --builder-id ...). The recipe is read only from a
   verified SLSA provenance about the image's digest whose builder is
   buildguard's (https://github.com/buildguard/buildguard/builder/v1): an
   image or statement that does not verify is refused, never rebuilt from.
2. The recipe: the builder image by digest (and each diverse builder), the
   command, environment, working directory, SOURCE_DATE_EPOCH, the source's
   tree digest and git commit, the base, the publish section (the image
   config and annotations) and the dependencies entries the build
   prefetched, which are prefetched and checked against the source's
   lockfiles again.
3. The source: --source DIR, a checkout whose tree digest (the files git
   tracks; see docs/formats.md) must be the recorded one, else the rebuild
   is refused naming both digests and the commit to check out. Without
   --source, the recorded commit is cloned from the recorded repository, or
   from --repository URL (a mirror, a file:// URL or a path), into a
   temporary directory.
4. The build runs as 'buildguard build' runs it (one run of the main
   builder and one of each diverse builder; no varied runs), with the
   evidence directory --out (report.json, provenance.json, vsa.json,
   build-result.json, logs/, runs/). The builder images are not verified
   again: they are pinned by the digests of the verified provenance.
5. The image is made again as the build made it (the same base, config,
   annotations and layer) without pushing it, and its digest compared with
   the published one. rebuild.json in --out says what was found; when the
   output differs, diff/published-vs-rebuilt.json explains how (the
   published output is read from the image's last layer).

With --signing-key the build result (build-result.sigstore.json) is signed:
'buildguard compare' counts it as one independent rebuilder's result.

Exit status: 0 the same image; 1 different (or the rebuild failed), or
refused (the image or its provenance did not verify, the provenance holds
no recipe buildguard can follow, or the source is not the recorded one);
2 a usage error; 3 the rebuild could not complete (registry, runtime).
rebuild.json's "verdict" (same, different, refused) says which.`,
		examples: `  # rebuild from a checkout of the source, trusting the publisher's key
  buildguard rebuild --key signing.pub --trusted-root trusted_root.json \
    --builder-id https://github.com/buildguard/buildguard/builder/v1 \
    --source . registry.example/app@sha256:...

  # from a fresh clone of the recorded commit, signing the result for compare
  COSIGN_PASSWORD=... buildguard rebuild --key signing.pub --trusted-root trusted_root.json \
    --signing-key rebuilder.key --out rebuild-a registry.example/app@sha256:...

  # from a mirror of the repository, for a machine
  buildguard rebuild --json --key signing.pub --insecure-ignore-tlog \
    --repository file:///srv/git/app.git registry.example/app@sha256:...`,
		setup: func(fs *pflag.FlagSet) func(context.Context, []string, IO) error {
			o := &RebuildOptions{}
			fs.StringVar(&o.Source, "source", "", "a checkout of the source in `DIR`, with the recorded tree digest (default: clone the recorded commit)")
			fs.StringVar(&o.Repository, "repository", "", "clone the recorded commit from `URL` (a mirror, file:// URL or path) instead of the recorded repository")
			fs.StringVar(&o.Out, "out", ".buildguard-rebuild", "the evidence `DIR`")
			fs.StringVar(&o.Runtime, "runtime", "", runtimeFlag)
			fs.DurationVar(&o.Timeout, "timeout", 0, "kill the rebuild's build after `D`, as builder.timeout (default 30m: the provenance does not record the build's)")
			fs.StringVar(&o.Memory, "memory", "", "the build's memory limit `Q` (8Gi), as builder.limits.memory (default none: the provenance does not record the build's)")
			fs.Int64Var(&o.Pids, "pids", 0, "the build's process limit `N`, as builder.limits.pids (default none)")
			fs.StringVar(&o.Cache, "cache", "", "rootfs cache `DIR` (default $XDG_CACHE_HOME/buildguard/rootfs)")
			fs.IntVar(&o.Jobs, "jobs", 0, "`N` builds at once (0: the core count)")
			fs.StringVar(&o.Signing.Key, "signing-key", "", "sign the build result with the key `FILE` (cosign key, password in $COSIGN_PASSWORD, or PKCS#8 PEM), for buildguard compare")
			fs.StringVar(&o.Signing.Config, "signing-config", "", "log the build result's signature in the Rekor that the signing config `FILE` names (cosign's format, as `cosign signing-config create` writes it); needs --signing-key")
			o.Trust.AddFlags(fs)
			fs.BoolVar(&o.JSON, "json", false, "print rebuild.json on standard output")
			return func(ctx context.Context, args []string, io IO) error {
				if err := o.Validate(args); err != nil {
					return err
				}
				return runRebuild(ctx, o, io)
			}
		},
	}
}

func runRebuild(ctx context.Context, o *RebuildOptions, io IO) error {
	if done, err := rootless.Enter(ctx); done {
		return err
	}
	warn := func(msg string) { fmt.Fprintln(io.Err, "warning: "+msg) }
	// rebuild has no buildguard.yaml: the flags are the whole signing
	// section.
	o.Signing.FlagsOnly = true
	signer, err := o.Signing.Signer(config.Signing{}, func(string) bool { return true }, warn)
	if err != nil {
		return err
	}
	v, err := o.Trust.Verifier(warn)
	if err != nil {
		return err
	}
	if o.Trust.InsecureIgnoreTlog {
		warn("--insecure-ignore-tlog: the provenance is accepted without proof that it was ever logged publicly")
	}
	opts := rebuild.Options{
		Image: o.Image, Verifier: v, Source: o.Source, Repository: o.Repository, Out: o.Out,
		Runtime: o.Runtime, CacheDir: o.Cache, Jobs: o.Jobs, Signer: signer, Timeout: o.Timeout, Limits: o.limits,
		Remote:   []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("buildguard")},
		Describe: sbomDescriber{}, Environ: os.Environ(),
	}
	if !o.JSON {
		opts.Stream = io.Err
		opts.Progress = &lineProgress{w: io.Err}
	}
	res, err := rebuild.Rebuild(ctx, opts)
	if res != nil {
		if o.JSON {
			if werr := writeJSON(io.Out, res); werr != nil {
				return werr
			}
		} else {
			printRebuild(io.Out, res)
		}
	}
	if err != nil {
		return exitcode.WithCode(exitcode.Of(err), err)
	}
	switch res.Verdict {
	case rebuild.Same:
		return nil
	case rebuild.Refused:
		return exitcode.Failf("refused: %s", res.Reason)
	default:
		return exitcode.Failf("the rebuild differs from %s: %s", o.Image, res.Reason)
	}
}

// printRebuild writes the one-line result, naming the recipe, and what
// explains a difference or a refusal.
func printRebuild(w io.Writer, res *rebuild.Result) {
	switch res.Verdict {
	case rebuild.Same:
		fmt.Fprintf(w, "same      %s: rebuilt bit for bit (image %s, output %s) from %s\n", res.Image, res.Rebuilt.Image, res.Rebuilt.Output, res.Recipe.Summary())
	case rebuild.Different:
		fmt.Fprintf(w, "different %s: %s; recipe: %s\n", res.Image, res.Reason, res.Recipe.Summary())
		if d := res.Difference; d != nil {
			fmt.Fprintf(w, "A is the published output, B the rebuilt one (%s):\n", rebuild.DiffFile)
			printDifference(w, d)
		}
	case rebuild.Refused:
		fmt.Fprintf(w, "refused   %s: %s\n", res.Image, res.Reason)
		for _, r := range res.Refusals {
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  note: %s\n", strings.TrimSpace(n))
	}
}
