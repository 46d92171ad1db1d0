package sbom

import (
	"context"
	"crypto"
	_ "crypto/sha1" //nolint:gosec // SPDX 2.3 requires a SHA-1 checksum of every file; nothing trusts it
	_ "crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/cataloging"
	"github.com/anchore/syft/syft/cataloging/filecataloging"
	"github.com/anchore/syft/syft/source"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	_ "modernc.org/sqlite" // the database driver syft's RPM cataloger needs, as the syft CLI registers it

	"github.com/buildguard/buildguard/evidence"
)

// Format is an SBOM document format.
type Format string

// The formats Generate writes.
const (
	SPDXJSON      Format = "spdx-json"      // SPDX 2.3, JSON
	CycloneDXJSON Format = "cyclonedx-json" // CycloneDX 1.6, JSON
)

// Formats lists every format, in the order Generate writes them.
var Formats = []Format{SPDXJSON, CycloneDXJSON}

// ParseFormat returns the format named s ("spdx-json" or "cyclonedx-json").
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", &UsageError{Msg: fmt.Sprintf("unknown SBOM format %q: want spdx-json or cyclonedx-json", s)}
}

// FileName is the name of the document in an evidence directory:
// sbom.spdx.json or sbom.cdx.json.
func (f Format) FileName() string {
	if f == CycloneDXJSON {
		return "sbom.cdx.json"
	}
	return "sbom.spdx.json"
}

// SyftVersion is the version of syft that makes the documents; they name it
// as their tool. (syft would read it from the build information, which test
// binaries and stripped binaries lack.) A test keeps it equal to go.mod's.
const SyftVersion = "v1.57.1"

// DefaultMaxImageBytes bounds the compressed layers of an image Generate
// fetches when Options.MaxImageBytes is zero.
const DefaultMaxImageBytes int64 = 8 << 30

// Options tune Generate. The zero value writes both formats, dated
// 1970-01-01T00:00:00Z.
type Options struct {
	// SourceDateEpoch is the documents' creation time in seconds since the
	// Unix epoch: the build's SOURCE_DATE_EPOCH. It must not be negative.
	SourceDateEpoch int64
	// Name is what the documents call the target. Empty: "." for a
	// directory (the root of the scanned tree: its path is never used, so
	// the documents do not depend on where the tree lives); for an image,
	// its repository, with the digest as version, as syft names it.
	Name string
	// Formats to encode; empty: all of Formats.
	Formats []Format
	// Platform (OS/ARCH[/VARIANT]) chooses an image from an image index;
	// empty is accepted only for an index with a single image. For a
	// digest that names one image it is checked against the image's.
	Platform string
	// Remote are extra go-containerregistry options for fetching an image
	// (transport, credentials). By default credentials come from the
	// Docker config and its helpers.
	Remote []remote.Option
	// MaxImageBytes bounds the total compressed size of an image's layers,
	// as its manifest states, before anything is fetched. Zero:
	// DefaultMaxImageBytes.
	MaxImageBytes int64
	// Parallelism is how many catalogers run at once; zero: syft's default
	// (the number of CPUs).
	Parallelism int
}

// Validate rejects options that cannot give a document.
func (o *Options) Validate() error {
	if o.SourceDateEpoch < 0 {
		return &UsageError{Msg: fmt.Sprintf("source date epoch %d is negative", o.SourceDateEpoch)}
	}
	for _, f := range o.Formats {
		if _, err := ParseFormat(string(f)); err != nil {
			return err
		}
	}
	if o.MaxImageBytes < 0 || o.Parallelism < 0 {
		return &UsageError{Msg: "MaxImageBytes and Parallelism must not be negative"}
	}
	return nil
}

// Package is a package as policy rules see it. Its fields match
// policy.Package, so policy.Package(p) converts it.
type Package struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	PURL     string   `json:"purl"`
	Licenses []string `json:"licenses"`
}

// Result is what Generate found and wrote.
type Result struct {
	// Target is the directory or image reference that was described.
	Target string
	// Packages are every package in the documents, sorted by name,
	// version and purl. A module found in two binaries is listed twice,
	// as in the documents.
	Packages []Package
	// Documents holds the encoded documents by format.
	Documents map[Format][]byte
}

// Summary is the SBOM part of buildguard's report; files are the names of
// the documents written (see Format.FileName).
func (r *Result) Summary(files ...string) *evidence.SBOMSummary {
	return &evidence.SBOMSummary{Packages: len(r.Packages), Files: append([]string{}, files...)}
}

// Generate describes target, a directory or an image by digest
// (REGISTRY/REPO@sha256:HEX), and encodes the description in each of
// opts.Formats. A target that is neither, or an image reference without a
// digest, is a *UsageError.
func Generate(ctx context.Context, target string, opts Options) (*Result, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	t, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	go licenseContext() //nolint:errcheck // warm it while the target is opened; scan reports the error
	src, err := t.open(ctx, &opts)
	if err != nil {
		return nil, err
	}
	defer src.Close() //nolint:errcheck // cleanup of a read-only scan
	if t.Image == nil {
		// index the tree now, while the license scanner is being built
		// (syft would do one after the other); the source keeps the index
		if _, err := src.FileResolver(source.SquashedScope); err != nil {
			return nil, fmt.Errorf("reading %s: %w", t, err)
		}
	}

	s, err := scan(ctx, src, &opts)
	if err == nil {
		err = ctx.Err() // syft does not always stop when told: a cut-short scan is no SBOM
	}
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", t, err)
	}
	t.sanitize(s)

	res := &Result{Target: t.String(), Packages: packages(s), Documents: map[Format][]byte{}}
	formats := opts.Formats
	if len(formats) == 0 {
		formats = Formats
	}
	for _, f := range formats {
		doc, err := encode(f, s, opts.SourceDateEpoch)
		if err != nil {
			return nil, fmt.Errorf("encoding the SBOM of %s as %s: %w", t, f, err)
		}
		res.Documents[f] = doc
	}
	return res, nil
}

// scan catalogs src with the syft CLI's defaults: packages, and the files
// they own with their SHA-1 and SHA-256.
func scan(ctx context.Context, src source.Source, opts *Options) (*sbomModel, error) {
	files := filecataloging.DefaultConfig()
	files.Hashers = []crypto.Hash{crypto.SHA1, crypto.SHA256}
	cfg := syft.DefaultCreateSBOMConfig().
		WithTool("syft", SyftVersion).
		WithParallelism(opts.Parallelism).
		WithFilesConfig(files)
	lctx, err := licenseContext()
	if err != nil {
		return nil, err
	}
	return syft.CreateSBOM(withValues{Context: ctx, values: lctx}, src, cfg)
}

// Prepare builds, in the background, what the first Generate of a process
// would otherwise build first (syft's license scanner, about a second), so
// that a caller that knows an SBOM will be wanted (the guarded build, while
// its builds run) does not wait for it then. Calling it more than once, or
// never, is fine.
func Prepare() {
	go func() { _, _ = licenseContext() }()
}

// licenseContext carries syft's license scanner (the default, as
// CreateSBOM would make it), built once per process: compiling the license
// texts into a matcher costs about as much as cataloging 100 MB of Go
// binaries, and the scanner is safe for concurrent use (syft shares one
// among its parallel catalogers).
var licenseContext = sync.OnceValues(func() (context.Context, error) {
	return syft.SetContextLicenseScanner(context.Background(), cataloging.DefaultLicenseConfig())
})

// withValues is Context (its deadline, cancellation and values) that also
// has the values of values: syft takes the license scanner from a context
// value whose key it does not export.
type withValues struct {
	context.Context
	values context.Context
}

func (c withValues) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.values.Value(key)
}

// packages lists s's packages for policy rules.
func packages(s *sbomModel) []Package {
	var out []Package
	for _, p := range s.Artifacts.Packages.Sorted() {
		var lic []string
		for _, l := range p.Licenses.ToSlice() {
			v := l.SPDXExpression
			if v == "" {
				v = l.Value
			}
			if v != "" && !slices.Contains(lic, v) {
				lic = append(lic, v)
			}
		}
		slices.Sort(lic)
		if lic == nil {
			lic = []string{}
		}
		out = append(out, Package{Name: p.Name, Version: p.Version, PURL: p.PURL, Licenses: lic})
	}
	slices.SortStableFunc(out, func(a, b Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.Version, b.Version); c != 0 {
			return c
		}
		if c := strings.Compare(a.PURL, b.PURL); c != 0 {
			return c
		}
		return slices.Compare(a.Licenses, b.Licenses)
	})
	if out == nil {
		out = []Package{}
	}
	return out
}
