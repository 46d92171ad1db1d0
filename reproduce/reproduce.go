package reproduce

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/buildguard/buildguard/builder"
)

// Builder runs one build step in a builder image. builder.Build over a
// cache satisfies it (see BuilderFunc); tests and decorators (logging,
// limiting) wrap it.
type Builder interface {
	Build(ctx context.Context, image string, s builder.Step) (*builder.Result, error)
}

// BuilderFunc adapts a function to Builder.
type BuilderFunc func(ctx context.Context, image string, s builder.Step) (*builder.Result, error)

// Build calls f.
func (f BuilderFunc) Build(ctx context.Context, image string, s builder.Step) (*builder.Result, error) {
	return f(ctx, image, s)
}

// Options say which builds to run.
type Options struct {
	// Image is the pinned main builder image.
	Image string
	// Diverse are pinned independent builder images; each must give the
	// same bits as the main builder.
	Diverse []string
	// Runs is how many builds the main builder does; run 1 is the control.
	Runs int
	// Variations are applied to main-builder runs after the first.
	Variations []string
	// Jobs bounds builds running at once; 0 means the core count.
	Jobs int
	// Dir receives each run's output (run-N/out).
	Dir string
	// LogDir receives each run's log (run-N.log); empty means Dir/logs.
	LogDir string
	// NoBisect skips naming the variation that causes a mismatch.
	NoBisect bool
	// Explain bounds the explanations of differing files.
	Explain Limits
}

// Purposes of a run.
const (
	PurposeControl       = "control"
	PurposeVaried        = "varied"
	PurposeDiverse       = "diverse"
	PurposeControlRepeat = "control-repeat"
	PurposeBisect        = "bisect"
)

// Run is one build.
type Run struct {
	Index      int      `json:"index"`
	Purpose    string   `json:"purpose"`
	Image      string   `json:"image"`
	Diverse    bool     `json:"diverse,omitempty"`
	Variations []string `json:"variations,omitempty"`
	Out        string   `json:"-"`
	Log        string   `json:"log"`
	// Result is what the builder reported; Err why the build failed.
	Result *builder.Result `json:"-"`
	Err    error           `json:"-"`
}

// Mismatch kinds.
const (
	KindNondeterministic    = "nondeterministic"
	KindVariation           = "variation"
	KindBuilderDisagreement = "builder-disagreement"
)

// Mismatch is a pair of runs whose outputs differ.
type Mismatch struct {
	RunA int    `json:"runA"`
	RunB int    `json:"runB"`
	Kind string `json:"kind"`
	// Variation names what bisection found to cause the difference.
	Variation string `json:"variation,omitempty"`
	// ImageA and ImageB are the builder digests, for a disagreement.
	ImageA string `json:"imageA,omitempty"`
	ImageB string `json:"imageB,omitempty"`
	*Difference
}

// Outcome is everything Reproduce ran and found, in run order.
type Outcome struct {
	Runs       []*Run
	Mismatches []*Mismatch
	Notes      []string
}

// Reproduce builds base with the main builder opts.Runs times (run 1 the
// control, the rest varied), and once with each diverse builder, runs at
// once up to opts.Jobs; compares every output with the control's; and
// explains each mismatch. A varied run that differs is followed by a
// second control run: if that differs too, the build is nondeterministic;
// otherwise the variations are bisected to name the one that matters.
//
// base.Out and base.Log are ignored: each run gets its own under opts.Dir.
// The error is non-nil when a build failed or could not run; the outcome
// then holds what did run.
func Reproduce(ctx context.Context, b Builder, base builder.Step, opts Options) (*Outcome, error) {
	if opts.Runs < 1 {
		opts.Runs = 2
	}
	if err := checkVariations(opts.Variations); err != nil {
		return nil, err
	}
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	r := &reproducer{b: b, base: base, opts: opts}
	var plan []*Run
	for i := 1; i <= opts.Runs; i++ {
		run := &Run{Purpose: PurposeControl, Image: opts.Image}
		if i > 1 {
			run.Purpose, run.Variations = PurposeVaried, opts.Variations
		}
		plan = append(plan, run)
	}
	for _, img := range opts.Diverse {
		plan = append(plan, &Run{Purpose: PurposeDiverse, Image: img, Diverse: true})
	}
	if err := r.do(ctx, plan...); err != nil {
		return r.outcome(), err
	}
	control := r.runs[0]
	for _, run := range r.runs[1:] {
		d := Compare(control.Result.Output, run.Result.Output)
		if d.Same() {
			continue
		}
		m := &Mismatch{RunA: control.Index, RunB: run.Index, Difference: d}
		switch {
		case run.Diverse:
			m.Kind, m.ImageA, m.ImageB = KindBuilderDisagreement, control.Result.Image, run.Result.Image
		default:
			if err := r.classify(ctx, control, m); err != nil {
				return r.outcome(), err
			}
		}
		if err := d.explain(ctx, control.Result.Output, run.Result.Output, control.Out, run.Out, opts.Explain); err != nil {
			return r.outcome(), err
		}
		r.mismatches = append(r.mismatches, m)
	}
	if len(opts.Variations) > 0 && slices.Contains(opts.Variations, VarTime) {
		r.notes = append(r.notes, TimeNote)
	}
	return r.outcome(), nil
}

type reproducer struct {
	b          Builder
	base       builder.Step
	opts       Options
	runs       []*Run
	mismatches []*Mismatch
	notes      []string
}

func (r *reproducer) outcome() *Outcome {
	return &Outcome{Runs: r.runs, Mismatches: r.mismatches, Notes: r.notes}
}

// do numbers the runs after those already done and runs them, at most
// opts.Jobs at once. Results stay in run order whatever order they finish.
func (r *reproducer) do(ctx context.Context, runs ...*Run) error {
	first := len(r.runs) + 1
	for i, run := range runs {
		run.Index = first + i
		dir := filepath.Join(r.opts.Dir, fmt.Sprintf("run-%d", run.Index))
		run.Out = filepath.Join(dir, "out")
		logDir := r.opts.LogDir
		if logDir == "" {
			logDir = filepath.Join(r.opts.Dir, "logs")
		}
		run.Log = filepath.Join(logDir, fmt.Sprintf("run-%d.log", run.Index))
		if err := os.MkdirAll(run.Out, 0o755); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(run.Log), 0o755); err != nil {
			return err
		}
	}
	r.runs = append(r.runs, runs...)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Jobs)
	for _, run := range runs {
		g.Go(func() error {
			s := vary(r.base, run.Variations)
			s.Out, s.Log = run.Out, run.Log
			run.Result, run.Err = r.b.Build(gctx, run.Image, s)
			if run.Err != nil {
				return fmt.Errorf("run %d (%s, %s): %w", run.Index, run.Purpose, run.Image, run.Err)
			}
			if run.Result == nil || run.Result.Output == nil {
				return fmt.Errorf("run %d (%s): the builder reported no output", run.Index, run.Purpose)
			}
			return nil
		})
	}
	return g.Wait()
}

// classify tells nondeterminism from a variation-dependent difference, and
// names the variation by bisection.
func (r *reproducer) classify(ctx context.Context, control *Run, m *Mismatch) error {
	repeat := &Run{Purpose: PurposeControlRepeat, Image: r.opts.Image}
	if err := r.do(ctx, repeat); err != nil {
		return err
	}
	if !Compare(control.Result.Output, repeat.Result.Output).Same() {
		m.Kind = KindNondeterministic
		m.RunB = repeat.Index
		return nil
	}
	m.Kind = KindVariation
	if r.opts.NoBisect || len(r.opts.Variations) == 0 {
		return nil
	}
	name, err := r.bisect(ctx, control, r.opts.Variations)
	if err != nil {
		return err
	}
	m.Variation = name
	return nil
}

// bisect halves the set of variations while one half alone still changes
// the output, and returns the variation (or, when no single half does, the
// set of variations that together do).
func (r *reproducer) bisect(ctx context.Context, control *Run, set []string) (string, error) {
	for len(set) > 1 {
		left, right := set[:len(set)/2], set[len(set)/2:]
		differs, err := r.differsWith(ctx, control, left)
		if err != nil {
			return "", err
		}
		if differs {
			set = left
			continue
		}
		differs, err = r.differsWith(ctx, control, right)
		if err != nil {
			return "", err
		}
		if !differs {
			return fmt.Sprintf("%v together", set), nil
		}
		set = right
	}
	return set[0], nil
}

func (r *reproducer) differsWith(ctx context.Context, control *Run, vars []string) (bool, error) {
	run := &Run{Purpose: PurposeBisect, Image: r.opts.Image, Variations: vars}
	if err := r.do(ctx, run); err != nil {
		return false, err
	}
	return !Compare(control.Result.Output, run.Result.Output).Same(), nil
}
