// Package policy turns evidence into a decision. It is the only package that
// says pass or fail: built-in requirements, all on by default and waived
// only explicitly (and visibly), plus user rules written in CEL over a
// documented evidence model (docs/policy.md). Every violation is collected,
// not only the first; a rule that cannot be evaluated makes the decision
// "error", never a pass.
package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
)

// The built-in checks, by the names policy.waive uses.
const (
	CheckPinned          = "pinned"
	CheckDependencies    = "dependencies-verified"
	CheckDepsPinned      = "dependencies-pinned"
	CheckBuild           = "build"
	CheckVerified        = "verified"
	CheckProvenance      = "provenance"
	CheckReproducible    = "reproducible"
	CheckDiverseAgree    = "diverse-agree"
	CheckDiverseRequired = "diverse-required"
	CheckSBOM            = "sbom"
)

// Checks lists the built-in checks in the order they are applied.
func Checks() []string {
	return []string{CheckPinned, CheckDependencies, CheckDepsPinned, CheckBuild, CheckVerified, CheckProvenance, CheckReproducible, CheckDiverseAgree, CheckDiverseRequired, CheckSBOM}
}

// NotProvenNote is the note a report carries when no diverse builder ran.
const NotProvenNote = "no diverse builder was configured: this build is not proven against a compromised builder (add reproduce.diverse with an independently produced builder image)"

// Error is a policy that cannot be used: an unknown or unwaivable check in
// waive, or a rule that does not compile. It is a configuration error.
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Msg) }

// ExitCode reports a configuration error (2).
func (e *Error) ExitCode() int { return 2 }

// Policy is a compiled policy section.
type Policy struct {
	waived         map[string]bool
	builderIDs     []string
	sourceURIs     []string
	requireDiverse bool
	rules          []*rule
}

// New compiles a policy. Every problem is reported, each naming its field.
func New(p config.Policy) (*Policy, error) {
	pol := &Policy{
		waived:         map[string]bool{},
		builderIDs:     slices.Clone(p.BuilderIDs),
		sourceURIs:     slices.Clone(p.SourceURIs),
		requireDiverse: p.RequireDiverse,
	}
	var errs []error
	for i, name := range p.Waive {
		field := fmt.Sprintf("policy.waive[%d]", i)
		switch {
		case name == CheckPinned:
			errs = append(errs, &Error{field, `"pinned" cannot be waived: an unpinned image can change under the build`})
		case name == CheckDependencies:
			errs = append(errs, &Error{field, `"dependencies-verified" cannot be waived: a dependency whose bytes are not what its lockfile pins is not the dependency the source asked for`})
		case name == CheckBuild:
			errs = append(errs, &Error{field, `"build" cannot be waived: a build that failed made nothing to publish`})
		case !slices.Contains(Checks(), name):
			errs = append(errs, &Error{field, fmt.Sprintf("unknown check %q (the checks are: %s)", name, strings.Join(Checks(), ", "))})
		default:
			pol.waived[name] = true
		}
	}
	env, err := newEnv()
	if err != nil {
		return nil, err
	}
	for i, r := range p.Rules {
		cr, err := compile(env, r)
		if err != nil {
			errs = append(errs, &Error{fmt.Sprintf("policy.rules[%d] (%s)", i, r.Name), err.Error()})
			continue
		}
		pol.rules = append(pol.rules, cr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return pol, nil
}

// Preflight applies the check that must pass before anything runs: every
// image the build consumes is pinned by digest. It reports whether the build
// may go on; when not, the report's decision is fail, with a violation for
// each unpinned image.
func (p *Policy) Preflight(r *evidence.Report) bool {
	var v []evidence.Violation
	for _, img := range r.Images {
		if !img.Pinned {
			v = append(v, evidence.Violation{Rule: CheckPinned, Message: unpinnedMessage(img)})
		}
	}
	if len(v) == 0 {
		return true
	}
	r.Violations = v
	r.Decision = evidence.Fail
	return false
}

// Trusted reports whether every image passed the checks on images that are
// not waived (verified, provenance), so that the builder may be used. When
// one did not, the build must not run: Decide, called next, names why.
func (p *Policy) Trusted(r *evidence.Report) bool {
	for _, img := range r.Images {
		for _, v := range p.imageViolations(img) {
			if !p.waived[v.Rule] {
				return false
			}
		}
	}
	return true
}

// DependenciesUsable reports whether the build may use the prefetched
// dependencies: none differs from its lockfile, and every one the lockfile
// leaves without a hash is waived (dependencies-pinned). When not, the
// build must not run: Decide, called next, names why.
func (p *Policy) DependenciesUsable(r *evidence.Report) bool {
	for _, d := range r.Dependencies {
		if d.Mismatch != nil || (!d.Pinned && !p.waived[CheckDepsPinned]) {
			return false
		}
	}
	return true
}

func dependencyViolations(d evidence.Dependency) []evidence.Violation {
	name := d.Name
	if d.Version != "" {
		name += "@" + d.Version
	}
	var v []evidence.Violation
	if m := d.Mismatch; m != nil {
		v = append(v, evidence.Violation{Rule: CheckDependencies, Message: fmt.Sprintf("%s dependency %s (%s, from %s): its lockfile pins %s, the fetched bytes are %s; nothing was built", d.Type, name, m.What, d.Source, m.Want, m.Got)})
	}
	if !d.Pinned {
		v = append(v, evidence.Violation{Rule: CheckDepsPinned, Message: fmt.Sprintf("%s dependency %s (from %s) has no hash in its lockfile: nothing checks its bytes (regenerate the lockfile so that it records one)", d.Type, name, d.Source)})
	}
	return v
}

// imageViolations are the violations of the checks on one image (verified,
// provenance), waived or not.
func (p *Policy) imageViolations(img evidence.Image) []evidence.Violation {
	var v []evidence.Violation
	name := img.Ref
	if !img.Verified {
		why := "no verified signature and log entry"
		if len(img.Problems) > 0 {
			why = strings.Join(img.Problems, "; ")
		}
		v = append(v, evidence.Violation{Rule: CheckVerified, Message: fmt.Sprintf("%s image %s is not verified: %s", img.Role, name, why)})
	}
	if len(p.builderIDs) > 0 && !hasProvenance(img, func(pr evidence.Provenance) bool { return slices.Contains(p.builderIDs, pr.BuilderID) }) {
		v = append(v, evidence.Violation{Rule: CheckProvenance, Message: fmt.Sprintf("%s image %s has no verified provenance from an allowed builder (%s)", img.Role, name, strings.Join(p.builderIDs, ", "))})
	}
	if len(p.sourceURIs) > 0 && !hasProvenance(img, func(pr evidence.Provenance) bool { return slices.Contains(p.sourceURIs, pr.SourceURI) }) {
		v = append(v, evidence.Violation{Rule: CheckProvenance, Message: fmt.Sprintf("%s image %s has no verified provenance from an allowed source (%s)", img.Role, name, strings.Join(p.sourceURIs, ", "))})
	}
	return v
}

// runLog is the log of run index, as the report names it.
func runLog(runs []evidence.Run, index int) string {
	for _, r := range runs {
		if r.Index == index {
			return r.Log
		}
	}
	return "logs/"
}

func unpinnedMessage(img evidence.Image) string {
	return fmt.Sprintf("%s image %s is not pinned by digest (run: buildguard pin --write)", img.Role, img.Ref)
}

// Package is an SBOM package as rules see it.
type Package struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	PURL     string   `json:"purl"`
	Licenses []string `json:"licenses"`
}

// Input is what a decision is made from.
type Input struct {
	Report *evidence.Report
	// Packages are the output's SBOM packages (for rules).
	Packages []Package
	// Config is the build's configuration (for rules).
	Config *config.Config
}

// Decide applies the built-in checks and the rules to the report and sets
// its decision, violations, waived checks and notes. A rule that cannot be
// evaluated makes the decision "error" and is listed in the report's errors.
func (p *Policy) Decide(ctx context.Context, in Input) {
	r := in.Report
	var v []evidence.Violation
	add := func(check, msg string) {
		if !p.waived[check] {
			v = append(v, evidence.Violation{Rule: check, Message: msg})
		}
	}
	for _, img := range r.Images {
		if !img.Pinned {
			add(CheckPinned, unpinnedMessage(img))
		}
		for _, iv := range p.imageViolations(img) {
			add(iv.Rule, iv.Message)
		}
	}
	for _, d := range r.Dependencies {
		for _, dv := range dependencyViolations(d) {
			add(dv.Rule, dv.Message)
		}
	}
	// A varied run that failed where the control built, and the bisection
	// runs that named its variation, are findings of reproducibility (the
	// mismatch says so), not a build that failed.
	finding := map[int]bool{}
	for _, m := range r.Mismatches {
		if m.Kind == "varied-run-failed" {
			finding[m.RunB] = true
		}
	}
	for _, run := range r.Runs {
		if finding[run.Index] || run.Purpose == "bisect" {
			continue
		}
		switch {
		case run.ExitCode < 0:
			// No status: the run was stopped (another run failed first)
			// before its build exited.
			add(CheckBuild, fmt.Sprintf("run %d did not finish (see %s)", run.Index, run.Log))
		case run.ExitCode != 0:
			add(CheckBuild, fmt.Sprintf("run %d in %s exited %d (see %s)", run.Index, run.Builder, run.ExitCode, run.Log))
		}
	}
	for _, m := range r.Mismatches {
		files := strings.Join(m.Files, ", ")
		switch m.Kind {
		case "builder-disagreement":
			add(CheckDiverseAgree, fmt.Sprintf("independent builders disagree on %s: builder %s (run %d) and builder %s (run %d) made different bits; one of the builder images may be compromised", files, m.BuilderA, m.RunA, m.BuilderB, m.RunB))
		case "variation":
			add(CheckReproducible, fmt.Sprintf("not reproducible: runs %d and %d differ in %s when varying %s", m.RunA, m.RunB, files, m.Variation))
		case "varied-run-failed":
			msg := fmt.Sprintf("run %d failed only with variations, while the control (run %d) and its repeat built (see %s)", m.RunB, m.RunA, runLog(r.Runs, m.RunB))
			if m.Variation != "" {
				msg = fmt.Sprintf("run %d failed only when varying %s %s, or drop '%s' from reproduce.variations", m.RunB, m.Variation, m.Explanation, m.Variation)
			}
			add(CheckReproducible, msg)
		default:
			add(CheckReproducible, fmt.Sprintf("not reproducible: runs %d and %d differ in %s (%s)", m.RunA, m.RunB, files, m.Kind))
		}
	}
	diverse := slices.ContainsFunc(r.Runs, func(run evidence.Run) bool { return run.Diverse })
	switch {
	case len(r.Runs) == 0:
		// Nothing was built (an image was refused first): the checks on
		// the output have nothing to say.
	case !diverse && p.requireDiverse:
		add(CheckDiverseRequired, "policy.requireDiverse is set but no diverse builder ran")
	case !diverse:
		r.Notes = appendOnce(r.Notes, NotProvenNote)
	}
	if r.SBOM == nil && len(r.Runs) > 0 && !slices.ContainsFunc(r.Runs, func(run evidence.Run) bool { return run.ExitCode != 0 }) {
		// (When a build failed there is no output to describe: the build
		// violation says so, and an SBOM violation would only repeat it.)
		add(CheckSBOM, "no SBOM of the output was produced")
	}

	var evalErrs []string
	if len(p.rules) > 0 {
		vars, err := variables(in)
		if err != nil {
			evalErrs = append(evalErrs, fmt.Sprintf("preparing the rules' input: %v", err))
		}
		for _, cr := range p.rules {
			if err != nil {
				break
			}
			ok, rerr := cr.eval(ctx, vars)
			switch {
			case rerr != nil:
				evalErrs = append(evalErrs, fmt.Sprintf("rule %s could not be evaluated: %v", cr.name, rerr))
			case !ok:
				v = append(v, evidence.Violation{Rule: cr.name, Message: fmt.Sprintf("rule %s is false: %s", cr.name, cr.expr)})
			}
		}
	}

	r.Violations = v
	if r.Violations == nil {
		r.Violations = []evidence.Violation{}
	}
	r.Waived = r.Waived[:0]
	for name := range p.waived {
		r.Waived = append(r.Waived, name)
	}
	sort.Strings(r.Waived)
	r.Errors = append(r.Errors, evalErrs...)
	switch {
	case len(r.Errors) > 0:
		r.Decision = evidence.Error
	case len(r.Violations) > 0:
		r.Decision = evidence.Fail
	default:
		r.Decision = evidence.Pass
	}
}

func hasProvenance(img evidence.Image, ok func(evidence.Provenance) bool) bool {
	return slices.ContainsFunc(img.Provenance, ok)
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
