// Package guard runs buildguard's main job, the guarded build: every image
// pinned, each verified, the build run hermetically in the pinned builder,
// rebuilt with variations and with independent builders, compared, described
// and decided by policy. Every stage adds to one evidence record, written to
// the evidence directory whatever happens after the configuration loads;
// only the policy package says pass or fail.
package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/deps"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/pin"
	"github.com/buildguard/buildguard/policy"
	"github.com/buildguard/buildguard/reproduce"
	"github.com/buildguard/buildguard/source"
	"github.com/buildguard/buildguard/trust"
)

// Options configure a guarded build.
type Options struct {
	// Config is the loaded buildguard.yaml.
	Config *config.Config
	// Out is the evidence directory.
	Out string
	// Verifier checks the images' signatures and provenance. Nil means no
	// trust material was configured: every image stays unverified, which
	// the policy's "verified" check refuses unless it is waived.
	Verifier *trust.Verifier
	// Runtime replaces builder.runtime when set.
	Runtime string
	// CacheDir is the rootfs cache; empty means the default.
	CacheDir string
	// Jobs bounds builds and verifications running at once; 0 means the
	// core count.
	Jobs int
	// Remote are registry options (authentication, transport).
	Remote []remote.Option
	// Stream receives the builds' output as it comes; nil discards it.
	Stream io.Writer
	// Progress, when set, is told when each stage starts and ends.
	Progress Progress
	// Describe, when set, makes the SBOM of the output (the sbom package
	// does; tests may stand in). Nil leaves the report without one.
	Describe Describer
	// Signer, when set, signs provenance.json and vsa.json into Sigstore
	// bundles beside them, and everything else buildguard signs (the
	// build result, the published image and its statements); with logs
	// (attest.Signer.WithLogs) every signature is logged in them, and a
	// signature that cannot be logged is an error: nothing unlogged is
	// written in its place, and nothing is published.
	Signer *attest.Signer
	// NoPublish keeps the output from being pushed even on pass.
	NoPublish bool
	// AttestOnly never pushes, and writes the build-result statement
	// (build-result.json, signed beside it with Signer) for buildguard
	// compare: see docs/rebuilders.md.
	AttestOnly bool
	// Environ is the environment the dependencies' registries are read
	// from (GOPROXY, the npm configuration), as the ecosystems' own tools
	// read it; the CLI passes its own. Nil: the built-in defaults.
	Environ []string
	// Rebuilders, when set, gates the output on independent rebuilders: a
	// pass becomes fail unless enough of their signed build results agree
	// with the control output (see Rebuilders).
	Rebuilders *Rebuilders
}

// Progress receives stage events.
type Progress interface {
	Start(stage string)
	Done(stage string, d time.Duration, err error)
}

// Describer makes the SBOMs of an output tree into the evidence directory.
type Describer interface {
	Describe(ctx context.Context, tree, out string, sourceDateEpoch int64) (*evidence.SBOMSummary, []policy.Package, error)
}

// Preparer is a Describer that can get ready in the background while the
// builds run; Build calls Prepare once the images are pinned.
type Preparer interface {
	Prepare()
}

// The stages, as progress and timings.json name them.
const (
	StagePin       = "pin"
	StageVerify    = "verify"
	StageBuild     = "build"
	StageCompare   = "compare"
	StageSBOM      = "sbom"
	StagePolicy    = "policy"
	StageWrite     = "evidence"
	ReportFileName = "report.json"
)

// NotBuiltNote is the report's note when an image was refused by
// verification, so that no build ran in it.
const NotBuiltNote = "nothing was built: an image failed verification (or lacks the required provenance), and an untrusted image is never run"

// UnloggedNote is the report's note when signatures are made without a
// signing config.
const UnloggedNote = "signatures carry no transparency-log entry (no signing config): consumers must verify them with --insecure-ignore-tlog; --signing-config (or signing.config) logs them in a Rekor"

// signingRecord is the report's record of how s signs; nil without a
// signer.
func signingRecord(s *attest.Signer) *evidence.Signing {
	if s == nil {
		return nil
	}
	r := &evidence.Signing{KeyID: s.KeyID(), Tlog: evidence.TlogNone}
	for _, l := range s.Logs() {
		r.Logged, r.Tlog = true, evidence.TlogRekor
		r.Logs = append(r.Logs, evidence.SigningLog{URL: l.URL, APIVersion: l.APIVersion})
	}
	return r
}

// Result is what a guarded build found.
type Result struct {
	Report  *evidence.Report
	Timings *evidence.Timings
	Outcome *reproduce.Outcome
	// Output is the control run's output directory.
	Output string
}

// Build runs the guarded build and writes the evidence directory. The
// error is nil when a decision was made (pass or fail: see the report); it
// is a usage error (exit 2) when nothing could be attempted, and otherwise
// an error that kept the guard from deciding (exit 3), in which case the
// evidence directory still says, with decision "error", what happened.
func Build(ctx context.Context, opts Options) (*Result, error) {
	cfg := opts.Config
	pol, err := policy.New(cfg.Policy)
	if err != nil {
		return nil, err
	}
	if opts.Out, err = filepath.Abs(opts.Out); err != nil {
		return nil, err
	}
	g := &run{opts: opts, cfg: cfg, pol: pol, report: evidence.New(), timings: &evidence.Timings{}}
	g.report.Source = &evidence.Source{Path: cfg.Source.Text}
	g.report.Signing = signingRecord(opts.Signer)
	if g.report.Signing != nil && !g.report.Signing.Logged {
		g.report.Notes = append(g.report.Notes, UnloggedNote)
	}
	for _, im := range cfg.Images() {
		ref, perr := pin.ParseRef(im.Ref)
		g.report.Images = append(g.report.Images, evidence.Image{Role: string(im.Role), Ref: im.Ref, Digest: ref.Digest, Pinned: perr == nil && ref.Pinned()})
	}
	err = g.pipeline(ctx)
	if err == nil && opts.Rebuilders != nil {
		err = g.stage(StageRebuilders, func() error { return g.checkRebuilders() })
	}
	if err != nil {
		g.fail(err)
	}
	err = g.finish(ctx, err)
	if opts.AttestOnly {
		if berr := g.stage(StageBuildResult, func() error { return g.buildResult(ctx) }); berr != nil {
			g.fail(berr)
			err = errors.Join(err, berr)
		}
	}
	if werr := g.stage(StageWrite, func() error { return g.write() }); werr != nil {
		return g.result(), fmt.Errorf("writing the evidence: %w", werr)
	}
	return g.result(), err
}

type run struct {
	opts    Options
	cfg     *config.Config
	pol     *policy.Policy
	report  *evidence.Report
	timings *evidence.Timings
	outcome *reproduce.Outcome
	output  string
	// statements are the attestations, once made.
	statements *statements
	pkgs       []policy.Package
	// deps is what the prefetch stage prepared for the builds.
	deps  *deps.Result
	diffs map[string][]byte
	// source is the source as read, once read.
	source *source.Tree
}

func (g *run) result() *Result {
	return &Result{Report: g.report, Timings: g.timings, Outcome: g.outcome, Output: g.output}
}

// stage times f and tells the progress.
func (g *run) stage(name string, f func() error) error {
	if g.opts.Progress != nil {
		g.opts.Progress.Start(name)
	}
	begin := time.Now()
	err := f()
	d := time.Since(begin)
	g.timings.Stages = append(g.timings.Stages, evidence.Stage{Name: name, Seconds: d.Seconds()})
	if g.opts.Progress != nil {
		g.opts.Progress.Done(name, d, err)
	}
	return err
}

// pipeline runs the stages up to the decision. It returns an error only
// when the guard could not decide.
func (g *run) pipeline(ctx context.Context) error {
	var ok bool
	_ = g.stage(StagePin, func() error { ok = g.pol.Preflight(g.report); return nil })
	if !ok {
		return nil // a fail decision: nothing runs
	}
	if p, ok := g.opts.Describe.(Preparer); ok {
		p.Prepare()
	}
	if err := g.stage(StageVerify, func() error { return g.verify(ctx) }); err != nil {
		return err
	}
	if !g.pol.Trusted(g.report) {
		// An image that is not trusted is never used: a fail decision
		// without running anything.
		g.report.Notes = append(g.report.Notes, NotBuiltNote)
		return g.decide(ctx)
	}
	if len(g.cfg.Dependencies) > 0 {
		if err := g.stage(StagePrefetch, func() error { return g.prefetch(ctx) }); err != nil {
			return err
		}
		if !g.pol.DependenciesUsable(g.report) {
			g.report.Notes = append(g.report.Notes, NotBuiltDepsNote)
			return g.decide(ctx)
		}
	}
	if err := g.stage(StageBuild, func() error { return g.build(ctx) }); err != nil {
		return err
	}
	if g.outcome == nil || !g.succeeded() {
		return g.decide(ctx)
	}
	if err := g.stage(StageCompare, func() error { return g.compare() }); err != nil {
		return err
	}
	if g.opts.Describe != nil {
		if err := g.stage(StageSBOM, func() error { return g.describe(ctx) }); err != nil {
			return err
		}
	}
	return g.decide(ctx)
}

func (g *run) decide(ctx context.Context) error {
	return g.stage(StagePolicy, func() error {
		g.pol.Decide(ctx, policy.Input{Report: g.report, Packages: g.pkgs, Config: g.cfg})
		return nil
	})
}

func (g *run) describe(ctx context.Context) error {
	sum, pkgs, err := g.opts.Describe.Describe(ctx, g.output, g.opts.Out, g.report.Source.SourceDateEpoch)
	if err != nil {
		return fmt.Errorf("making the SBOM: %w", err)
	}
	g.report.SBOM, g.pkgs = sum, pkgs
	return nil
}

// rel names a path inside the evidence directory relative to it, so that
// report.json does not depend on where the directory is.
func (g *run) rel(p string) string {
	if r, err := filepath.Rel(g.opts.Out, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}
