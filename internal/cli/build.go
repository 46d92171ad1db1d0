package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/guard"
	"github.com/buildguard/buildguard/internal/atomicfile"
	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/internal/rootless"
	"github.com/buildguard/buildguard/policy"
	"github.com/buildguard/buildguard/sbom"
	"github.com/buildguard/buildguard/trust"
)

// BuildOptions are the flags of `buildguard build`.
type BuildOptions struct {
	// File is the configuration (-f); default buildguard.yaml.
	File string
	// Out is the evidence directory; default .buildguard.
	Out string
	// Runtime replaces builder.runtime when set: auto, crun, runc or runsc.
	Runtime string
	// Cache is the rootfs cache directory; empty means the default.
	Cache string
	// Jobs bounds builds and verifications at once; 0 means the core count.
	Jobs      int
	NoPublish bool
	// AttestOnly never pushes and writes build-result.json (signed with
	// --signing-key) for buildguard compare.
	AttestOnly bool
	// Rebuilders gate the publish on independent rebuilders' signed
	// build results (compare.go).
	Rebuilders RebuildersOptions
	// Signing are --signing-key and --signing-config: with a key,
	// provenance.json and vsa.json are signed (and the build result, the
	// published image and its statements); with a signing config, every
	// signature is logged in its Rekor.
	Signing SigningOptions
	JSON    bool
	Quiet   bool
	// Trust holds the trust flags; set ones replace buildguard.yaml's trust
	// section field by field (and --builder-id, --source-uri the policy's).
	Trust TrustOptions
	// Limits are the --max-... flags; each one given replaces its field of
	// buildguard.yaml's limits section.
	Limits LimitOptions

	changed func(flag string) bool
	// remote holds registry options (tests use them for a loopback registry).
	remote []remote.Option
}

// runtimeFlag is the help of --runtime, which build and rebuild share.
const runtimeFlag = "OCI runtime `NAME`: auto (crun, then runc), crun, runc or runsc (gVisor)"

// validateRuntime checks --runtime's value.
func validateRuntime(name string) error {
	switch name {
	case "", builder.RuntimeAuto, builder.RuntimeCrun, builder.RuntimeRunc, builder.RuntimeRunsc:
		return nil
	}
	return exitcode.UsageErrorf("--runtime %q: want %s, %s, %s or %s", name, builder.RuntimeAuto, builder.RuntimeCrun, builder.RuntimeRunc, builder.RuntimeRunsc)
}

// Validate rejects bad or contradictory flags before anything runs.
func (o *BuildOptions) Validate(args []string) error {
	if len(args) > 0 {
		return usageArgs("build", args)
	}
	if o.File == "" || o.Out == "" {
		return exitcode.UsageErrorf("-f and --out need a value")
	}
	if err := validateRuntime(o.Runtime); err != nil {
		return err
	}
	if o.Jobs < 0 {
		return exitcode.UsageErrorf("--jobs must be 0 (the core count) or more")
	}
	if o.JSON && o.Quiet {
		return exitcode.UsageErrorf("--json and --quiet contradict each other")
	}
	return o.Rebuilders.Validate(o.AttestOnly)
}

func buildCommand() *command {
	return &command{
		name:    "build",
		summary: "the guarded build: pin check, verify, hermetic build, rebuilds, compare, decide",
		usage:   "[-f buildguard.yaml] [--out DIR] [trust flags] [--max-... limits] [--runtime auto|crun|runc|runsc] [--json]",
		long: `Run the guarded build that buildguard.yaml describes, and decide.

1. Every builder, diverse builder and base image must be pinned by digest:
   an unpinned one is a fail decision (exit 1) before anything runs, each
   named.
2. Each image is verified (signatures, transparency-log entries, SLSA
   provenance) against the trust section or the trust flags, which are
   named as cosign names them; a flag replaces the field of the same
   meaning. Without trust material every image is unverified, which the
   policy refuses unless "verified" is waived.
3. The build command runs in the builder image through an OCI runtime: no
   network, the image's root read-only, the source read-only at
   builder.workdir, an empty /out, a clean environment. Images are fetched by
   digest and unpacked once per digest into the rootfs cache.
4. It runs again with variations (reproduce.variations: path, time zone,
   locale, umask, host and domain name, uid, environment order, an extra
   variable) and once in each diverse builder; every output must be
   bit-identical to the first. A difference is explained (diff/), and
   bisected to the variation that causes it; an independent builder that
   disagrees is named with both digests: the sign of a compromised builder.
5. The policy decides (built-in checks and CEL rules; see docs/policy.md).

Runtimes: --runtime (or builder.runtime) auto tries crun, then runc, as found
on PATH; a runtime that cannot start the container is skipped for the next,
with a note. runsc (gVisor) runs the build on a kernel of its own in user
space, so that the build never reaches the host's; auto never picks it
(slower to start), name it. bwrap, docker and podman are not supported yet.

The evidence directory (--out, default .buildguard): report.json (the
decision, byte-identical for the same inputs), timings.json, decision.md,
logs/run-N.log, diff/, runs/run-N/out (each run's output), and the output's
SBOMs (sbom.spdx.json, sbom.cdx.json; byte-identical for the same inputs),
and the in-toto statements provenance.json (SLSA Provenance v1) and
vsa.json (SLSA VSA v1, the decision), byte-identical for the same inputs,
written whatever the decision. With --signing-key they are signed as
Sigstore bundles beside them (provenance.sigstore.json, vsa.sigstore.json).

Signing: --signing-key (or signing.key) signs; the password of a cosign
key is read from $COSIGN_PASSWORD. --signing-config FILE (or
signing.config), a Sigstore signing config in cosign v3's format (as
"cosign signing-config create" writes it), logs every signature buildguard
makes in the Rekor log it names (API v2, or v1 when it names only v1):
the bundles then carry the entry and its inclusion proof, and a consumer
verifies them with the log required (--trusted-root holding the log's
key, no --insecure-ignore-tlog). A log that is down or refuses an entry
fails the build (exit 3) and nothing is published: never an unlogged
signature in place of a logged one. Key signing only: a Fulcio CA or
timestamp authority in the config is not used, and said so. Without a
signing config the bundles carry no log entry; report.json says so
("signing": {"logged": false, "tlog": "none"}).

On pass only, with publish.image set and without --no-publish, the control
run's output is pushed: as an image layered on the pinned base when base is
set, else as an OCI artifact; the SBOMs, statements and bundles are attached
as OCI referrers (with the sha256-<hex> tag fallback where the registry has
no referrers API), and the pushed digest is printed and recorded in
report.json. On fail or error nothing is pushed. See docs/formats.md.

Everything read from an image, a registry or a build is bounded (image size,
layers, tar entries, path length and depth, build log, output entries,
referrers, signature manifests and bundles, explanations of a mismatch). An
input over a bound is refused, and the message names the buildguard.yaml
field (limits section) and the --max-... flag that raise it; a flag replaces
the field. See docs/limits.md.

--attest-only is for independent rebuilders (docs/rebuilders.md): the same
pipeline, never a push, and build-result.json (an in-toto statement about
the control run's output and the recipe that made it) in the evidence
directory, signed as build-result.sigstore.json with --signing-key.
buildguard compare accepts only signed ones. The exit code is the local
decision's.

--rebuilders FILE (repeatable; a file or a glob pattern) gates the
publish on those signed build results: a pass becomes fail (rule
"rebuilders") unless at least --rebuilders-threshold distinct runners whose
keys are given with --rebuilder-key attest this build's own control output
for the same recipe, as buildguard compare --expect checks it
(rebuilders.json in the evidence directory).`,
		examples: `  # the guarded build of ./buildguard.yaml, trusting a cosign key
  buildguard build --key cosign.pub --trusted-root trusted_root.json

  # another file and evidence directory, with runc
  buildguard build -f ci/buildguard.yaml --out /tmp/evidence --runtime runc

  # for a machine: the report on standard output
  buildguard build --json > report.json

  # publish with every signature logged in the Rekor the signing config names
  COSIGN_PASSWORD=... buildguard build --signing-key cosign.key --signing-config signing_config.json

  # one independent rebuilder: build, push nothing, sign the build result
  COSIGN_PASSWORD=... buildguard build --attest-only --signing-key runner-a.key --out runner-a

  # publish only if 2 of the 3 rebuilders attest this build's output
  buildguard build --rebuilders 'rebuilders/*/build-result.sigstore.json' --rebuilders-threshold 2 \
    --rebuilder-key runner-a.pub --rebuilder-key runner-b.pub --rebuilder-key runner-c.pub`,
		setup: func(fs *pflag.FlagSet) func(context.Context, []string, IO) error {
			o := &BuildOptions{changed: fs.Changed}
			fs.StringVarP(&o.File, "file", "f", "buildguard.yaml", "the configuration `FILE`")
			fs.StringVar(&o.Out, "out", ".buildguard", "the evidence `DIR`")
			fs.StringVar(&o.Runtime, "runtime", "", runtimeFlag+"; replaces builder.runtime")
			fs.StringVar(&o.Cache, "cache", "", "rootfs cache `DIR` (default $XDG_CACHE_HOME/buildguard/rootfs)")
			fs.IntVar(&o.Jobs, "jobs", 0, "`N` builds and verifications at once (0: the core count)")
			fs.BoolVar(&o.NoPublish, "no-publish", false, "never push, whatever the decision")
			fs.BoolVar(&o.AttestOnly, "attest-only", false, "never push; write build-result.json (signed with --signing-key) for buildguard compare")
			o.Rebuilders.AddFlags(fs)
			o.Signing.AddFlags(fs)
			o.Trust.AddFlags(fs)
			o.Limits.AddFlags(fs, BuildCommandLimits)
			fs.BoolVar(&o.JSON, "json", false, "print report.json on standard output")
			fs.BoolVarP(&o.Quiet, "quiet", "q", false, "print only the verdict and problems")
			return func(ctx context.Context, args []string, io IO) error {
				if err := o.Validate(args); err != nil {
					return err
				}
				return runBuild(ctx, o, io)
			}
		},
	}
}

func runBuild(ctx context.Context, o *BuildOptions, io IO) error {
	// An unprivileged user's build runs in a user namespace of its own.
	if done, err := rootless.Enter(ctx); done {
		return err
	}
	rebuilders, err := o.Rebuilders.Load()
	if err != nil {
		return err
	}
	cfg, err := config.Load(o.File)
	if err != nil {
		return err
	}
	o.Limits.Apply(&cfg.Limits)
	verifier, err := o.verifier(cfg, func(msg string) { fmt.Fprintf(io.Err, "warning: %s\n", msg) })
	if err != nil {
		return err
	}
	signer, err := o.Signing.Signer(cfg.Signing, o.changed, func(msg string) { fmt.Fprintf(io.Err, "warning: %s\n", msg) })
	if err != nil {
		return err
	}
	opts := guard.Options{
		Config: cfg, Out: o.Out, Verifier: verifier, Runtime: o.Runtime, CacheDir: o.Cache, Jobs: o.Jobs,
		Remote:   append([]remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("buildguard")}, o.remote...),
		Describe: sbomDescriber{}, NoPublish: o.NoPublish, Signer: signer, AttestOnly: o.AttestOnly, Rebuilders: rebuilders,
		Environ: os.Environ(),
	}
	switch {
	case o.Quiet || o.JSON:
	case isTerminal(io.Err):
		p := newTTYProgress(io.Err)
		opts.Stream, opts.Progress = p, p
	default:
		opts.Stream = io.Err
		opts.Progress = &lineProgress{w: io.Err}
	}
	res, err := guard.Build(ctx, opts)
	if res == nil {
		return err
	}
	appendStepSummary(o.Out)
	if o.JSON {
		data, merr := res.Report.Marshal()
		if merr != nil {
			return merr
		}
		if _, werr := io.Out.Write(data); werr != nil {
			return werr
		}
	} else {
		printVerdict(io, o, res.Report)
		if p := res.Report.Published; p != nil {
			fmt.Fprintf(io.Out, "%s@%s\n", p.Image, p.Digest)
		}
	}
	if err != nil {
		return exitcode.WithCode(exitcode.Incomplete, err)
	}
	switch res.Report.Decision {
	case evidence.Pass:
		return nil
	case evidence.Fail:
		return exitcode.Failf("decision: fail (%d violation(s)); see %s", len(res.Report.Violations), filepath.Join(o.Out, "decision.md"))
	}
	return exitcode.WithCode(exitcode.Incomplete, fmt.Errorf("the guard could not decide: %s", strings.Join(res.Report.Errors, "; ")))
}

// verifier builds the trust policy from buildguard.yaml's trust section,
// with each trust flag that was given replacing the field of the same
// meaning. No trust material at all gives a nil verifier.
func (o *BuildOptions) verifier(cfg *config.Config, warn func(string)) (*trust.Verifier, error) {
	t := o.Trust
	if !o.changed("key") {
		t.Keys = nil
		for _, k := range cfg.Trust.Keys {
			t.Keys = append(t.Keys, k.Resolved)
		}
	}
	if !o.changed("trusted-root") {
		t.TrustedRoot = cfg.Trust.TrustedRoot.Resolved
	}
	if !o.changed("rekor-url") {
		t.RekorURL = cfg.Trust.Rekor.URL
	}
	if !o.changed("checkpoints") {
		t.Checkpoints = cfg.Trust.Checkpoints.Resolved
	}
	t.InsecureIgnoreTlog = t.InsecureIgnoreTlog || cfg.Trust.InsecureIgnoreTlog
	if o.changed("builder-id") {
		cfg.Policy.BuilderIDs = t.BuilderIDs
	} else {
		t.BuilderIDs = cfg.Policy.BuilderIDs
	}
	if o.changed("source-uri") {
		cfg.Policy.SourceURIs = t.SourceURIs
	} else {
		t.SourceURIs = cfg.Policy.SourceURIs
	}
	if o.changed("require-vsa") {
		cfg.Policy.RequireVSA = t.RequireVSA
	} else {
		t.RequireVSA = cfg.Policy.RequireVSA
	}
	for _, id := range cfg.Trust.Identities {
		t.identities = append(t.identities, trust.Identity{Issuer: id.Issuer, IssuerRegExp: id.IssuerRegExp, Subject: id.Subject, SubjectRegExp: id.SubjectRegExp})
	}
	if len(t.Keys) == 0 && len(t.identities) == 0 && !t.keyless() {
		return nil, nil
	}
	if t.TrustedRoot == "" && !t.InsecureIgnoreTlog {
		return nil, exitcode.UsageErrorf("trust.trustedRoot (or --trusted-root FILE) is needed to verify transparency-log entries (or waive them, insecurely, with insecureIgnoreTlog)")
	}
	t.Limits = TrustLimitsOf(cfg.Limits)
	v, err := t.Verifier(warn)
	if err != nil {
		return nil, exitcode.WithCode(exitcode.Usage, err)
	}
	return v, nil
}

// printVerdict ends a build with the one-line verdict, what failed, and
// where the evidence is.
func printVerdict(io IO, o *BuildOptions, r *evidence.Report) {
	w := io.Err
	switch r.Decision {
	case evidence.Pass:
		if len(r.Waived) > 0 {
			// Never claim a check that did not run.
			fmt.Fprintf(w, "PASS with waived checks (%s): every other check held\n", strings.Join(r.Waived, ", "))
		} else {
			fmt.Fprintln(w, "PASS: pinned, verified, reproducible and agreed by every builder")
		}
	case evidence.Fail:
		fmt.Fprintf(w, "FAIL: %d violation(s)\n", len(r.Violations))
	default:
		fmt.Fprintln(w, "ERROR: the guard could not complete; nothing was published")
	}
	if !o.Quiet || r.Decision != evidence.Pass {
		for _, v := range r.Violations {
			fmt.Fprintf(w, "  - %s: %s\n", v.Rule, v.Message)
		}
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  - could not complete: %s\n", e)
		}
	}
	if !o.Quiet {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	fmt.Fprintf(w, "evidence: %s\n", filepath.Join(o.Out, "report.json"))
}

// sbomDescriber makes the output's SBOMs with the sbom package (the only
// one that imports syft) and writes them into the evidence directory.
type sbomDescriber struct{}

// Prepare readies syft while the builds run.
func (sbomDescriber) Prepare() { sbom.Prepare() }

func (sbomDescriber) Describe(ctx context.Context, tree, out string, epoch int64) (*evidence.SBOMSummary, []policy.Package, error) {
	res, err := sbom.Generate(ctx, tree, sbom.Options{SourceDateEpoch: epoch, Name: "output"})
	if err != nil {
		return nil, nil, err
	}
	var files []string
	for _, f := range []sbom.Format{sbom.SPDXJSON, sbom.CycloneDXJSON} {
		doc, ok := res.Documents[f]
		if !ok {
			continue
		}
		if err := atomicfile.Write(filepath.Join(out, f.FileName()), doc, 0o644); err != nil {
			return nil, nil, err
		}
		files = append(files, f.FileName())
	}
	pkgs := make([]policy.Package, len(res.Packages))
	for i, p := range res.Packages {
		pkgs[i] = policy.Package(p)
	}
	return res.Summary(files...), pkgs, nil
}

// appendStepSummary appends decision.md to $GITHUB_STEP_SUMMARY when a
// GitHub Actions job provides one. A failure to do so does not change the
// decision, so it is only reported.
func appendStepSummary(out string) {
	path := os.Getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return
	}
	md, err := os.ReadFile(filepath.Join(out, "decision.md"))
	if err != nil {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644) //nolint:gosec // the path GitHub Actions gives the job
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: $GITHUB_STEP_SUMMARY: %v\n", err)
		return
	}
	defer f.Close()
	if _, err := f.Write(append(md, '\n')); err != nil {
		fmt.Fprintf(os.Stderr, "warning: $GITHUB_STEP_SUMMARY: %v\n", err)
	}
}
