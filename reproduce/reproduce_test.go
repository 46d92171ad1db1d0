package reproduce

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/buildguard/buildguard/builder"
)

// scriptedBuilder stands in for the sandbox in tests of the orchestration
// alone: it writes an output that depends on the step the way a real build
// might (on its hostname, its work directory, ...), and hashes it with the
// real HashTree. The sandbox itself is tested against real runtimes in
// builder and in reproduce's runtime tests.
func scriptedBuilder(t *testing.T, output func(image string, s builder.Step, n int64) string) (Builder, *atomic.Int64) {
	var calls atomic.Int64
	return BuilderFunc(func(ctx context.Context, image string, s builder.Step) (*builder.Result, error) {
		n := calls.Add(1)
		if err := os.WriteFile(filepath.Join(s.Out, "app"), []byte(output(image, s, n)), 0o644); err != nil {
			return nil, err
		}
		m, err := builder.HashTree(ctx, s.Out)
		if err != nil {
			return nil, err
		}
		return &builder.Result{Image: "sha256:" + strings.Repeat(image[len(image)-1:], 64), Output: m}, nil
	}), &calls
}

func opts(t *testing.T, diverse ...string) Options {
	// A stagger of 10ms: the orchestration is the same, the tests fast.
	return Options{Image: "reg/main@sha256:a", Diverse: diverse, Runs: 2, Variations: AllVariations(), Jobs: 2, Dir: t.TempDir(), Stagger: 10 * time.Millisecond}
}

func TestReproducibleBuildPasses(t *testing.T) {
	b, calls := scriptedBuilder(t, func(string, builder.Step, int64) string { return "the same bits" })
	out, err := Reproduce(context.Background(), b, builder.Step{}, opts(t, "reg/other@sha256:b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Mismatches) != 0 || calls.Load() != 3 {
		t.Fatalf("mismatches %v after %d builds", out.Mismatches, calls.Load())
	}
	want := []string{PurposeControl, PurposeVaried, PurposeDiverse}
	for i, r := range out.Runs {
		if r.Index != i+1 || r.Purpose != want[i] {
			t.Errorf("run %d: index %d purpose %s, want %s", i, r.Index, r.Purpose, want[i])
		}
	}
	if len(out.Runs[0].Variations) != 0 || len(out.Runs[1].Variations) != len(AllVariations()) {
		t.Errorf("variations: control %v, varied %v", out.Runs[0].Variations, out.Runs[1].Variations)
	}
	// The scripted builder fakes no clock: the report says so.
	if got := out.Runs[1].Mechanisms; got[VarTime] != MechStagger || got[VarPath] != "workdir" || len(got) != len(AllVariations()) {
		t.Errorf("run 2 mechanisms %v, want every variation's, time by stagger", got)
	}
	if out.Runs[0].Mechanisms != nil {
		t.Errorf("the control has mechanisms %v", out.Runs[0].Mechanisms)
	}
	if len(out.Notes) != 1 || !strings.HasPrefix(out.Notes[0], "time: no fake clock reached run 2;") {
		t.Errorf("notes %q, want one saying run 2 had no fake clock", out.Notes)
	}
}

func TestVariationIsNamedByBisection(t *testing.T) {
	for _, v := range AllVariations() {
		t.Run(v, func(t *testing.T) {
			b, _ := scriptedBuilder(t, func(_ string, s builder.Step, _ int64) string {
				return fmt.Sprint(dependsOn(v, s))
			})
			out, err := Reproduce(context.Background(), b, builder.Step{Env: map[string]string{"CGO_ENABLED": "0"}}, opts(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Mismatches) != 1 {
				t.Fatalf("mismatches: %+v", out.Mismatches)
			}
			m := out.Mismatches[0]
			if m.Kind != KindVariation || m.Variation != v || m.RunA != 1 || m.RunB != 2 || strings.Join(m.Changed, ",") != "app" {
				t.Errorf("mismatch %+v (variation %q), want variation %q on app", m, m.Variation, v)
			}
		})
	}
}

// dependsOn is what a build that leaks the variation v into its output
// would write.
func dependsOn(v string, s builder.Step) any {
	switch v {
	case VarPath:
		return s.Workdir
	case VarTimezone:
		return s.Env["TZ"]
	case VarLocale:
		return s.Env["LANG"]
	case VarUmask:
		return s.Sandbox.Umask != nil
	case VarHostname:
		return s.Sandbox.Hostname
	case VarDomainname:
		return s.Sandbox.Domainname
	case VarUID:
		return s.Sandbox.UID
	case VarEnvOrder:
		return s.Sandbox.ReverseEnv
	case VarExtraEnv:
		return s.Env[variedExtraName]
	case VarTime:
		return s.Sandbox.ClockOffset
	}
	return nil
}

func TestNondeterminismIsNotBlamedOnAVariation(t *testing.T) {
	b, _ := scriptedBuilder(t, func(_ string, _ builder.Step, n int64) string { return fmt.Sprint("random ", n) })
	out, err := Reproduce(context.Background(), b, builder.Step{}, opts(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Mismatches) != 1 || out.Mismatches[0].Kind != KindNondeterministic || out.Mismatches[0].Variation != "" {
		t.Fatalf("mismatches %+v", out.Mismatches)
	}
	if p := out.Runs[len(out.Runs)-1].Purpose; p != PurposeControlRepeat {
		t.Errorf("last run is %s, want the control repeat", p)
	}
}

func TestCompromisedBuilderIsCaughtOnlyByTheDiverseBuilder(t *testing.T) {
	b, _ := scriptedBuilder(t, func(image string, _ builder.Step, _ int64) string {
		if strings.Contains(image, "main") {
			return "app + PAYLOAD" // the same payload every time: reproducible
		}
		return "app"
	})
	out, err := Reproduce(context.Background(), b, builder.Step{}, opts(t, "reg/independent@sha256:b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Mismatches) != 1 {
		t.Fatalf("mismatches %+v", out.Mismatches)
	}
	m := out.Mismatches[0]
	if m.Kind != KindBuilderDisagreement || m.RunA != 1 || m.RunB != 3 || m.ImageA == m.ImageB || m.ImageA == "" || m.ImageB == "" {
		t.Errorf("mismatch %+v", m)
	}
	if len(m.Explanations) != 1 || m.Explanations[0].Diff == "" {
		t.Errorf("the differing file is not explained: %+v", m.Explanations)
	}
}

func TestUnknownVariationIsRefused(t *testing.T) {
	b, calls := scriptedBuilder(t, func(string, builder.Step, int64) string { return "" })
	o := opts(t)
	o.Variations = []string{"path", "moon-phase"}
	if _, err := Reproduce(context.Background(), b, builder.Step{}, o); err == nil || !strings.Contains(err.Error(), "moon-phase") || calls.Load() != 0 {
		t.Fatalf("err %v after %d builds", err, calls.Load())
	}
}

// failingBuilder is a scriptedBuilder whose build exits 1 when fails says
// so of the step and the call's number, as a real build that cannot stand
// a variation does.
func failingBuilder(t *testing.T, fails func(s builder.Step, n int64) bool) (Builder, *atomic.Int64) {
	ok, calls := scriptedBuilder(t, func(string, builder.Step, int64) string { return "the same bits" })
	var n atomic.Int64
	return BuilderFunc(func(ctx context.Context, image string, s builder.Step) (*builder.Result, error) {
		if fails(s, n.Add(1)) {
			calls.Add(1)
			return &builder.Result{ExitCode: 1, Log: s.Log}, &builder.BuildError{Status: 1, Log: s.Log}
		}
		return ok.Build(ctx, image, s)
	}), calls
}

// A build that names its source by absolute path fails only when the path
// varies: the failure is a finding, bisected to path and explained.
func TestVariedRunFailureIsBisected(t *testing.T) {
	b, _ := failingBuilder(t, func(s builder.Step, _ int64) bool { return s.Workdir == variedWorkdir })
	out, err := Reproduce(context.Background(), b, builder.Step{Workdir: "/src"}, opts(t))
	if err != nil {
		t.Fatalf("a varied run's failure is an error of Reproduce: %v", err)
	}
	if len(out.Mismatches) != 1 {
		t.Fatalf("mismatches %+v", out.Mismatches)
	}
	m := out.Mismatches[0]
	if m.Kind != KindVariedRunFailed || m.RunA != 1 || m.RunB != 2 || m.Variation != VarPath {
		t.Fatalf("mismatch %+v, want run 2 failed when varying path", m)
	}
	want := "(the source was at /buildguard-varied/source-tree instead of /src): the build names its source directory by absolute path; use paths relative to the workdir"
	if m.Explanation != want {
		t.Errorf("explanation %q, want %q", m.Explanation, want)
	}
	if out.Runs[2].Purpose != PurposeControlRepeat || out.Runs[2].Err != nil {
		t.Errorf("run 3 is %s (%v), want a control repeat that built, before bisecting", out.Runs[2].Purpose, out.Runs[2].Err)
	}
	for _, r := range out.Runs[3:] {
		if r.Purpose != PurposeBisect {
			t.Errorf("run %d is %s, want bisect", r.Index, r.Purpose)
		}
	}
}

// When the control's repeat fails too, the build is flaky: no variation is
// blamed, and Reproduce reports the failure.
func TestFlakyFailureIsNotBlamedOnAVariation(t *testing.T) {
	b, _ := failingBuilder(t, func(_ builder.Step, n int64) bool { return n >= 2 }) // every build after the first
	out, err := Reproduce(context.Background(), b, builder.Step{}, opts(t))
	var be *builder.BuildError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "a repeat of the control without them failed too") {
		t.Fatalf("err %v, want the repeat's build error", err)
	}
	if len(out.Mismatches) != 0 || len(out.Runs) != 3 || out.Runs[2].Purpose != PurposeControlRepeat {
		t.Fatalf("mismatches %+v, %d runs; want no mismatch after the control repeat", out.Mismatches, len(out.Runs))
	}
}

// A control that fails is a failed build: nothing is bisected.
func TestControlFailureIsNotBisected(t *testing.T) {
	b, calls := failingBuilder(t, func(s builder.Step, _ int64) bool { return s.Workdir != variedWorkdir })
	out, err := Reproduce(context.Background(), b, builder.Step{}, opts(t))
	var be *builder.BuildError
	if !errors.As(err, &be) || len(out.Mismatches) != 0 || calls.Load() > 2 {
		t.Fatalf("err %v, mismatches %+v after %d builds; want the control's build error and no bisection", err, out.Mismatches, calls.Load())
	}
}

// A run varying the time starts at least the stagger after the control,
// even when both may run at once.
func TestTimeVariationStaggersTheStart(t *testing.T) {
	var mu sync.Mutex
	starts := map[string]time.Time{}
	b := BuilderFunc(func(ctx context.Context, image string, s builder.Step) (*builder.Result, error) {
		mu.Lock()
		starts[filepath.Base(filepath.Dir(s.Out))] = time.Now()
		mu.Unlock()
		m, err := builder.HashTree(ctx, s.Out)
		return &builder.Result{Output: m}, err
	})
	o := opts(t)
	o.Stagger, o.Variations = 0, []string{VarTime} // the default stagger
	if _, err := Reproduce(context.Background(), b, builder.Step{}, o); err != nil {
		t.Fatal(err)
	}
	if d := starts["run-2"].Sub(starts["run-1"]); d < time.Second || d < DefaultStagger {
		t.Errorf("run 2 started %s after the control, want at least %s (and more than a second)", d, DefaultStagger)
	}
}

// Every variation explains itself, naming what changed.
func TestVariationEffectNamesWhatChanged(t *testing.T) {
	for _, v := range AllVariations() {
		got := VariationEffect(v, builder.Step{})
		if !strings.HasPrefix(got, "(") || strings.Contains(got, "several variations") {
			t.Errorf("%s: %q", v, got)
		}
	}
	if got := VariationEffect("[a b] together", builder.Step{}); !strings.Contains(got, "together") {
		t.Errorf("a set: %q", got)
	}
	if got := time.Duration(397*24+1)*time.Hour + time.Minute + 7*time.Second; got != VariedClockOffset {
		t.Errorf("variedClockText does not say VariedClockOffset %s", VariedClockOffset)
	}
}

// TestSandboxNotesReachTheOutcome: what the sandbox fell back from in a run
// (here, the runtime it could not use) is said once, with every run it
// concerns, so that report.json and buildguard build's output carry it.
func TestSandboxNotesReachTheOutcome(t *testing.T) {
	b, _ := scriptedBuilder(t, func(string, builder.Step, int64) string { return "the same bits" })
	const fallback = "runtime crun could not start the build: permission denied"
	noted := BuilderFunc(func(ctx context.Context, image string, s builder.Step) (*builder.Result, error) {
		res, err := b.Build(ctx, image, s)
		if err == nil && image == "reg/main@sha256:a" {
			// Said by the runtime that could not start the build and by
			// the one that then did.
			res.Notes = []string{fallback, fallback}
		}
		return res, err
	})
	out, err := Reproduce(context.Background(), noted, builder.Step{}, opts(t, "reg/other@sha256:b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Notes) < 1 || out.Notes[0] != "runs 1, 2: "+fallback {
		t.Errorf("notes %q, want first %q", out.Notes, "runs 1, 2: "+fallback)
	}
}
