package reproduce

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

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
	return Options{Image: "reg/main@sha256:a", Diverse: diverse, Runs: 2, Variations: AllVariations(), Jobs: 2, Dir: t.TempDir()}
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
	if len(out.Notes) != 1 || out.Notes[0] != TimeNote {
		t.Errorf("notes %v", out.Notes)
	}
}

func TestVariationIsNamedByBisection(t *testing.T) {
	for _, v := range AllVariations() {
		if v == VarTime {
			continue // no fake clock: nothing to depend on
		}
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
