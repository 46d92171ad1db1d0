package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// The build-result statement: what one runner built, for `buildguard
// compare` to check that independent runners agree (docs/rebuilders.md).
const (
	// BuildResultPredicateType is the predicate type of a build result.
	BuildResultPredicateType = "https://github.com/buildguard/buildguard/predicates/build-result/v1"
	// BuildResultFile and BuildResultBundleFile name the statement and its
	// Sigstore bundle in the evidence directory.
	BuildResultFile       = "build-result.json"
	BuildResultBundleFile = "build-result.sigstore.json"
)

// Recipe is what determines the control run's output: two runners whose
// recipes are equal ran the same build, so their outputs must be equal
// bit for bit. It holds no host path and nothing a runner chooses for
// itself (cache, evidence directory, runtime, registry mirror).
type Recipe struct {
	// SourceDigest is the source tree manifest's digest.
	SourceDigest string `json:"sourceDigest"`
	// Builder is the builder image's pinned digest (as configured; the
	// digest of the manifest that ran is in each run).
	Builder         string            `json:"builder"`
	Command         []string          `json:"command"`
	Workdir         string            `json:"workdir"`
	Env             map[string]string `json:"env"`
	SourceDateEpoch int64             `json:"sourceDateEpoch"`
}

// Digest is the "sha256:<hex>" of the recipe's canonical JSON encoding.
func (r Recipe) Digest() string {
	data, err := canonicalJSON(r.normalized())
	if err != nil { // a Recipe always encodes
		panic(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Differences names the fields in which r and o differ, in field order.
func (r Recipe) Differences(o Recipe) []string {
	a, b := r.normalized(), o.normalized()
	var out []string
	add := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	add("sourceDigest", a.SourceDigest == b.SourceDigest)
	add("builder", a.Builder == b.Builder)
	add("command", equalJSON(a.Command, b.Command))
	add("workdir", a.Workdir == b.Workdir)
	add("env", equalJSON(a.Env, b.Env))
	add("sourceDateEpoch", a.SourceDateEpoch == b.SourceDateEpoch)
	return out
}

// normalized has empty lists and maps instead of nil ones.
func (r Recipe) normalized() Recipe {
	r.Command = nonNil(r.Command)
	if r.Env == nil {
		r.Env = map[string]string{}
	}
	return r
}

// Checks are the configured checks a runner ran besides the control
// build; they do not change the control output, so runners may differ in
// them.
type Checks struct {
	Runs       int      `json:"runs"`
	Variations []string `json:"variations"`
	// Diverse are the diverse builders' pinned digests, as configured.
	Diverse []string `json:"diverse"`
}

// BuildRun is one build of a runner's guarded build.
type BuildRun struct {
	Index int `json:"index"`
	// Builder is the digest of the image manifest that ran.
	Builder    string   `json:"builder"`
	Diverse    bool     `json:"diverse"`
	Variations []string `json:"variations"`
	// OutputDigest is the output tree manifest's digest; empty when the
	// run built nothing.
	OutputDigest string `json:"outputDigest"`
	ExitCode     int    `json:"exitCode"`
}

// DiverseResult is one diverse builder's output.
type DiverseResult struct {
	Builder      string `json:"builder"`
	OutputDigest string `json:"outputDigest"`
}

// BuildResult is the predicate of a build-result statement.
type BuildResult struct {
	Recipe Recipe `json:"recipe"`
	// RecipeDigest is Recipe.Digest(), for people; a verifier recomputes
	// it.
	RecipeDigest string `json:"recipeDigest"`
	// OutputDigest is the control run's output tree manifest digest, the
	// statement's subject; empty when the control built nothing.
	OutputDigest string          `json:"outputDigest"`
	Checks       Checks          `json:"checks"`
	Runs         []BuildRun      `json:"runs"`
	Diverse      []DiverseResult `json:"diverse"`
	Reproducible bool            `json:"reproducible"`
	// Decision is the runner's own decision: pass, fail or error.
	Decision string `json:"decision"`
	// Violations are the rules the runner's build broke, by name.
	Violations []string `json:"violations"`
}

// BuildResultStatement returns the in-toto statement of a runner's build
// result. Its subject is the control run's output (named OutputName, by
// its tree manifest's digest); without one, the source tree stands in, so
// that a failed build still says what was attempted.
func BuildResultStatement(p BuildResult) (*Statement, error) {
	p = p.normalized()
	var subject ResourceDescriptor
	switch {
	case DigestSet(p.OutputDigest) != nil:
		subject = ResourceDescriptor{Name: OutputName, Digest: DigestSet(p.OutputDigest), MediaType: RunMediaType}
	case DigestSet(p.Recipe.SourceDigest) != nil:
		subject = ResourceDescriptor{Name: "source", Digest: DigestSet(p.Recipe.SourceDigest), MediaType: SourceMediaType}
	default:
		return nil, errors.New("build result: neither an output nor a source digest")
	}
	return &Statement{Type: StatementType, Subject: []ResourceDescriptor{subject}, PredicateType: BuildResultPredicateType, Predicate: p}, nil
}

// normalized sorts what has no order of its own and fills nil lists, so
// that the encoding is byte-stable.
func (p BuildResult) normalized() BuildResult {
	p.Recipe = p.Recipe.normalized()
	p.RecipeDigest = p.Recipe.Digest()
	p.Checks.Variations = nonNil(p.Checks.Variations)
	p.Checks.Diverse = nonNil(p.Checks.Diverse)
	runs := make([]BuildRun, len(p.Runs))
	copy(runs, p.Runs)
	for i := range runs {
		runs[i].Variations = nonNil(runs[i].Variations)
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Index < runs[j].Index })
	p.Runs = runs
	if p.Diverse == nil {
		p.Diverse = []DiverseResult{}
	}
	p.Violations = nonNil(p.Violations)
	return p
}

// ParseBuildResult decodes a build-result statement strictly: the in-toto
// Statement v1 type, the build-result predicate type, no unknown field,
// one subject, which must be the output the predicate names (or the source
// when there is no output), and a recipe digest that matches the recipe.
func ParseBuildResult(statement []byte) (*BuildResult, error) {
	var st struct {
		Type          string               `json:"_type"`
		Subject       []ResourceDescriptor `json:"subject"`
		PredicateType string               `json:"predicateType"`
		Predicate     json.RawMessage      `json:"predicate"`
	}
	if err := json.Unmarshal(statement, &st); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	if st.Type != StatementType {
		return nil, fmt.Errorf("statement type %q: want %q", st.Type, StatementType)
	}
	if st.PredicateType != BuildResultPredicateType {
		return nil, &PredicateTypeError{Got: st.PredicateType}
	}
	dec := json.NewDecoder(bytes.NewReader(st.Predicate))
	dec.DisallowUnknownFields()
	var p BuildResult
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("build-result predicate: %w", err)
	}
	if len(st.Subject) != 1 {
		return nil, fmt.Errorf("build result has %d subjects: want 1", len(st.Subject))
	}
	want := p.OutputDigest
	if want == "" {
		want = p.Recipe.SourceDigest
	}
	if d := DigestSet(want); d == nil || len(st.Subject[0].Digest) != 1 || st.Subject[0].Digest["sha256"] != d["sha256"] {
		return nil, fmt.Errorf("the subject %v is not the output %q the predicate names", st.Subject[0].Digest, p.OutputDigest)
	}
	if got := p.Recipe.Digest(); p.RecipeDigest != got {
		return nil, fmt.Errorf("recipeDigest %q does not match the recipe (%s)", p.RecipeDigest, got)
	}
	return &p, nil
}

// PredicateTypeError is a statement of another predicate type.
type PredicateTypeError struct{ Got string }

func (e *PredicateTypeError) Error() string {
	return fmt.Sprintf("predicate type %q is not a build result (%s)", e.Got, BuildResultPredicateType)
}

func canonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func equalJSON(a, b any) bool {
	x, err1 := canonicalJSON(a)
	y, err2 := canonicalJSON(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
