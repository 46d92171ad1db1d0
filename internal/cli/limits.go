package cli

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/deps"
	"github.com/buildguard/buildguard/reproduce"
	"github.com/buildguard/buildguard/sbom"
	"github.com/buildguard/buildguard/trust"
)

// LimitSet says which limits a command reads, so that it registers only
// their flags.
type LimitSet uint8

// The groups of limits.
const (
	// ImageLimits bound a builder image as it is unpacked.
	ImageLimits LimitSet = 1 << iota
	// RunLimits bound what a build leaves: its log and its output tree.
	RunLimits
	// TrustLimits bound what is read from a registry to verify an image.
	TrustLimits
	// DiffLimits bound the explanation of a mismatch.
	DiffLimits
	// SBOMLimits bound an image whose SBOM is made.
	SBOMLimits
	// DependencyLimits bound the dependencies the prefetch stage fetches.
	DependencyLimits

	// BuildCommandLimits are the limits `buildguard build` reads.
	BuildCommandLimits = ImageLimits | RunLimits | TrustLimits | DiffLimits | DependencyLimits
	// VerifyCommandLimits are the limits `buildguard verify` reads.
	VerifyCommandLimits = TrustLimits
)

// maxCountFlag bounds a count given as a flag, as config.Validate bounds the
// field (the limits are int fields).
const maxCountFlag = 1<<31 - 1

// limitDef is one limit: its flag, its field in buildguard.yaml's limits
// section, its default, and what it bounds.
type limitDef struct {
	flag  string
	field string
	set   LimitSet
	size  bool // a quantity of bytes (8Gi), not a count
	def   int64
	usage string
	ptr   func(*config.InputLimits) *int64
}

// limitDefs lists every settable limit, in the order of the limits section.
var limitDefs = []limitDef{
	{"max-image-bytes", "imageBytes", ImageLimits, true, builder.DefaultMaxBytes,
		"total size of the files of one builder image", func(l *config.InputLimits) *int64 { return (*int64)(&l.ImageBytes) }},
	{"max-layers", "layers", ImageLimits, false, builder.DefaultMaxLayers,
		"layers of one builder image", func(l *config.InputLimits) *int64 { return &l.Layers }},
	{"max-tar-entries", "tarEntries", ImageLimits, false, builder.DefaultMaxEntries,
		"tar entries of one builder image, over all its layers", func(l *config.InputLimits) *int64 { return &l.TarEntries }},
	{"max-path-length", "pathLength", ImageLimits, false, builder.DefaultMaxPathLen,
		"bytes of a path or link target in a builder image", func(l *config.InputLimits) *int64 { return &l.PathLength }},
	{"max-path-depth", "pathDepth", ImageLimits, false, builder.DefaultMaxDepth,
		"components of a path in a builder image", func(l *config.InputLimits) *int64 { return &l.PathDepth }},
	{"max-build-log-bytes", "buildLogBytes", RunLimits, true, builder.DefaultMaxLog,
		"bytes kept of each build's log (the rest is dropped, with a note)", func(l *config.InputLimits) *int64 { return (*int64)(&l.BuildLogBytes) }},
	{"max-output-entries", "outputEntries", RunLimits, false, builder.DefaultMaxOutputEntries,
		"entries of each build's output tree and of the source tree", func(l *config.InputLimits) *int64 { return &l.OutputEntries }},
	{"max-referrers", "referrers", TrustLimits, false, trust.DefaultMaxReferrers,
		"referrers (signatures, attestations) an image may list", func(l *config.InputLimits) *int64 { return &l.Referrers }},
	{"max-signature-manifest-bytes", "signatureManifestBytes", TrustLimits, true, trust.DefaultMaxManifestBytes,
		"size of one referrer's manifest", func(l *config.InputLimits) *int64 { return (*int64)(&l.SignatureManifestBytes) }},
	{"max-bundle-bytes", "bundleBytes", TrustLimits, true, trust.DefaultMaxBundleBytes,
		"size of one Sigstore bundle", func(l *config.InputLimits) *int64 { return (*int64)(&l.BundleBytes) }},
	{"max-bundle-log-entries", "bundleLogEntries", TrustLimits, false, trust.DefaultMaxLogEntries,
		"transparency-log entries of one bundle", func(l *config.InputLimits) *int64 { return &l.BundleLogEntries }},
	{"max-diff-files", "diffFiles", DiffLimits, false, int64(reproduce.DefaultLimits.MaxItems),
		"differing files explained per mismatch (and lines of each summary)", func(l *config.InputLimits) *int64 { return &l.DiffFiles }},
	{"max-diff-lines", "diffLines", DiffLimits, false, int64(reproduce.DefaultLimits.MaxDiffLines),
		"lines of each unified diff of a mismatch", func(l *config.InputLimits) *int64 { return &l.DiffLines }},
	{"max-diff-file-bytes", "diffFileBytes", DiffLimits, true, reproduce.DefaultLimits.MaxFileBytes,
		"bytes read of each side of a differing file", func(l *config.InputLimits) *int64 { return (*int64)(&l.DiffFileBytes) }},
	{"max-dependency-bytes", "dependencyBytes", DependencyLimits, true, deps.DefaultMaxBytes,
		"size of one dependency download (module zip, npm tarball, file)", func(l *config.InputLimits) *int64 { return (*int64)(&l.DependencyBytes) }},
	{"max-dependencies", "dependencies", DependencyLimits, false, deps.DefaultMaxCount,
		"dependencies over every lockfile", func(l *config.InputLimits) *int64 { return &l.Dependencies }},
	// buildguard sbom reads no buildguard.yaml, and the build's SBOM is of
	// a directory: this limit has a flag only.
	{"max-sbom-image-bytes", "", SBOMLimits, true, sbom.DefaultMaxImageBytes,
		"compressed layers of an image whose SBOM is made", nil},
}

// LimitOptions are the --max-... flags. A flag that is given replaces the
// field of buildguard.yaml's limits section it names (see Apply); one that
// is not leaves the field, and so the default when the file does not set
// it.
type LimitOptions struct {
	// values holds what the flags set; a flag not given leaves its field 0.
	values config.InputLimits
	// sbomImageBytes is --max-sbom-image-bytes, which has no field.
	sbomImageBytes int64
	// changed reports whether a flag was given on the command line.
	changed func(flag string) bool
	set     LimitSet
}

// AddFlags registers on fs the flags of the limits in which, each with its
// default and the buildguard.yaml field it replaces in the help.
func (o *LimitOptions) AddFlags(fs *pflag.FlagSet, which LimitSet) {
	o.changed, o.set = fs.Changed, which
	for _, d := range limitDefs {
		if d.set&which == 0 {
			continue
		}
		what := "`N`"
		if d.size {
			what = "`SIZE`"
		}
		usage := fmt.Sprintf("bound the %s to %s", d.usage, what)
		p := &o.sbomImageBytes
		if d.ptr != nil {
			p = d.ptr(&o.values)
			usage += fmt.Sprintf(" (buildguard.yaml: limits.%s)", d.field)
		}
		fs.Var(&limitValue{p: p, def: d.def, size: d.size}, d.flag, usage)
	}
}

// Apply replaces each field of l whose flag was given with the flag's value.
func (o *LimitOptions) Apply(l *config.InputLimits) {
	for _, d := range limitDefs {
		if d.ptr != nil && d.set&o.set != 0 && o.changed != nil && o.changed(d.flag) {
			*d.ptr(l) = *d.ptr(&o.values)
		}
	}
}

// Values returns the limits the flags give, zero (the default) for a flag
// not given: what a command without buildguard.yaml uses.
func (o *LimitOptions) Values() config.InputLimits {
	var l config.InputLimits
	o.Apply(&l)
	return l
}

// SBOMImageBytes is --max-sbom-image-bytes, or 0 (the default) when it is
// not given: sbom.Options.MaxImageBytes.
func (o *LimitOptions) SBOMImageBytes() int64 { return o.sbomImageBytes }

// TrustLimitsOf are the trust package's limits from a limits section; a
// zero field keeps trust's default.
func TrustLimitsOf(l config.InputLimits) trust.Limits {
	return trust.Limits{
		MaxReferrers: clampInt(l.Referrers), MaxManifestBytes: int64(l.SignatureManifestBytes),
		MaxBundleBytes: int64(l.BundleBytes), MaxLogEntries: clampInt(l.BundleLogEntries),
	}
}

// clampInt converts a count bounded by config.Validate and the flags;
// anything larger is clamped to that bound, never wrapped.
func clampInt(n int64) int { return int(min(n, maxCountFlag)) }

// limitValue is the pflag.Value of one --max-... flag: a quantity of bytes
// (8Gi) or a count, at least 1.
type limitValue struct {
	p    *int64
	def  int64
	size bool
}

func (v *limitValue) String() string {
	if v.p == nil || *v.p == 0 {
		return formatLimit(v.def, v.size)
	}
	return formatLimit(*v.p, v.size)
}

func (v *limitValue) Type() string {
	if v.size {
		return "size"
	}
	return "int"
}

func (v *limitValue) Set(s string) error {
	var n int64
	if v.size {
		q, err := config.ParseQuantity(s)
		if err != nil {
			return fmt.Errorf("want a size such as 512Mi, 8Gi or a number of bytes: %w", err)
		}
		n = int64(q)
	} else {
		var err error
		if n, err = strconv.ParseInt(s, 10, 64); err != nil {
			return errors.New("want a whole number")
		}
		if n > maxCountFlag {
			return fmt.Errorf("must be at most %d", maxCountFlag)
		}
	}
	if n < 1 {
		return fmt.Errorf("must be at least 1 (the default is %s)", formatLimit(v.def, v.size))
	}
	*v.p = n
	return nil
}

// formatLimit writes a size with the largest binary suffix that divides it
// (8Gi, 64Ki), and a count as a number.
func formatLimit(n int64, size bool) string {
	if size && n > 0 {
		for _, u := range []struct {
			suffix string
			shift  uint
		}{{"Ti", 40}, {"Gi", 30}, {"Mi", 20}, {"Ki", 10}} {
			if n%(1<<u.shift) == 0 {
				return strconv.FormatInt(n>>u.shift, 10) + u.suffix
			}
		}
	}
	return strconv.FormatInt(n, 10)
}
