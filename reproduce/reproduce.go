package reproduce

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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
	// Stagger is how long after the control run started a run varying the
	// time starts at the earliest; 0 means DefaultStagger.
	Stagger time.Duration
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
	// Mechanisms say how each variation reached the run (see
	// Run.Mechanisms in the evidence package).
	Mechanisms map[string]string `json:"mechanisms,omitempty"`
	Out        string            `json:"-"`
	Log        string            `json:"log"`
	// Result is what the builder reported; Err why the build failed.
	Result *builder.Result `json:"-"`
	Err    error           `json:"-"`
}

// Mismatch kinds.
const (
	KindNondeterministic    = "nondeterministic"
	KindVariation           = "variation"
	KindBuilderDisagreement = "builder-disagreement"
	// KindVariedRunFailed is a varied run that failed where the control
	// and a repeat of it succeeded: the build depends on what was varied.
	KindVariedRunFailed = "varied-run-failed"
)

// Mismatch is a pair of runs whose outputs differ.
type Mismatch struct {
	RunA int    `json:"runA"`
	RunB int    `json:"runB"`
	Kind string `json:"kind"`
	// Variation names what bisection found to cause the difference or the
	// failure.
	Variation string `json:"variation,omitempty"`
	// Explanation says what Variation changed and what a build that
	// depends on it usually does (VariationEffect).
	Explanation string `json:"explanation,omitempty"`
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
	r := &reproducer{b: b, base: base, opts: opts, controlStarted: make(chan struct{})}
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
		if run.Err != nil {
			// A varied run failed where the control built (do tolerates
			// nothing else): a finding about the build, explained as a
			// mismatch is.
			m, err := r.classifyFailure(ctx, control, run)
			if err != nil {
				return r.outcome(), err
			}
			r.mismatches = append(r.mismatches, m)
			continue
		}
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
	return r.outcome(), nil
}

type reproducer struct {
	b          Builder
	base       builder.Step
	opts       Options
	runs       []*Run
	mismatches []*Mismatch

	// controlStarted is closed when the control run starts, at
	// controlStart; a run varying the time waits for it (see stagger).
	controlOnce    sync.Once
	controlStarted chan struct{}
	controlStart   time.Time
}

func (r *reproducer) outcome() *Outcome {
	return &Outcome{Runs: r.runs, Mismatches: r.mismatches, Notes: r.notesOf()}
}

// notesOf says, in run order, what a variation could not reach and what
// the sandbox fell back from: what the builder reported unreached, its
// notes (a runtime that could not start the build, limits not applied, a
// root bind-mounted where overlayfs failed), each said once with the runs
// it concerns, and how far the time variation went.
func (r *reproducer) notesOf() []string {
	var order []string
	where := map[string][]string{}
	var staggerOnly, faked []string
	for _, run := range r.runs {
		if run.Result == nil {
			continue
		}
		idx := strconv.Itoa(run.Index)
		for _, u := range slices.Concat(run.Result.Unreached, run.Result.Notes) {
			if where[u] == nil {
				order = append(order, u)
			}
			if w := where[u]; len(w) > 0 && w[len(w)-1] == idx {
				continue // said twice in one run (a runtime fallen back from, then the next)
			}
			where[u] = append(where[u], idx)
		}
		switch run.Mechanisms[VarTime] {
		case MechStagger:
			staggerOnly = append(staggerOnly, idx)
		case MechLibfaketime:
			faked = append(faked, idx)
		}
	}
	var notes []string
	for _, u := range order {
		notes = append(notes, fmt.Sprintf("%s %s: %s", plural("run", where[u]), strings.Join(where[u], ", "), u))
	}
	if len(staggerOnly) > 0 {
		notes = append(notes, fmt.Sprintf("time: no fake clock reached %s %s; the time varied only by a start at least %s after the control's, which a date, hour or minute stamp does not show",
			plural("run", staggerOnly), strings.Join(staggerOnly, ", "), r.stagger()))
	}
	if len(faked) > 0 {
		notes = append(notes, fmt.Sprintf("time: libfaketime moved the clock of %s %s by %s for dynamically linked programs only; statically linked programs and Go programs (which read the clock through the vDSO) saw the real clock, varied only by a start at least %s after the control's",
			plural("run", faked), strings.Join(faked, ", "), variedClockText, r.stagger()))
	}
	return notes
}

func plural(word string, items []string) string {
	if len(items) == 1 {
		return word
	}
	return word + "s"
}

func (r *reproducer) stagger() time.Duration {
	if r.opts.Stagger > 0 {
		return r.opts.Stagger
	}
	return DefaultStagger
}

// waitStagger returns once the control run has been running for the
// stagger, so that a run varying the time starts later than the control by
// more than a second even where no fake clock reaches.
func (r *reproducer) waitStagger(ctx context.Context) error {
	select {
	case <-r.controlStarted:
	case <-ctx.Done():
		return ctx.Err()
	}
	t := time.NewTimer(time.Until(r.controlStart.Add(r.stagger())))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mechanismsOf says how each of run's variations reached it.
func mechanismsOf(run *Run) map[string]string {
	if len(run.Variations) == 0 {
		return nil
	}
	m := make(map[string]string, len(run.Variations))
	for _, v := range run.Variations {
		m[v] = mechanisms[v]
	}
	if _, ok := m[VarTime]; ok {
		m[VarTime] = MechStagger
		if run.Result != nil && run.Result.FakeClock == builder.ClockLibfaketime {
			m[VarTime] = MechLibfaketime
		}
	}
	return m
}

// tolerated reports whether run's failure is a finding rather than a build
// that cannot run: a varied or bisection run whose command exited non-zero.
func tolerated(run *Run) bool {
	var be *builder.BuildError
	return (run.Purpose == PurposeVaried || run.Purpose == PurposeBisect) && errors.As(run.Err, &be)
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
			if slices.Contains(run.Variations, VarTime) {
				if err := r.waitStagger(gctx); err != nil {
					run.Err = err
					return fmt.Errorf("run %d (%s, %s): %w", run.Index, run.Purpose, run.Image, err)
				}
			}
			if run.Purpose == PurposeControl {
				r.controlOnce.Do(func() { r.controlStart = time.Now(); close(r.controlStarted) })
			}
			run.Result, run.Err = r.b.Build(gctx, run.Image, s)
			run.Mechanisms = mechanismsOf(run)
			if run.Err != nil && tolerated(run) {
				return nil
			}
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
	name, err := r.bisect(ctx, r.opts.Variations, func(run *Run) bool {
		return run.Err != nil || !Compare(control.Result.Output, run.Result.Output).Same()
	})
	if err != nil {
		return err
	}
	m.Variation, m.Explanation = name, VariationEffect(name, r.base)
	return nil
}

// classifyFailure explains a varied run that failed where the control
// built. A repeat of the control comes first: when it fails too, the build
// fails on its own and no variation is blamed (the error says so). Then the
// variations are bisected to name the one the build cannot stand.
func (r *reproducer) classifyFailure(ctx context.Context, control, failed *Run) (*Mismatch, error) {
	repeat := &Run{Purpose: PurposeControlRepeat, Image: r.opts.Image}
	if err := r.do(ctx, repeat); err != nil {
		return nil, fmt.Errorf("run %d failed with variations, and a repeat of the control without them failed too: %w", failed.Index, err)
	}
	m := &Mismatch{RunA: control.Index, RunB: failed.Index, Kind: KindVariedRunFailed, Difference: &Difference{}}
	if r.opts.NoBisect || len(failed.Variations) == 0 {
		return m, nil
	}
	name, err := r.bisect(ctx, failed.Variations, func(run *Run) bool { return run.Err != nil })
	if err != nil {
		return nil, err
	}
	m.Variation, m.Explanation = name, VariationEffect(name, r.base)
	return m, nil
}

// bisect halves the set of variations while one half alone still gives a
// run that bad reports (a different output, a failure), and returns the
// variation (or, when no single half does, the set of variations that
// together do).
func (r *reproducer) bisect(ctx context.Context, set []string, bad func(*Run) bool) (string, error) {
	for len(set) > 1 {
		left, right := set[:len(set)/2], set[len(set)/2:]
		isBad, err := r.tryWith(ctx, left, bad)
		if err != nil {
			return "", err
		}
		if isBad {
			set = left
			continue
		}
		isBad, err = r.tryWith(ctx, right, bad)
		if err != nil {
			return "", err
		}
		if !isBad {
			return fmt.Sprintf("%v together", set), nil
		}
		set = right
	}
	return set[0], nil
}

// tryWith builds with the variations vars and reports what bad says of it.
func (r *reproducer) tryWith(ctx context.Context, vars []string, bad func(*Run) bool) (bool, error) {
	run := &Run{Purpose: PurposeBisect, Image: r.opts.Image, Variations: vars}
	if err := r.do(ctx, run); err != nil {
		return false, err
	}
	return bad(run), nil
}
