package guard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/compare"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/internal/atomicfile"
)

// StageBuildResult writes the build-result statement (Options.AttestOnly).
const StageBuildResult = "build-result"

// UnsignedBuildResultNote is the note of an unsigned build result.
const UnsignedBuildResultNote = attest.BuildResultFile + " is not signed (no signing key): buildguard compare accepts only signed build results (" + attest.BuildResultBundleFile + ")"

// buildResult writes build-result.json and, with a signer, its Sigstore
// bundle build-result.sigstore.json into the evidence directory. A bundle
// left by an earlier build is removed first, so that the directory never
// holds a signature about another build.
func (g *run) buildResult(ctx context.Context) error {
	bundlePath := filepath.Join(g.opts.Out, attest.BuildResultBundleFile)
	for _, p := range []string{bundlePath, filepath.Join(g.opts.Out, attest.BuildResultFile)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the old %s: %w", filepath.Base(p), err)
		}
	}
	st, err := attest.BuildResultStatement(g.buildResultPredicate(ctx))
	if err != nil {
		g.report.Notes = append(g.report.Notes, "no build result: "+err.Error())
		return nil
	}
	data, err := attest.Marshal(st)
	if err != nil {
		return err
	}
	var bundle []byte
	if g.opts.Signer != nil {
		if bundle, err = attest.Sign(ctx, g.opts.Signer, data); err != nil {
			return fmt.Errorf("%s: %w", attest.BuildResultFile, err)
		}
	}
	if err := os.MkdirAll(g.opts.Out, 0o755); err != nil {
		return fmt.Errorf("creating evidence directory: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(g.opts.Out, attest.BuildResultFile), data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", attest.BuildResultFile, err)
	}
	if bundle == nil {
		g.report.Notes = append(g.report.Notes, UnsignedBuildResultNote)
		return nil
	}
	if err := atomicfile.Write(bundlePath, bundle, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", attest.BuildResultBundleFile, err)
	}
	return nil
}

// buildResultPredicate gathers the build result from the report, the
// configuration and the control run.
func (g *run) buildResultPredicate(ctx context.Context) attest.BuildResult {
	b := g.attestBuild(ctx)
	r, cfg := g.report, g.cfg
	p := attest.BuildResult{
		Recipe: attest.Recipe{
			SourceDigest: b.SourceDigest, Command: cfg.Builder.Command, Workdir: cfg.Builder.Workdir,
			Env: cfg.Builder.Env, SourceDateEpoch: r.Source.SourceDateEpoch,
		},
		OutputDigest: b.OutputDigest,
		Checks:       attest.Checks{Runs: cfg.Reproduce.Runs},
		Reproducible: b.Reproducible,
		Decision:     string(r.Decision),
	}
	for _, v := range cfg.Reproduce.Variations {
		p.Checks.Variations = append(p.Checks.Variations, string(v))
	}
	for _, im := range r.Images {
		switch im.Role {
		case string(config.RoleBuilder):
			p.Recipe.Builder = im.Digest
		case string(config.RoleDiverse):
			p.Checks.Diverse = append(p.Checks.Diverse, im.Digest)
		}
	}
	for _, run := range r.Runs {
		p.Runs = append(p.Runs, attest.BuildRun{Index: run.Index, Builder: run.Builder, Diverse: run.Diverse, Variations: run.Variations, OutputDigest: run.OutputDigest, ExitCode: run.ExitCode})
		if run.Diverse {
			p.Diverse = append(p.Diverse, attest.DiverseResult{Builder: run.Builder, OutputDigest: run.OutputDigest})
		}
	}
	for _, v := range r.Violations {
		p.Violations = append(p.Violations, v.Rule)
	}
	return p
}

// Rebuilders are the signed build results of independent rebuilders that
// must agree with the control output before it may be published.
type Rebuilders struct {
	// Inputs are the rebuilders' signed build results.
	Inputs []compare.Input
	// Options are the trusted keys and the threshold; Expect is set to
	// the control output's digest.
	Options compare.Options
}

// The rebuilders check's stage, rule and evidence file.
const (
	StageRebuilders = "rebuilders"
	RuleRebuilders  = "rebuilders"
	RebuildersFile  = "rebuilders.json"
)

// checkRebuilders runs after a pass decision: unless enough distinct
// trusted rebuilders attest the control output, the decision becomes fail
// with a "rebuilders" violation. The comparison is written to
// rebuilders.json.
func (g *run) checkRebuilders() error {
	path := filepath.Join(g.opts.Out, RebuildersFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the old %s: %w", RebuildersFile, err)
	}
	m := g.controlManifest()
	if g.report.Decision != evidence.Pass || m == nil {
		g.report.Notes = append(g.report.Notes, "rebuilders not compared: the build did not pass on its own")
		return nil
	}
	o := g.opts.Rebuilders.Options
	o.Expect = m.Digest()
	res, err := compare.Compare(g.opts.Rebuilders.Inputs, o)
	if err != nil {
		return fmt.Errorf("comparing with the rebuilders: %w", err)
	}
	data, err := res.Marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(g.opts.Out, 0o755); err != nil {
		return fmt.Errorf("creating evidence directory: %w", err)
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", RebuildersFile, err)
	}
	if res.Agreed {
		names := make([]string, len(res.AgreedBy))
		for i, s := range res.AgreedBy {
			names[i] = s.String()
		}
		g.report.Notes = append(g.report.Notes, fmt.Sprintf("rebuilders: %d distinct signer(s) attest the control output %s (threshold %d): %s", len(res.AgreedBy), res.OutputDigest, res.Threshold, strings.Join(names, ", ")))
		return nil
	}
	g.report.Violations = append(g.report.Violations, evidence.Violation{Rule: RuleRebuilders, Message: fmt.Sprintf(
		"fewer than %d independent rebuilder(s) attest the control output %s: %s (see %s)", res.Threshold, o.Expect, strings.Join(res.Problems, "; "), RebuildersFile)})
	g.report.Decision = evidence.Fail
	return nil
}
