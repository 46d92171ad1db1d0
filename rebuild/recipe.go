package rebuild

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/pin"
)

// MaxPredicate bounds the predicate a recipe is read from; the bundle it
// was verified from is bounded already (trust.Limits), this keeps a
// caller of ParseRecipe bounded too.
const MaxPredicate = 16 << 20

// ErrNoRecipe is a verified provenance that buildguard cannot rebuild
// from: another builder's, another build type, a field missing or
// malformed. RecipeError wraps it.
var ErrNoRecipe = errors.New("no rebuildable recipe")

// RecipeError says why a provenance holds no recipe.
type RecipeError struct{ Detail string }

func (e *RecipeError) Error() string { return "provenance: " + e.Detail }

// Unwrap returns ErrNoRecipe.
func (e *RecipeError) Unwrap() error { return ErrNoRecipe }

func noRecipe(format string, args ...any) error {
	return &RecipeError{Detail: fmt.Sprintf(format, args...)}
}

// Recipe is what a guarded build's provenance (attest.Provenance) records
// of how its output was made: enough to make it again.
type Recipe struct {
	// Source is the source as configured (e.g. "." or "src") and
	// SourceDigest its tree manifest's digest (package source: the files
	// git tracks, for a checkout).
	Source       string `json:"source"`
	SourceDigest string `json:"sourceDigest"`
	// Git is the repository and commit, when the source was a git
	// checkout; its URI is empty when the checkout had no network remote.
	Git *attest.GitSource `json:"git,omitempty"`
	// Builder is the builder image as configured, NAME[:TAG]@sha256:...
	Builder string `json:"builder"`
	// Diverse are the diverse builders, as configured.
	Diverse []string `json:"diverse"`
	// Base is the image the output was layered on; empty for an OCI
	// artifact.
	Base            string            `json:"base,omitempty"`
	Command         []string          `json:"command"`
	Workdir         string            `json:"workdir"`
	Env             map[string]string `json:"env"`
	SourceDateEpoch int64             `json:"sourceDateEpoch"`
	// Publish is how the image was made of the output (buildguard.yaml's
	// publish section); nil when the build did not publish.
	Publish *config.Publish `json:"publish,omitempty"`
	// OutputDigest is the control run's output tree manifest digest.
	OutputDigest string `json:"outputDigest"`
	// Dependencies are the dependencies entries the build prefetched,
	// read back from the resolved dependencies: a gomod or npm lockfile's
	// directory (the lockfile itself is in the source, whose digest is
	// checked), a file by URL, sha256 and dest. The prefetch checks each
	// against the lockfile again.
	Dependencies []config.Dependency `json:"dependencies,omitempty"`
	// UnpinnedDependencies says the build had dependencies its lockfile
	// names without a hash, which the build's policy must have waived
	// (dependencies-pinned).
	UnpinnedDependencies bool `json:"unpinnedDependencies,omitempty"`
}

// BuilderDigest is the digest the builder image is pinned by.
func (r *Recipe) BuilderDigest() string {
	_, d, _ := strings.Cut(r.Builder, "@")
	return d
}

// predicate is the part of the provenance a recipe is read from.
type predicate struct {
	BuildDefinition struct {
		BuildType          string                      `json:"buildType"`
		ExternalParameters map[string]json.RawMessage  `json:"externalParameters"`
		ResolvedDeps       []attest.ResourceDescriptor `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		Byproducts []attest.ResourceDescriptor `json:"byproducts"`
	} `json:"runDetails"`
}

// knownParameters are the externalParameters attest.Provenance writes; any
// other is a recipe this version does not know how to follow.
var knownParameters = map[string]bool{"source": true, "command": true, "workdir": true, "env": true, "sourceDateEpoch": true, "publish": true}

// ParseRecipe reads the recipe of a buildguard guarded build from the
// predicate of its SLSA provenance v1 (as JSON). It refuses, with a
// RecipeError, a predicate of another builder or build type, or one that
// lacks a field a rebuild needs, or records what this version cannot
// rebuild (prefetched dependencies, an unknown parameter). The predicate
// must come from a verified statement: ParseRecipe checks form, not trust.
func ParseRecipe(pred []byte) (*Recipe, error) {
	if len(pred) > MaxPredicate {
		return nil, noRecipe("predicate of %d bytes is larger than the limit of %d", len(pred), MaxPredicate)
	}
	var p predicate
	dec := json.NewDecoder(bytes.NewReader(pred))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, noRecipe("not SLSA provenance v1: %v", err)
	}
	if id := p.RunDetails.Builder.ID; id != attest.BuilderID {
		return nil, noRecipe("builder id %q is not buildguard's (%s): only a guarded build's provenance records a recipe buildguard can follow", id, attest.BuilderID)
	}
	bd := p.BuildDefinition
	if bd.BuildType != attest.BuildType {
		return nil, noRecipe("build type %q is not %s", bd.BuildType, attest.BuildType)
	}
	r := &Recipe{Diverse: []string{}}
	ext := bd.ExternalParameters
	for k := range ext {
		if !knownParameters[k] {
			return nil, noRecipe("externalParameters.%s is unknown to this buildguard: a newer buildguard may rebuild it", k)
		}
	}
	field := func(name string, v any, required bool) error {
		raw, ok := ext[name]
		if !ok || string(raw) == "null" {
			if required {
				return noRecipe("externalParameters.%s is missing", name)
			}
			return nil
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			return noRecipe("externalParameters.%s: %v", name, err)
		}
		return nil
	}
	var epoch json.Number
	for _, f := range []struct {
		name     string
		v        any
		required bool
	}{
		{"source", &r.Source, true}, {"command", &r.Command, true}, {"workdir", &r.Workdir, true},
		{"env", &r.Env, false}, {"sourceDateEpoch", &epoch, true}, {"publish", &r.Publish, false},
	} {
		if err := field(f.name, f.v, f.required); err != nil {
			return nil, err
		}
	}
	if len(r.Command) == 0 {
		return nil, noRecipe("externalParameters.command is empty")
	}
	n, err := strconv.ParseInt(epoch.String(), 10, 64)
	if err != nil || n < 0 {
		// protojson writes every number as a double: 1.7e+09 is 1700000000.
		f, ferr := strconv.ParseFloat(epoch.String(), 64)
		if ferr != nil || f < 0 || f != float64(int64(f)) {
			return nil, noRecipe("externalParameters.sourceDateEpoch %q: want seconds since 1970", epoch)
		}
		n = int64(f)
	}
	r.SourceDateEpoch = n
	if r.Env == nil {
		r.Env = map[string]string{}
	}
	if err := r.readDependencies(bd.ResolvedDeps); err != nil {
		return nil, err
	}
	for _, b := range p.RunDetails.Byproducts {
		if b.MediaType == attest.RunMediaType && b.Name == "run-1" {
			r.OutputDigest = digestOf(b.Digest)
		}
	}
	if r.OutputDigest == "" {
		return nil, noRecipe("no control run (byproduct run-1) with an output digest: the build made no output")
	}
	return r, nil
}

// readDependencies reads the source, its repository and the images.
func (r *Recipe) readDependencies(deps []attest.ResourceDescriptor) error {
	for _, d := range deps {
		role, _ := d.Annotations["role"].(string)
		switch {
		case d.Name == "source" && d.MediaType == attest.SourceMediaType:
			r.SourceDigest = digestOf(d.Digest)
		case d.Name == attest.GitSourceName && d.Digest["gitCommit"] != "":
			r.Git = &attest.GitSource{URI: d.URI, Commit: d.Digest["gitCommit"]}
		case d.Name == attest.GoModulesTxt || d.MediaType == attest.GoModuleMediaType:
			// vendored Go modules: part of the source tree
		case d.Annotations["buildguard.dependencyType"] != nil:
			if err := r.addDependency(d); err != nil {
				return err
			}
		case role == string(config.RoleBuilder) || role == string(config.RoleDiverse) || role == string(config.RoleBase):
			ref, err := pinnedRef(d)
			if err != nil {
				return err
			}
			switch role {
			case string(config.RoleBuilder):
				if r.Builder != "" {
					return noRecipe("two builder images (%s, %s)", r.Builder, ref)
				}
				r.Builder = ref
			case string(config.RoleDiverse):
				r.Diverse = append(r.Diverse, ref)
			default:
				if r.Base != "" {
					return noRecipe("two base images (%s, %s)", r.Base, ref)
				}
				r.Base = ref
			}
		default:
			return noRecipe("resolved dependency %q (role %q) is unknown to this buildguard", d.Name, role)
		}
	}
	switch {
	case r.SourceDigest == "":
		return noRecipe("no source tree digest among the resolved dependencies")
	case r.Builder == "":
		return noRecipe("no builder image among the resolved dependencies")
	}
	return nil
}

// addDependency adds the dependencies entry a prefetched dependency came
// from, once per entry.
func (r *Recipe) addDependency(d attest.ResourceDescriptor) error {
	typ, _ := d.Annotations["buildguard.dependencyType"].(string)
	from, _ := d.Annotations["buildguard.lockfile"].(string)
	if from == "" {
		return noRecipe("dependency %s names no dependencies entry (buildguard.lockfile)", d.Name)
	}
	if p, ok := d.Annotations["buildguard.pinned"].(bool); ok && !p {
		r.UnpinnedDependencies = true
	}
	var dep config.Dependency
	switch config.DependencyType(typ) {
	case config.DependencyGoMod, config.DependencyNPM:
		dep = config.Dependency{Type: config.DependencyType(typ), Path: config.Path{Text: from}}
	case config.DependencyFile:
		h := digestOf(d.Digest)
		if d.URI == "" || h == "" {
			return noRecipe("file dependency %s: no URL or sha256", d.Name)
		}
		dep = config.Dependency{Type: config.DependencyFile, URL: d.URI, SHA256: strings.TrimPrefix(h, "sha256:"), Dest: from}
	default:
		return noRecipe("dependency %s has type %q, unknown to this buildguard", d.Name, typ)
	}
	for _, have := range r.Dependencies {
		if have.Type == dep.Type && have.Path.Text == dep.Path.Text && have.Dest == dep.Dest {
			return nil
		}
	}
	r.Dependencies = append(r.Dependencies, dep)
	return nil
}

// pinnedRef is an image dependency's reference, which must carry the
// digest the dependency records.
func pinnedRef(d attest.ResourceDescriptor) (string, error) {
	want := digestOf(d.Digest)
	ref, err := pin.ParseRef(d.Name)
	if err != nil || !ref.Pinned() || want == "" || ref.Digest != want {
		return "", noRecipe("image %q is not pinned by its recorded digest %q", d.Name, want)
	}
	return d.Name, nil
}

// digestOf is "sha256:<hex>" of a digest set, or "" without a valid one.
func digestOf(d map[string]string) string {
	h := d["sha256"]
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return ""
	}
	return "sha256:" + h
}

// Summary is the recipe in one line, for a person.
func (r *Recipe) Summary() string {
	s := fmt.Sprintf("source %q (%s)", r.Source, r.SourceDigest)
	if r.Git != nil {
		s += " at commit " + r.Git.Commit
		if r.Git.URI != "" {
			s += " of " + r.Git.URI
		}
	}
	s += fmt.Sprintf(", builder %s, command %q, SOURCE_DATE_EPOCH %d", r.Builder, r.Command, r.SourceDateEpoch)
	if r.Base != "" {
		s += ", base " + r.Base
	}
	return s
}
