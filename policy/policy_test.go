package policy

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
)

const (
	builderDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	diverseDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// goodReport is a build that meets every built-in requirement.
func goodReport() *evidence.Report {
	r := evidence.New()
	r.Images = []evidence.Image{
		{Role: "builder", Ref: "reg/go@" + builderDigest, Digest: builderDigest, Pinned: true, Verified: true,
			Provenance: []evidence.Provenance{{PredicateType: "https://slsa.dev/provenance/v1", BuilderID: "https://ci.example/builder", SourceURI: "git+https://src.example/go"}}},
		{Role: "diverse", Ref: "other/go@" + diverseDigest, Digest: diverseDigest, Pinned: true, Verified: true,
			Provenance: []evidence.Provenance{{PredicateType: "https://slsa.dev/provenance/v1", BuilderID: "https://ci.example/builder", SourceURI: "git+https://src.example/go"}}},
	}
	r.Runs = []evidence.Run{
		{Index: 1, Builder: builderDigest, OutputDigest: "sha256:aa"},
		{Index: 2, Builder: builderDigest, Variations: []string{"path", "timezone"}, OutputDigest: "sha256:aa"},
		{Index: 3, Builder: diverseDigest, Diverse: true, OutputDigest: "sha256:aa"},
	}
	r.SBOM = &evidence.SBOMSummary{Packages: 2, Files: []string{"sbom.spdx.json"}}
	return r
}

func decide(t *testing.T, p config.Policy, in Input) *evidence.Report {
	t.Helper()
	pol, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	if in.Report == nil {
		in.Report = goodReport()
	}
	pol.Decide(context.Background(), in)
	return in.Report
}

func rules(r *evidence.Report) []string {
	var out []string
	for _, v := range r.Violations {
		out = append(out, v.Rule)
	}
	return out
}

func TestGoodBuildPasses(t *testing.T) {
	r := decide(t, config.Policy{BuilderIDs: []string{"https://ci.example/builder"}, RequireDiverse: true}, Input{})
	if r.Decision != evidence.Pass || len(r.Violations) != 0 || len(r.Notes) != 0 {
		t.Fatalf("decision %s, violations %v, notes %v", r.Decision, r.Violations, r.Notes)
	}
}

func TestEveryViolationIsCollected(t *testing.T) {
	r := goodReport()
	r.Images[0].Pinned = false
	r.Images[1].Verified = false
	r.Images[1].Problems = []string{"signature by an untrusted key"}
	r.Mismatches = []evidence.Mismatch{
		{RunA: 1, RunB: 2, Kind: "variation", Variation: "timezone", Files: []string{"app"}},
		{RunA: 1, RunB: 3, Kind: "builder-disagreement", Files: []string{"app"}},
	}
	r.SBOM = nil
	r = decide(t, config.Policy{BuilderIDs: []string{"https://other.example/builder"}}, Input{Report: r})
	if r.Decision != evidence.Fail {
		t.Fatalf("decision %s", r.Decision)
	}
	got := rules(r)
	sort.Strings(got)
	want := "diverse-agree,pinned,provenance,provenance,reproducible,sbom,verified"
	if strings.Join(got, ",") != want {
		t.Errorf("violations %s, want %s", got, want)
	}
	for _, v := range r.Violations {
		switch v.Rule {
		case CheckVerified:
			if !strings.Contains(v.Message, "untrusted key") {
				t.Errorf("verified violation does not say why: %s", v.Message)
			}
		case CheckDiverseAgree:
			if !strings.Contains(v.Message, "may be compromised") {
				t.Errorf("a builder disagreement must read as a possible compromise: %s", v.Message)
			}
		case CheckReproducible:
			if !strings.Contains(v.Message, "timezone") {
				t.Errorf("the variation is not named: %s", v.Message)
			}
		}
	}
}

func TestNoDiverseBuilder(t *testing.T) {
	r := goodReport()
	r.Runs = r.Runs[:2]
	got := decide(t, config.Policy{}, Input{Report: r})
	if got.Decision != evidence.Pass || len(got.Notes) != 1 || got.Notes[0] != NotProvenNote {
		t.Errorf("without requireDiverse: decision %s, notes %v; want pass with the plain note", got.Decision, got.Notes)
	}
	r = goodReport()
	r.Runs = r.Runs[:2]
	got = decide(t, config.Policy{RequireDiverse: true}, Input{Report: r})
	if got.Decision != evidence.Fail || strings.Join(rules(got), ",") != CheckDiverseRequired {
		t.Errorf("with requireDiverse: %s %v", got.Decision, got.Violations)
	}
}

func TestWaive(t *testing.T) {
	r := goodReport()
	r.SBOM = nil
	got := decide(t, config.Policy{Waive: []string{CheckSBOM}}, Input{Report: r})
	if got.Decision != evidence.Pass || strings.Join(got.Waived, ",") != CheckSBOM {
		t.Errorf("waived sbom: decision %s waived %v", got.Decision, got.Waived)
	}
	for _, bad := range []string{CheckPinned, "no-such-check"} {
		_, err := New(config.Policy{Waive: []string{bad}})
		var pe *Error
		if !errors.As(err, &pe) || pe.ExitCode() != 2 || !strings.Contains(err.Error(), "policy.waive[0]") {
			t.Errorf("waive %q: want a configuration error naming policy.waive[0], got %v", bad, err)
		}
	}
}

func TestRules(t *testing.T) {
	pkgs := []Package{
		{Name: "golang.org/x/text", Version: "v0.37.0", PURL: "pkg:golang/golang.org/x/text@v0.37.0", Licenses: []string{"BSD-3-Clause"}},
		{Name: "example.com/gpl", Version: "v1.0.0", Licenses: []string{"GPL-3.0-only"}},
	}
	p := config.Policy{Rules: []config.Rule{
		{Name: "no-gpl-in-output", Expr: "!sbom.packages.exists(p, p.licenses.exists(l, l.startsWith('GPL')))"},
		{Name: "two-runs", Expr: "size(runs) >= 2"},
		{Name: "builder-from-ci", Expr: "images.all(i, i.provenance.exists(p, p.builderID == 'https://ci.example/builder'))"},
		{Name: "diverse-ran", Expr: "size(diverse) == 1 && diverse[0].builder != runs[0].builder"},
	}}
	r := decide(t, p, Input{Packages: pkgs})
	if r.Decision != evidence.Fail || strings.Join(rules(r), ",") != "no-gpl-in-output" {
		t.Fatalf("decision %s violations %v", r.Decision, r.Violations)
	}
	if !strings.Contains(r.Violations[0].Message, "startsWith('GPL')") {
		t.Errorf("a violation should quote the rule: %s", r.Violations[0].Message)
	}
	r = decide(t, p, Input{Packages: pkgs[:1]})
	if r.Decision != evidence.Pass {
		t.Errorf("without the GPL package: %s %v %v", r.Decision, r.Violations, r.Errors)
	}
}

// A rule can ask for provenance of one role's image only: the diverse
// builder must come from a named builder (the demo's rule for a builder
// bootstrapped by the ddc chain), whatever the main builder carries. An
// image without provenance (the field left out of report.json) fails the
// rule rather than erring.
func TestRuleOnTheDiverseBuildersProvenance(t *testing.T) {
	const chain = "https://github.com/buildguard/buildguard/ddc/v1"
	p := config.Policy{Rules: []config.Rule{{Name: "diverse-builder-bootstrapped",
		Expr: "images.exists(i, i.role == 'diverse' && has(i.provenance) && i.provenance.exists(p, p.builderID == '" + chain + "'))"}}}
	r := goodReport()
	r.Images[0].Provenance = nil
	r.Images[1].Provenance = []evidence.Provenance{{PredicateType: "https://slsa.dev/provenance/v1", BuilderID: chain}}
	if r = decide(t, p, Input{Report: r}); r.Decision != evidence.Pass {
		t.Fatalf("diverse builder with the chain's provenance: %s %v %v", r.Decision, r.Violations, r.Errors)
	}
	for name, prov := range map[string][]evidence.Provenance{
		"none":  nil,
		"other": {{PredicateType: "https://slsa.dev/provenance/v1", BuilderID: "https://ci.example/builder"}},
	} {
		r := goodReport()
		r.Images[0].Provenance = []evidence.Provenance{{PredicateType: "https://slsa.dev/provenance/v1", BuilderID: chain}}
		r.Images[1].Provenance = prov
		if r = decide(t, p, Input{Report: r}); r.Decision != evidence.Fail || strings.Join(rules(r), ",") != "diverse-builder-bootstrapped" || len(r.Errors) != 0 {
			t.Errorf("diverse builder with provenance %s (the main builder has the chain's): %s, violations %v, errors %v", name, r.Decision, r.Violations, r.Errors)
		}
	}
}

func TestMalformedRulesAreConfigErrors(t *testing.T) {
	for _, tt := range []struct{ expr, msg string }{
		{"size(runs) >=", "not a valid CEL expression"},
		{"size(runs)", "must be a boolean expression"},
		{"nosuchvar == 1", "not a valid CEL expression"},
		{strings.Repeat("true && ", 3000) + "true", "longer than"},
	} {
		_, err := New(config.Policy{Rules: []config.Rule{{Name: "r1", Expr: tt.expr}}})
		var pe *Error
		if !errors.As(err, &pe) || pe.ExitCode() != 2 || !strings.Contains(err.Error(), "policy.rules[0] (r1)") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("rule %.40q: want a configuration error naming the rule and saying %q, got %v", tt.expr, tt.msg, err)
		}
	}
}

func TestRuleErrorIsNotAPass(t *testing.T) {
	for _, expr := range []string{
		"images[5].ref == 'x'",      // index out of range at run time
		"source.nosuchfield == 'x'", // no such key
		"runs.map(a, runs.map(b, runs.map(c, runs.map(d, runs.map(e, 1))))).size() > 0 && [1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, [1,2,3,4,5,6,7,8,9,10].all(f, [1,2,3,4,5,6,7,8,9,10].all(g, true)))))))", // over the cost limit
	} {
		r := decide(t, config.Policy{Rules: []config.Rule{{Name: "bad", Expr: expr}}}, Input{})
		if r.Decision != evidence.Error || len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "rule bad could not be evaluated") {
			t.Errorf("%.50q: decision %s errors %v; want error", expr, r.Decision, r.Errors)
		}
	}
}

func TestDecisionIsStable(t *testing.T) {
	p := config.Policy{Rules: []config.Rule{{Name: "a", Expr: "false"}, {Name: "b", Expr: "false"}}, Waive: []string{CheckSBOM, CheckVerified}}
	first, _ := decide(t, p, Input{}).Marshal()
	for range 5 {
		again, _ := decide(t, p, Input{}).Marshal()
		if string(again) != string(first) {
			t.Fatalf("the same input gave different reports:\n%s\n%s", first, again)
		}
	}
}

func TestPreflightRefusesUnpinnedImages(t *testing.T) {
	pol, err := New(config.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	r := goodReport()
	if !pol.Preflight(r) || len(r.Violations) != 0 {
		t.Fatalf("pinned images refused: %v", r.Violations)
	}
	r.Images[1].Pinned = false
	if pol.Preflight(r) || r.Decision != evidence.Fail || len(r.Violations) != 1 || !strings.Contains(r.Violations[0].Message, "other/go@") {
		t.Errorf("decision %s violations %v", r.Decision, r.Violations)
	}
}

func TestFailedBuildIsAViolation(t *testing.T) {
	r := goodReport()
	r.Runs[1].ExitCode = 2
	r.Runs[1].Log = "logs/run-2.log"
	got := decide(t, config.Policy{}, Input{Report: r})
	if got.Decision != evidence.Fail || strings.Join(rules(got), ",") != CheckBuild || !strings.Contains(got.Violations[0].Message, "logs/run-2.log") {
		t.Errorf("decision %s violations %v", got.Decision, got.Violations)
	}
	if _, err := New(config.Policy{Waive: []string{CheckBuild}}); err == nil {
		t.Errorf("the build check was waived")
	}
}

// TestTrustedGatesTheBuild: an image that is not verified, or lacks the
// provenance the policy requires, keeps the build from running unless that
// check is waived; the decision made without runs names only the image.
func TestTrustedGatesTheBuild(t *testing.T) {
	ids := []string{"https://ci.example/builder"}
	cases := []struct {
		name   string
		policy config.Policy
		change func(r *evidence.Report)
		want   bool
	}{
		{"all verified", config.Policy{BuilderIDs: ids}, func(*evidence.Report) {}, true},
		{"diverse not verified", config.Policy{}, func(r *evidence.Report) { r.Images[1].Verified = false }, false},
		{"not verified, waived", config.Policy{Waive: []string{CheckVerified}}, func(r *evidence.Report) { r.Images[0].Verified = false }, true},
		{"other builder id", config.Policy{BuilderIDs: []string{"https://other.example/builder"}}, func(*evidence.Report) {}, false},
		{"other source", config.Policy{SourceURIs: []string{"git+https://other.example/go"}}, func(*evidence.Report) {}, false},
		{"other builder id, waived", config.Policy{BuilderIDs: []string{"https://other.example/builder"}, Waive: []string{CheckProvenance}}, func(*evidence.Report) {}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pol, err := New(c.policy)
			if err != nil {
				t.Fatal(err)
			}
			r := goodReport()
			c.change(r)
			if got := pol.Trusted(r); got != c.want {
				t.Fatalf("Trusted = %v, want %v", got, c.want)
			}
			if c.want {
				return
			}
			// Nothing ran: the decision is fail, for the image alone.
			r.Runs, r.SBOM = nil, nil
			pol.Decide(context.Background(), Input{Report: r})
			if r.Decision != evidence.Fail {
				t.Fatalf("decision %s, want fail", r.Decision)
			}
			for _, v := range r.Violations {
				if v.Rule != CheckVerified && v.Rule != CheckProvenance {
					t.Errorf("violation %s: %s, want only the image's", v.Rule, v.Message)
				}
			}
		})
	}
}

// A varied run that failed where the control and its repeat built is a
// reproducibility finding naming the variation, not a failed build; the
// bisection runs that named it are not failed builds either.
func TestVariedRunFailureIsAReproducibilityViolation(t *testing.T) {
	r := goodReport()
	r.Runs[1].ExitCode, r.Runs[1].Log = 1, "logs/run-2.log"
	r.Runs = append(r.Runs,
		evidence.Run{Index: 4, Purpose: "control-repeat", Builder: builderDigest, OutputDigest: "sha256:aa"},
		evidence.Run{Index: 5, Purpose: "bisect", Builder: builderDigest, Variations: []string{"path"}, ExitCode: 1})
	r.Mismatches = []evidence.Mismatch{{RunA: 1, RunB: 2, Kind: "varied-run-failed", Variation: "path", Files: []string{},
		Explanation: "(the source was at /buildguard-varied/source-tree instead of /src): the build names its source directory by absolute path; use paths relative to the workdir"}}
	got := decide(t, config.Policy{}, Input{Report: r})
	want := "run 2 failed only when varying path (the source was at /buildguard-varied/source-tree instead of /src): the build names its source directory by absolute path; use paths relative to the workdir, or drop 'path' from reproduce.variations"
	if got.Decision != evidence.Fail || len(got.Violations) != 1 || got.Violations[0].Rule != CheckReproducible || got.Violations[0].Message != want {
		t.Errorf("decision %s violations %v, want one %s violation %q", got.Decision, got.Violations, CheckReproducible, want)
	}
}

// Dependencies: one whose bytes differ from its lockfile is an unwaivable
// violation naming both hashes and keeps the build from running; one
// without a hash is dependencies-pinned, which a waiver lifts (the build may
// then run); rules see the list as `dependencies`.
func TestDependencies(t *testing.T) {
	dep := func(name string, pinned bool, mm *evidence.DependencyMismatch) evidence.Dependency {
		return evidence.Dependency{Type: "npm", Name: name, Version: "1.0.0", PURL: "pkg:npm/" + name + "@1.0.0",
			Digest: map[string]string{"sha256": "ab"}, Pinned: pinned, Source: "web", Mismatch: mm}
	}
	withDeps := func(ds ...evidence.Dependency) *evidence.Report {
		r := goodReport()
		r.Dependencies = ds
		return r
	}
	pol, err := New(config.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if !pol.DependenciesUsable(withDeps(dep("ok", true, nil))) {
		t.Error("a pinned, matching dependency keeps the build from running")
	}

	bad := withDeps(dep("ok", true, nil), dep("evil", true, &evidence.DependencyMismatch{What: "tarball", Algorithm: "sha512", Want: "sha512-want", Got: "sha512-got"}))
	if pol.DependenciesUsable(bad) {
		t.Error("a mismatching dependency may be built from")
	}
	r := decide(t, config.Policy{}, Input{Report: bad})
	if r.Decision != evidence.Fail || strings.Join(rules(r), ",") != CheckDependencies ||
		!strings.Contains(r.Violations[0].Message, "npm dependency evil@1.0.0 (tarball, from web): its lockfile pins sha512-want, the fetched bytes are sha512-got") {
		t.Errorf("mismatch: decision %s, violations %+v", r.Decision, r.Violations)
	}
	if _, err := New(config.Policy{Waive: []string{CheckDependencies}}); err == nil || !strings.Contains(err.Error(), "cannot be waived") {
		t.Errorf("waiving %s: %v, want a configuration error", CheckDependencies, err)
	}

	unpinned := withDeps(dep("loose", false, nil))
	if pol.DependenciesUsable(unpinned) {
		t.Error("an unpinned dependency may be built from without a waiver")
	}
	r = decide(t, config.Policy{}, Input{Report: unpinned})
	if r.Decision != evidence.Fail || strings.Join(rules(r), ",") != CheckDepsPinned || !strings.Contains(r.Violations[0].Message, "loose@1.0.0 (from web) has no hash in its lockfile") {
		t.Errorf("unpinned: decision %s, violations %+v", r.Decision, r.Violations)
	}
	waiver, err := New(config.Policy{Waive: []string{CheckDepsPinned}})
	if err != nil {
		t.Fatal(err)
	}
	if !waiver.DependenciesUsable(withDeps(dep("loose", false, nil))) {
		t.Error("a waived unpinned dependency keeps the build from running")
	}
	r = decide(t, config.Policy{Waive: []string{CheckDepsPinned}}, Input{Report: withDeps(dep("loose", false, nil))})
	if r.Decision != evidence.Pass || strings.Join(r.Waived, ",") != CheckDepsPinned {
		t.Errorf("waived: decision %s, violations %+v, waived %v", r.Decision, r.Violations, r.Waived)
	}

	rule := config.Policy{Rules: []config.Rule{{Name: "no-left-pad", Expr: "!dependencies.exists(d, d.name == 'left-pad')"}}}
	if r := decide(t, rule, Input{Report: withDeps(dep("left-pad", true, nil))}); strings.Join(rules(r), ",") != "no-left-pad" {
		t.Errorf("a rule over dependencies: violations %+v, errors %v", r.Violations, r.Errors)
	}
	if r := decide(t, rule, Input{Report: goodReport()}); r.Decision != evidence.Pass {
		t.Errorf("a rule over no dependencies: %s %+v %v", r.Decision, r.Violations, r.Errors)
	}
}

// The sandbox variable is the weakest of the runs: one run without a
// seccomp filter, or in single-id mode, makes the rule about it fail.
func TestSandboxRules(t *testing.T) {
	strong := func() *evidence.Sandbox {
		return &evidence.Sandbox{Runtime: "crun", Version: "1.8.1", UserNamespace: true, IDMapping: "ranged", UIDMap: "0:100000:65536",
			Network: "none", Seccomp: "buildguard-deny-list-v1", ReadOnlyRoot: true, Limits: evidence.SandboxLimits{Applied: []string{}, Reason: "none configured"}}
	}
	p := config.Policy{Rules: []config.Rule{
		{Name: "isolated", Expr: "sandbox.seccomp && sandbox.userNamespace && sandbox.noNetwork && sandbox.readOnlyRoot"},
		{Name: "owners-kept", Expr: "sandbox.ownersKept"},
		{Name: "crun-only", Expr: "sandbox.runtimes.all(r, r.startsWith('crun '))"},
	}}
	with := func(edit func(runs []evidence.Run)) *evidence.Report {
		r := goodReport()
		for i := range r.Runs {
			r.Runs[i].Sandbox = strong()
		}
		edit(r.Runs)
		return r
	}
	if r := decide(t, p, Input{Report: with(func([]evidence.Run) {})}); r.Decision != evidence.Pass {
		t.Fatalf("every run strong: %s %v %v", r.Decision, r.Violations, r.Errors)
	}
	for _, tc := range []struct {
		name string
		edit func(runs []evidence.Run)
		want string
	}{
		{"a run without seccomp", func(rs []evidence.Run) { rs[2].Sandbox.Seccomp = "" }, "isolated"},
		{"a run without a user namespace", func(rs []evidence.Run) { rs[1].Sandbox.UserNamespace = false }, "isolated,owners-kept"},
		{"a single-id run", func(rs []evidence.Run) { rs[0].Sandbox.IDMapping = "single" }, "owners-kept"},
		{"a runc run", func(rs []evidence.Run) { rs[1].Sandbox.Runtime = "runc" }, "crun-only"},
		{"no run started", func(rs []evidence.Run) {
			for i := range rs {
				rs[i].Sandbox = nil
			}
		}, "isolated,owners-kept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := decide(t, p, Input{Report: with(tc.edit)})
			got := rules(r)
			sort.Strings(got)
			if strings.Join(got, ",") != tc.want {
				t.Errorf("violations %v (errors %v), want %s", got, r.Errors, tc.want)
			}
		})
	}
}
