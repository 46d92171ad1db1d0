// Package rebuild rebuilds an artifact that buildguard build published,
// from the recipe its verified provenance records, and says whether the
// rebuild made the same bits: a third party's check that the published
// image is what its source and builder make.
//
// Nothing is rebuilt from a statement that is not verified: the image is
// verified with the trust package (the caller's Verifier: keys, keyless
// identities, transparency log, as `buildguard verify` takes them), and the
// recipe is read only from a verified SLSA provenance whose subject is the
// image's digest. The source must have the recorded tree digest. The build
// then runs through guard.Build, the pipeline of `buildguard build` (the
// builder image by digest, the command, environment, working directory and
// SOURCE_DATE_EPOCH of the recipe), with AttestOnly, so that nothing is
// pushed and the evidence directory holds a build result that `buildguard
// compare` counts; the image is made again as publish makes it
// (publish.Subject), and its digest compared with the published one.
package rebuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	yaml "go.yaml.in/yaml/v3"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/guard"
	"github.com/buildguard/buildguard/internal/atomicfile"
	"github.com/buildguard/buildguard/pin"
	"github.com/buildguard/buildguard/policy"
	"github.com/buildguard/buildguard/publish"
	"github.com/buildguard/buildguard/reproduce"
	"github.com/buildguard/buildguard/source"
	"github.com/buildguard/buildguard/trust"
)

// ResultFile is the rebuild's verdict in the evidence directory, and
// DiffFile the explanation of a different output.
const (
	ResultFile = "rebuild.json"
	DiffFile   = "diff/published-vs-rebuilt.json"
)

// BuilderNote says why the builder images were not verified again.
const BuilderNote = "the builder images were not verified again: they are pinned by the digests the verified provenance records"

// Options say what to rebuild and how.
type Options struct {
	// Image is the published image, NAME@sha256:...
	Image string
	// Verifier verifies the image and its provenance; it is required.
	Verifier *trust.Verifier
	// Source is a checkout of the source. Empty: the recorded commit is
	// cloned from Repository, or else from the recorded repository.
	Source     string
	Repository string
	// Out is the evidence directory.
	Out string
	// Runtime, CacheDir, Jobs, Remote, Stream, Progress, Describe and
	// Environ are guard.Options'.
	Runtime  string
	CacheDir string
	Jobs     int
	Remote   []remote.Option
	Stream   io.Writer
	Progress guard.Progress
	Describe guard.Describer
	Environ  []string
	// Signer, when set, signs the rebuild's build result (and its
	// statements) for buildguard compare.
	Signer *attest.Signer
	// Timeout and Limits, when set, are the build's builder.timeout and
	// builder.limits (memory, pids): a provenance records neither, and a
	// long or large build needs its own.
	Timeout time.Duration
	Limits  config.Limits
}

// Verdict is what the rebuild found.
type Verdict string

// The verdicts.
const (
	// Same: the rebuilt image (and output) is the published one.
	Same Verdict = "same"
	// Different: the rebuild made other bits, or failed.
	Different Verdict = "different"
	// Refused: nothing was rebuilt: the image or its provenance did not
	// verify, the provenance holds no recipe, or the source is not the
	// recorded one.
	Refused Verdict = "refused"
	// Error: the rebuild could not complete (Rebuild returned an error).
	Error Verdict = "error"
)

// Digests are an image's and its output tree's digests.
type Digests struct {
	Image  string `json:"image"`
	Output string `json:"output"`
}

// Result is the rebuild's verdict, written to ResultFile. It holds no host
// path and no time: the same inputs give the same bytes.
type Result struct {
	APIVersion string  `json:"apiVersion"`
	Image      string  `json:"image"`
	Verdict    Verdict `json:"verdict"`
	// Reason says why the verdict is not Same.
	Reason string `json:"reason,omitempty"`
	// Refusals are the verifier's reasons, when the image was refused.
	Refusals []string `json:"refusals,omitempty"`
	Recipe   *Recipe  `json:"recipe,omitempty"`
	// Published are the verified image's digest and the output digest its
	// provenance records; Rebuilt what the rebuild made.
	Published Digests `json:"published"`
	Rebuilt   Digests `json:"rebuilt"`
	// Decision is the rebuild's own guarded-build decision.
	Decision string `json:"decision,omitempty"`
	// Difference is how the rebuilt output differs from the published
	// one (DiffFile), when it does and the published output could be read.
	Difference *reproduce.Difference `json:"difference,omitempty"`
	// Notes are what a reader should know (a source with uncommitted
	// changes, an explanation that could not be made).
	Notes []string `json:"notes,omitempty"`

	// Report is the rebuild's report.json, when the build ran.
	Report *evidence.Report `json:"-"`
}

func (r *Result) refuse(format string, args ...any) *Result {
	r.Verdict, r.Reason = Refused, fmt.Sprintf(format, args...)
	return r
}

// Rebuild verifies the image, reads its recipe, checks the source, builds
// and compares. A verdict (Same, Different, Refused) comes with a nil
// error; the error is for what kept the rebuild from one (a registry or
// runtime that failed), and then the result says as far as it got.
func Rebuild(ctx context.Context, o Options) (res *Result, err error) {
	if o.Verifier == nil {
		return nil, errors.New("rebuild: no verifier: a recipe is read only from a verified provenance")
	}
	res = &Result{APIVersion: "buildguard/v1", Image: o.Image}
	defer func() {
		if err != nil && res.Verdict == "" {
			res.Verdict, res.Reason = Error, err.Error()
		}
		if werr := writeResult(o.Out, res); werr != nil {
			err = errors.Join(err, fmt.Errorf("writing %s: %w", ResultFile, werr))
		}
	}()
	recipe, err := verifiedRecipe(ctx, o, res)
	if err != nil || recipe == nil {
		return res, err
	}
	res.Recipe = recipe
	res.Published.Output = recipe.OutputDigest
	dir, cleanup, err := obtainSource(ctx, o, recipe, res)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil || dir == "" {
		return res, err
	}
	return res, rebuildFrom(ctx, o, recipe, dir, res)
}

// verifiedRecipe verifies the image and reads the recipe of its verified
// provenance; nil with res refused when there is none.
func verifiedRecipe(ctx context.Context, o Options, res *Result) (*Recipe, error) {
	ir, err := o.Verifier.VerifyImage(ctx, o.Image)
	if err != nil {
		return nil, err
	}
	res.Published.Image = ir.Digest
	if !ir.Verified {
		res.Refusals = ir.Reasons()
		res.refuse("%s is not verified: nothing is rebuilt from a statement that is not trusted", o.Image)
		return nil, nil
	}
	var recipes []*Recipe
	var problems []string
	for _, c := range ir.Candidates {
		if !c.Verified || c.Provenance == nil {
			continue
		}
		r, err := ParseRecipe(c.Predicate)
		if err != nil {
			problems = append(problems, c.Source+": "+err.Error())
			continue
		}
		recipes = append(recipes, r)
	}
	switch {
	case len(recipes) == 0 && len(problems) == 0:
		res.refuse("no verified SLSA provenance about %s from a trusted signer: a rebuild needs the provenance buildguard build attaches when it publishes with --signing-key", ir.Digest)
		return nil, nil
	case len(recipes) == 0:
		res.Refusals = problems
		res.refuse("no verified provenance about %s records a recipe buildguard can rebuild: %s", ir.Digest, strings.Join(problems, "; "))
		return nil, nil
	}
	for _, r := range recipes[1:] {
		a, _ := json.Marshal(recipes[0])
		b, _ := json.Marshal(r)
		if string(a) != string(b) {
			res.refuse("the verified provenance statements about %s record %d different recipes: which one made it is not known", ir.Digest, len(recipes))
			return nil, nil
		}
	}
	r := recipes[0]
	if r.Publish == nil || r.Publish.Image == "" {
		res.refuse("the provenance records no publish section: the image was not published by a guarded build, so it cannot be made again")
		return nil, nil
	}
	return r, nil
}

// obtainSource returns the source directory: Options.Source, or a clone of
// the recorded commit; "" with res refused when its tree digest is not the
// recorded one.
func obtainSource(ctx context.Context, o Options, r *Recipe, res *Result) (dir string, cleanup func(), err error) {
	candidates := []string{o.Source}
	if o.Source == "" {
		url := o.Repository
		if r.Git == nil {
			res.refuse("the provenance records no git commit of the source: give --source DIR, a checkout whose tree digest is %s", r.SourceDigest)
			return "", nil, nil
		}
		if url == "" {
			url = strings.TrimPrefix(r.Git.URI, "git+")
		}
		if url == "" {
			res.refuse("the provenance records commit %s but no network repository: give --repository URL (a clone or mirror of it) or --source DIR (a checkout of the commit)", r.Git.Commit)
			return "", nil, nil
		}
		tmp, err := os.MkdirTemp("", "buildguard-rebuild-")
		if err != nil {
			return "", nil, err
		}
		cleanup = func() { _ = os.RemoveAll(tmp) }
		clone := filepath.Join(tmp, "source")
		if err := source.Clone(ctx, url, r.Git.Commit, clone); err != nil {
			return "", cleanup, err
		}
		// The source as configured may be a directory of the checkout.
		candidates = []string{clone}
		if rel := filepath.FromSlash(r.Source); r.Source != "" && r.Source != "." && filepath.IsLocal(rel) {
			if fi, err := os.Stat(filepath.Join(clone, rel)); err == nil && fi.IsDir() {
				candidates = append([]string{filepath.Join(clone, rel)}, candidates...)
			}
		}
	}
	var got []string
	for _, c := range candidates {
		abs, err := filepath.Abs(c)
		if err != nil {
			return "", cleanup, err
		}
		exclude := ""
		if rel, err := filepath.Rel(abs, absOr(o.Out)); err == nil && filepath.IsLocal(rel) {
			exclude = filepath.ToSlash(rel)
		}
		t, err := source.Read(ctx, abs, source.Options{Exclude: exclude})
		if err != nil {
			return "", cleanup, fmt.Errorf("reading the source %s: %w", c, err)
		}
		if d := t.Manifest.Digest(); d != r.SourceDigest {
			got = append(got, d)
			continue
		}
		res.Notes = append(res.Notes, t.Notes...)
		return abs, cleanup, nil
	}
	msg := fmt.Sprintf("the source tree digest is %s, not the recorded %s: the source differs from the one the image was built from", got[0], r.SourceDigest)
	if r.Git != nil {
		msg += fmt.Sprintf(" (check out commit %s, with no changes to tracked files)", r.Git.Commit)
	}
	res.refuse("%s", msg)
	return "", cleanup, nil
}

func absOr(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// rebuildFrom builds the recipe from dir through guard.Build and compares.
func rebuildFrom(ctx context.Context, o Options, r *Recipe, dir string, res *Result) error {
	cfg, err := Config(r, dir)
	if err != nil {
		return err
	}
	o.apply(cfg)
	gr, err := guard.Build(ctx, guard.Options{
		Config: cfg, Out: o.Out, Runtime: o.Runtime, CacheDir: o.CacheDir, Jobs: o.Jobs, Remote: o.Remote,
		Stream: o.Stream, Progress: o.Progress, Describe: o.Describe, Signer: o.Signer, AttestOnly: true, Environ: o.Environ,
	})
	if gr != nil {
		res.Report = gr.Report
		res.Decision = string(gr.Report.Decision)
		res.Notes = append(res.Notes, BuilderNote)
	}
	if err != nil {
		return err
	}
	var m *builder.Manifest
	if gr.Outcome != nil && len(gr.Outcome.Runs) > 0 && gr.Outcome.Runs[0].Result != nil {
		m = gr.Outcome.Runs[0].Result.Output
	}
	if gr.Report.Decision != evidence.Pass || m == nil {
		var v []string
		for _, x := range gr.Report.Violations {
			v = append(v, x.Rule+": "+x.Message)
		}
		res.Verdict, res.Reason = Different, fmt.Sprintf("the rebuild's decision is %s: %s", gr.Report.Decision, strings.Join(v, "; "))
		return nil
	}
	res.Rebuilt.Output = m.Digest()
	d, err := publish.Subject(ctx, publish.Options{
		Image: r.Publish.Image, Base: r.Base, Dir: gr.Output, Manifest: m, SourceDateEpoch: r.SourceDateEpoch,
		Config: guard.ImageConfig(*r.Publish), Annotations: annotations(r), Remote: o.Remote,
	})
	if err != nil {
		return fmt.Errorf("making the image again: %w", err)
	}
	res.Rebuilt.Image = d.Digest.String()
	if res.Rebuilt == res.Published {
		res.Verdict = Same
		return nil
	}
	res.Verdict = Different
	switch {
	case res.Rebuilt.Output != res.Published.Output:
		res.Reason = fmt.Sprintf("the rebuilt output %s is not the published output %s", res.Rebuilt.Output, res.Published.Output)
	default:
		res.Reason = fmt.Sprintf("the output is the same, but the image made of it is %s, not %s: the base or the image config differ", res.Rebuilt.Image, res.Published.Image)
	}
	if err := explain(ctx, o, gr.Output, res); err != nil {
		res.Notes = append(res.Notes, "the difference is not explained: "+err.Error())
	}
	return nil
}

// Config is the buildguard.yaml of a rebuild of r from the source at dir:
// the recorded builder, command, environment, working directory,
// SOURCE_DATE_EPOCH, diverse builders, base and publish section; one run
// of the main builder (a rebuild checks the published bits, not the
// build's reproducibility under variations). The builder images are
// pinned by the digests the verified provenance records, which is what a
// rebuild trusts; they are not verified again ("verified" is waived, and
// the report says so).
func Config(r *Recipe, dir string) (*config.Config, error) {
	diverse := make([]map[string]string, len(r.Diverse))
	for i, d := range r.Diverse {
		diverse[i] = map[string]string{"image": d}
	}
	doc := map[string]any{
		"apiVersion":      "buildguard/v1",
		"source":          dir,
		"sourceDateEpoch": strconv.FormatInt(r.SourceDateEpoch, 10),
		"builder":         map[string]any{"image": r.Builder, "command": r.Command, "workdir": r.Workdir, "env": r.Env},
		"reproduce":       map[string]any{"runs": 1, "variations": []string{}, "diverse": diverse},
	}
	waive := []string{policy.CheckVerified}
	if r.UnpinnedDependencies {
		waive = append(waive, policy.CheckDepsPinned)
	}
	doc["policy"] = map[string]any{"waive": waive}
	if len(r.Dependencies) > 0 {
		deps := make([]map[string]string, len(r.Dependencies))
		for i, d := range r.Dependencies {
			m := map[string]string{"type": string(d.Type)}
			for k, v := range map[string]string{"path": d.Path.Text, "url": d.URL, "sha256": d.SHA256, "dest": d.Dest} {
				if v != "" {
					m[k] = v
				}
			}
			deps[i] = m
		}
		doc["dependencies"] = deps
	}
	if r.Base != "" {
		doc["base"] = r.Base
	}
	if r.Publish != nil {
		// as JSON, which leaves unset fields out
		var p map[string]any
		data, err := json.Marshal(r.Publish)
		if err == nil {
			err = json.Unmarshal(data, &p)
		}
		if err != nil {
			return nil, err
		}
		doc["publish"] = p
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(data, filepath.Join(dir, "buildguard-rebuild.yaml"))
	if err != nil {
		return nil, fmt.Errorf("the recorded recipe is not a valid configuration: %w", err)
	}
	cfg.Source.Text = r.Source // never a host path in the statements
	return cfg, nil
}

// apply sets the build's timeout and limits that o gives.
func (o Options) apply(cfg *config.Config) {
	if o.Timeout > 0 {
		cfg.Builder.Timeout = config.Duration(o.Timeout)
	}
	if o.Limits.Memory > 0 {
		cfg.Builder.Limits.Memory = o.Limits.Memory
	}
	if o.Limits.Pids > 0 {
		cfg.Builder.Limits.Pids = o.Limits.Pids
	}
}

// annotations are the source's on the published manifest, as guard sets
// them from the checkout: its repository URL and commit.
func annotations(r *Recipe) map[string]string {
	if r.Git == nil {
		return nil
	}
	ann := map[string]string{publish.AnnotationRevision: r.Git.Commit}
	if u := strings.TrimPrefix(r.Git.URI, "git+"); u != "" {
		ann[publish.AnnotationSource] = u
	}
	return ann
}

// explain unpacks the published output (the image's last layer, or the
// artifact's one layer) and compares the rebuilt output with it, into
// DiffFile.
func explain(ctx context.Context, o Options, rebuilt string, res *Result) error {
	ref, err := pin.ParseRef(o.Image)
	if err != nil {
		return err
	}
	repo, err := name.NewRepository(ref.Repo)
	if err != nil {
		return err
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, o.Remote...)
	desc, err := remote.Get(repo.Digest(res.Published.Image), ropts...)
	if err != nil {
		return fmt.Errorf("reading the published manifest: %w", err)
	}
	if desc.MediaType.IsIndex() {
		return errors.New("the published image is an index")
	}
	m, err := v1.ParseManifest(strings.NewReader(string(desc.Manifest)))
	if err != nil {
		return fmt.Errorf("the published manifest: %w", err)
	}
	if len(m.Layers) == 0 {
		return errors.New("the published manifest has no layer")
	}
	layer, err := remote.Layer(repo.Digest(m.Layers[len(m.Layers)-1].Digest.String()), ropts...)
	if err != nil {
		return fmt.Errorf("reading the published output layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "buildguard-published-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cache := &builder.Cache{Dir: tmp, SkipSync: true}
	published, err := cache.Unpack(ctx, img)
	if err != nil {
		return fmt.Errorf("unpacking the published output: %w", err)
	}
	d, err := reproduce.Diff(ctx, published, rebuilt, reproduce.DefaultLimits)
	if err != nil {
		return err
	}
	if d.Same() {
		return errors.New("the published output layer and the rebuilt output list the same files")
	}
	res.Difference = d
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(o.Out, filepath.FromSlash(DiffFile))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(p, append(data, '\n'), 0o644)
}

// writeResult writes ResultFile into the evidence directory.
func writeResult(out string, res *Result) error {
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(out, ResultFile), append(data, '\n'), 0o644)
}
