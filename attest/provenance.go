package attest

import (
	"errors"
	"sort"
	"strconv"
)

// MaxFileSubjects bounds the subjects of a statement: an output with more
// files than this is one subject, its tree manifest (the verifiers we know
// refuse statements with more than 1024 subjects).
const MaxFileSubjects = 1000

// OutputName is the subject naming a whole output tree by its manifest.
const OutputName = "output"

// File is one regular file of the output tree.
type File struct {
	// Path is slash-separated, relative to the output's root.
	Path string
	// SHA256 is the lower-case hex SHA-256 of the content.
	SHA256 string
}

// Run is one build of the guarded build, for the byproducts.
type Run struct {
	Index        int
	Builder      string // the builder image digest
	Diverse      bool
	Variations   []string
	OutputDigest string // the output tree manifest's digest
	ExitCode     int
	// Sandbox is the isolation the run had (report.json's
	// runs[].sandbox), nil when it never started.
	Sandbox any
}

// Mismatch is a pair of runs whose outputs differ.
type Mismatch struct {
	RunA, RunB int
	Kind       string
	Variation  string
}

// Image is an image the build consumed.
type Image struct {
	Role   string // builder, diverse or base
	Ref    string // as configured
	Digest string // sha256:<hex>; empty when not pinned
}

// GitSource is the repository and commit a source was checked out from.
type GitSource struct {
	// URI is "git+https://host/path" (or git+ssh, git+http, git+git),
	// without credentials; empty when the checkout has no network remote.
	URI string
	// Commit is the commit id, hex.
	Commit string
}

// GitSourceName names the git source among the resolved dependencies.
const GitSourceName = "git"

// Build describes a guarded build: what the statements say.
type Build struct {
	// Files are the control run's output files; OutputDigest its tree
	// manifest's digest. Both are empty when no output was built.
	Files        []File
	OutputDigest string
	// Source is the source as configured (never a host path) and
	// SourceDigest its tree manifest's digest.
	Source          string
	SourceDigest    string
	SourceDateEpoch int64
	// Git, when the source is a git checkout, names its repository and
	// commit: a resolved dependency beside the tree digest.
	Git *GitSource
	// Dependencies are further resolved dependencies that the source
	// brings, listed after the source and before the images: the vendored
	// Go modules (GoVendorDependencies).
	Dependencies []ResourceDescriptor
	Command      []string
	Workdir      string
	Env          map[string]string
	Images       []Image
	Runs         []Run
	Mismatches   []Mismatch
	// Reproducible says every run's output equals the control's.
	Reproducible bool
	// Publish, when the build publishes, is how the image is made from
	// the output (buildguard.yaml's publish section: the destination and
	// the image config set over the base's), so that a rebuild can make
	// the same image digest; the base is among the images.
	Publish any
}

// Subjects are the statements' subjects: each output file by its SHA-256,
// in path order, or the whole tree when the files are too many. Without
// output, the source tree stands in, so that a failed build still has a
// statement about what was attempted.
func (b *Build) Subjects() ([]ResourceDescriptor, error) {
	switch {
	case len(b.Files) > 0 && len(b.Files) <= MaxFileSubjects:
		files := append([]File(nil), b.Files...)
		sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
		out := make([]ResourceDescriptor, len(files))
		for i, f := range files {
			out[i] = ResourceDescriptor{Name: f.Path, Digest: map[string]string{"sha256": f.SHA256}}
		}
		return out, nil
	case DigestSet(b.OutputDigest) != nil:
		return []ResourceDescriptor{{Name: OutputName, Digest: DigestSet(b.OutputDigest), MediaType: RunMediaType}}, nil
	case DigestSet(b.SourceDigest) != nil:
		return []ResourceDescriptor{{Name: "source", Digest: DigestSet(b.SourceDigest), MediaType: SourceMediaType}}, nil
	}
	return nil, errors.New("statement subject: neither an output nor a source digest")
}

// Provenance returns the SLSA Provenance v1 statement of the output.
func Provenance(b *Build) (*Statement, error) {
	subjects, err := b.Subjects()
	if err != nil {
		return nil, err
	}
	env := b.Env
	if env == nil {
		env = map[string]string{}
	}
	ext := map[string]any{
		"source":          b.Source,
		"command":         nonNil(b.Command),
		"workdir":         b.Workdir,
		"env":             env,
		"sourceDateEpoch": b.SourceDateEpoch,
	}
	if b.Publish != nil {
		ext["publish"] = b.Publish
	}
	var deps []ResourceDescriptor
	if d := DigestSet(b.SourceDigest); d != nil {
		deps = append(deps, ResourceDescriptor{Name: "source", Digest: d, MediaType: SourceMediaType})
	}
	if g := b.Git; g != nil && g.Commit != "" {
		deps = append(deps, ResourceDescriptor{Name: GitSourceName, URI: g.URI, Digest: map[string]string{"gitCommit": g.Commit}})
	}
	deps = append(deps, b.Dependencies...)
	images := append([]Image(nil), b.Images...)
	sort.SliceStable(images, func(i, j int) bool {
		if images[i].Role != images[j].Role {
			return images[i].Role < images[j].Role
		}
		return images[i].Ref < images[j].Ref
	})
	for _, im := range images {
		deps = append(deps, ResourceDescriptor{Name: im.Ref, URI: ociURI(im.Ref), Digest: DigestSet(im.Digest), Annotations: map[string]any{"role": im.Role}})
	}
	return &Statement{
		Type: StatementType, Subject: subjects, PredicateType: ProvenancePredicateType,
		Predicate: map[string]any{
			"buildDefinition": map[string]any{
				"buildType":            BuildType,
				"externalParameters":   ext,
				"internalParameters":   b.internalParameters(),
				"resolvedDependencies": nonNilRD(deps),
			},
			"runDetails": map[string]any{
				"builder":    map[string]any{"id": BuilderID},
				"byproducts": b.byproducts(),
			},
		},
	}, nil
}

// internalParameters are what buildguard chose for the runs, not the
// user: the sandbox each run had, by run index.
func (b *Build) internalParameters() map[string]any {
	runs := append([]Run(nil), b.Runs...)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Index < runs[j].Index })
	sandboxes := []map[string]any{}
	for _, r := range runs {
		if r.Sandbox != nil {
			sandboxes = append(sandboxes, map[string]any{"run": r.Index, "sandbox": r.Sandbox})
		}
	}
	return map[string]any{"sandboxes": sandboxes}
}

// byproducts are each run's output and the reproducibility verdict.
func (b *Build) byproducts() []ResourceDescriptor {
	runs := append([]Run(nil), b.Runs...)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Index < runs[j].Index })
	out := []ResourceDescriptor{}
	for _, r := range runs {
		ann := map[string]any{"index": r.Index, "builder": r.Builder, "exitCode": r.ExitCode, "variations": nonNil(r.Variations)}
		if r.Diverse {
			ann["diverse"] = true
		}
		out = append(out, ResourceDescriptor{Name: "run-" + strconv.Itoa(r.Index), Digest: DigestSet(r.OutputDigest), MediaType: RunMediaType, Annotations: ann})
	}
	mism := make([]map[string]any, 0, len(b.Mismatches))
	for _, m := range b.Mismatches {
		e := map[string]any{"runA": m.RunA, "runB": m.RunB, "kind": m.Kind}
		if m.Variation != "" {
			e["variation"] = m.Variation
		}
		mism = append(mism, e)
	}
	out = append(out, ResourceDescriptor{Name: "reproducibility", MediaType: ReproducibilityMediaType, Annotations: map[string]any{
		"reproducible": b.Reproducible, "runs": len(runs), "mismatches": mism,
	}})
	return out
}

// ociURI is the URI of an image reference: "oci://" and the reference.
func ociURI(ref string) string {
	if ref == "" {
		return ""
	}
	return "oci://" + ref
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilRD(s []ResourceDescriptor) []ResourceDescriptor {
	if s == nil {
		return []ResourceDescriptor{}
	}
	return s
}
