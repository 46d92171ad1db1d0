package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/internal/atomicfile"
	"github.com/buildguard/buildguard/reproduce"
)

// NoTrustProblem is what an image says when no trust material was given.
const NoTrustProblem = "not verified: no trust material is configured (set trust.keys, trust.identities or trust.trustedRoot, or pass --key or --certificate-identity)"

// verify checks every image concurrently with the configured trust.
func (g *run) verify(ctx context.Context) error {
	imgs := g.report.Images
	if g.opts.Verifier == nil {
		for i := range imgs {
			imgs[i].Problems = append(imgs[i].Problems, NoTrustProblem)
		}
		return nil
	}
	refs := make([]string, len(imgs))
	for i, im := range imgs {
		refs[i] = im.Ref
	}
	results, errs := g.opts.Verifier.VerifyImages(ctx, refs, g.opts.Jobs)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("verifying the images: %w", err)
	}
	for i, res := range results {
		ev := res.Evidence(imgs[i].Role)
		ev.Ref = imgs[i].Ref
		imgs[i] = ev
	}
	return nil
}

// build runs the builds: the control, the varied runs and the diverse
// builders, through the reproduce package.
func (g *run) build(ctx context.Context) error {
	cfg := g.cfg
	src, err := g.readSource(ctx)
	if err != nil {
		return err
	}
	epoch, from, err := builder.SourceDateEpoch(ctx, cfg.Source.Resolved, cfg.SourceDateEpoch)
	if err != nil {
		return err
	}
	if src.Git != nil && (from == builder.EpochFromEnv || from == builder.EpochFromDefault) {
		// builder's own git look failed (a checkout owned by another
		// user): the commit read here comes before the environment
		epoch, from = src.Git.CommitTime, builder.EpochFromGit
	}
	g.report.Source.SourceDateEpoch = epoch
	if from == builder.EpochFromDefault {
		g.report.Notes = append(g.report.Notes, "SOURCE_DATE_EPOCH is 0: the source is not a git checkout and sourceDateEpoch is not set")
	}

	rt := string(cfg.Builder.Runtime)
	if g.opts.Runtime != "" {
		rt = g.opts.Runtime
	}
	base := builder.Step{
		Command: cfg.Builder.Command, Workdir: cfg.Builder.Workdir, Source: cfg.Source.Resolved,
		Env: cfg.Builder.Env, SourceDateEpoch: epoch, Timeout: time.Duration(cfg.Builder.Timeout), Runtime: rt,
		Memory: int64(cfg.Builder.Limits.Memory), Pids: cfg.Builder.Limits.Pids, LimitsRequired: cfg.Builder.Limits.Required,
		MaxLog: int64(cfg.Limits.BuildLogBytes), MaxOutputEntries: cfg.Limits.OutputEntries,
		Scratch: int64(cfg.Builder.Limits.Scratch),
	}
	base = g.withDependencies(base)
	g.report.Source.Scratch = &evidence.Scratch{Limit: base.ScratchLimit(), Enforcement: builder.ScratchEnforcement}
	cache := &builder.Cache{Dir: g.opts.CacheDir, Limits: BuilderLimits(cfg.Limits)}
	b := reproduce.BuilderFunc(func(ctx context.Context, image string, s builder.Step) (*builder.Result, error) {
		if g.opts.Stream != nil {
			s.Stream, s.Prefix = g.opts.Stream, filepath.Base(filepath.Dir(s.Out))+" | "
		}
		return builder.Build(ctx, image, cache, s, g.opts.Remote...)
	})
	var diverse []string
	for _, d := range cfg.Reproduce.Diverse {
		diverse = append(diverse, d.Image)
	}
	variations := make([]string, len(cfg.Reproduce.Variations))
	for i, v := range cfg.Reproduce.Variations {
		variations[i] = string(v)
	}
	runsDir, logDir := filepath.Join(g.opts.Out, "runs"), filepath.Join(g.opts.Out, "logs")
	for _, d := range []string{runsDir, logDir, filepath.Join(g.opts.Out, "diff")} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("clearing %s: %w", d, err)
		}
	}
	out, err := reproduce.Reproduce(ctx, b, base, reproduce.Options{
		Image: cfg.Builder.Image, Diverse: diverse, Runs: cfg.Reproduce.Runs, Variations: variations,
		Jobs: g.opts.Jobs, Dir: runsDir, LogDir: logDir, Explain: ExplainLimits(cfg.Limits),
	})
	g.outcome = out
	if out != nil {
		g.record(out)
	}
	var be *builder.BuildError
	if errors.As(err, &be) {
		return nil // a build that exited non-zero is recorded; the policy decides
	}
	return err
}

// BuilderLimits are the limits section's bounds on a builder image, for
// builder.Cache; a zero field keeps the builder's default.
func BuilderLimits(l config.InputLimits) builder.Limits {
	return builder.Limits{
		MaxBytes: int64(l.ImageBytes), MaxEntries: l.TarEntries, MaxPathLen: toInt(l.PathLength),
		MaxDepth: toInt(l.PathDepth), MaxLayers: toInt(l.Layers),
	}
}

// ExplainLimits are the limits section's bounds on explaining a mismatch,
// for reproduce; a zero field keeps reproduce's default.
func ExplainLimits(l config.InputLimits) reproduce.Limits {
	return reproduce.Limits{MaxFileBytes: int64(l.DiffFileBytes), MaxDiffLines: toInt(l.DiffLines), MaxItems: toInt(l.DiffFiles)}
}

// toInt converts a count that config.Validate bounds to 2^31-1; anything
// larger (from a Config never validated) is clamped to that bound, never
// wrapped to a negative or small limit.
func toInt(n int64) int {
	return int(min(n, 1<<31-1))
}

// record copies the runs and mismatches into the report.
func (g *run) record(out *reproduce.Outcome) {
	g.report.Runs = g.report.Runs[:0]
	g.timings.Runs = g.timings.Runs[:0]
	for _, r := range out.Runs {
		er := evidence.Run{Index: r.Index, Purpose: r.Purpose, Diverse: r.Diverse, Variations: r.Variations, Mechanisms: r.Mechanisms, Log: g.rel(r.Log), ExitCode: -1}
		if r.Result != nil {
			er.Builder, er.ExitCode, er.Sandbox = r.Result.Image, r.Result.ExitCode, r.Result.Sandbox
			g.timings.Runs = append(g.timings.Runs, evidence.RunTiming{Index: r.Index, Seconds: r.Result.Duration.Seconds()})
			if r.Result.Output != nil {
				er.OutputDigest = r.Result.Output.Digest()
			}
		}
		g.report.Runs = append(g.report.Runs, er)
	}
	if len(out.Runs) > 0 {
		g.output = out.Runs[0].Out
	}
	// The outcome's notes carry the builder's (a log cut at its bound, a
	// runtime fallen back from), each once with the runs it concerns.
	g.report.Notes = append(g.report.Notes, out.Notes...)
}

// succeeded reports whether every run built, but for the failures that
// are findings: a varied run explained by a varied-run-failed mismatch, and
// the bisection runs that named its variation.
func (g *run) succeeded() bool {
	finding := map[int]bool{}
	for _, m := range g.outcome.Mismatches {
		if m.Kind == reproduce.KindVariedRunFailed {
			finding[m.RunB] = true
		}
	}
	for _, r := range g.outcome.Runs {
		if finding[r.Index] || (r.Purpose == reproduce.PurposeBisect && r.Result != nil) {
			continue
		}
		if r.Err != nil || r.Result == nil || r.Result.Output == nil {
			return false
		}
	}
	return true
}

// compare records each mismatch and writes its explanation under diff/.
func (g *run) compare() error {
	g.diffs = map[string][]byte{}
	g.report.Mismatches = g.report.Mismatches[:0]
	for _, m := range g.outcome.Mismatches {
		name := fmt.Sprintf("diff/run-%d-vs-run-%d.json", m.RunA, m.RunB)
		data, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		g.diffs[name] = append(data, '\n')
		files := m.Files()
		if files == nil {
			files = []string{} // a failed run has no differing files
		}
		em := evidence.Mismatch{RunA: m.RunA, RunB: m.RunB, Kind: m.Kind, Variation: m.Variation, Explanation: m.Explanation,
			BuilderA: m.ImageA, BuilderB: m.ImageB, Files: files, Diff: name}
		g.report.Mismatches = append(g.report.Mismatches, em)
	}
	return nil
}

// write writes the evidence directory.
func (g *run) write() error {
	if err := os.MkdirAll(filepath.Join(g.opts.Out, "diff"), 0o755); err != nil {
		return err
	}
	for name, data := range g.diffs {
		if err := atomicfile.Write(filepath.Join(g.opts.Out, filepath.FromSlash(name)), data, 0o644); err != nil {
			return err
		}
	}
	return evidence.WriteWithDiffs(g.opts.Out, g.report, g.timings, g.diffs)
}
