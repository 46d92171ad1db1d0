package config

// InputLimits is the limits section: bounds on what buildguard reads from
// untrusted sources (builder images, build output, registries). A zero (or
// left out) field takes the built-in default, which the package that applies
// the limit defines; there is no way to switch a limit off. Raise one only
// when a legitimate input needs it: each exists so that a hostile image,
// build or registry cannot exhaust the disk, memory or time. See
// docs/limits.md.
type InputLimits struct {
	// ImageBytes bounds the total size of the regular files of one builder
	// image, over all its layers (builder.Limits.MaxBytes; default 8Gi).
	ImageBytes Quantity `yaml:"imageBytes" json:"imageBytes"`
	// Layers bounds the number of layers of one builder image (default 256).
	Layers int64 `yaml:"layers" json:"layers"`
	// TarEntries bounds the tar entries of one builder image, over all its
	// layers (default 1000000).
	TarEntries int64 `yaml:"tarEntries" json:"tarEntries"`
	// PathLength bounds the length in bytes of a path or link target in a
	// builder image (default 4096).
	PathLength int64 `yaml:"pathLength" json:"pathLength"`
	// PathDepth bounds the number of components of a path in a builder
	// image (default 256).
	PathDepth int64 `yaml:"pathDepth" json:"pathDepth"`
	// BuildLogBytes caps each build's log; output beyond it is dropped, and
	// a note says so (default 16Mi).
	BuildLogBytes Quantity `yaml:"buildLogBytes" json:"buildLogBytes"`
	// OutputEntries bounds the entries of each build's output tree and of
	// the source tree (default 1000000).
	OutputEntries int64 `yaml:"outputEntries" json:"outputEntries"`
	// Referrers bounds the referrers (signatures, attestations) one image
	// may list (default 128).
	Referrers int64 `yaml:"referrers" json:"referrers"`
	// SignatureManifestBytes bounds the manifest of one referrer (default
	// 64Ki).
	SignatureManifestBytes Quantity `yaml:"signatureManifestBytes" json:"signatureManifestBytes"`
	// BundleBytes bounds one Sigstore bundle (default 4Mi).
	BundleBytes Quantity `yaml:"bundleBytes" json:"bundleBytes"`
	// BundleLogEntries bounds the transparency-log entries of one bundle
	// (default 16).
	BundleLogEntries int64 `yaml:"bundleLogEntries" json:"bundleLogEntries"`
	// DiffFiles caps the differing files explained per mismatch, and the
	// lines of each explanation's summary (default 50).
	DiffFiles int64 `yaml:"diffFiles" json:"diffFiles"`
	// DiffLines caps each unified diff of an explanation (default 200).
	DiffLines int64 `yaml:"diffLines" json:"diffLines"`
	// DiffFileBytes bounds what is read of each side of a differing file,
	// and of an archive member once decompressed (default 256Mi).
	DiffFileBytes Quantity `yaml:"diffFileBytes" json:"diffFileBytes"`
	// DependencyBytes bounds one dependency download: a module zip, an npm
	// tarball, a file (default 1Gi).
	DependencyBytes Quantity `yaml:"dependencyBytes" json:"dependencyBytes"`
	// Dependencies bounds the number of dependencies over every lockfile
	// (default 10000).
	Dependencies int64 `yaml:"dependencies" json:"dependencies"`
}

// maxCount is the largest count a limit may be set to: the limits are kept
// in int fields on 32-bit platforms too.
const maxCount = 1<<31 - 1

// limitField is one field of InputLimits: its yaml name, its value, and
// whether it is a count (bounded by maxCount) rather than a size.
type limitField struct {
	name  string
	value int64
	count bool
}

// fields lists the fields of InputLimits in declaration order.
func (l *InputLimits) fields() []limitField {
	return []limitField{
		{"imageBytes", int64(l.ImageBytes), false},
		{"layers", l.Layers, true},
		{"tarEntries", l.TarEntries, false},
		{"pathLength", l.PathLength, true},
		{"pathDepth", l.PathDepth, true},
		{"buildLogBytes", int64(l.BuildLogBytes), false},
		{"outputEntries", l.OutputEntries, true},
		{"referrers", l.Referrers, true},
		{"signatureManifestBytes", int64(l.SignatureManifestBytes), false},
		{"bundleBytes", int64(l.BundleBytes), false},
		{"bundleLogEntries", l.BundleLogEntries, true},
		{"diffFiles", l.DiffFiles, true},
		{"diffLines", l.DiffLines, true},
		{"diffFileBytes", int64(l.DiffFileBytes), false},
		{"dependencyBytes", int64(l.DependencyBytes), false},
		{"dependencies", l.Dependencies, true},
	}
}

func (v *validator) limits(l *InputLimits) {
	for _, f := range l.fields() {
		field := "limits." + f.name
		switch {
		case f.value < 0:
			v.fail(field, "must not be negative, got %d (leave it out or 0 for the default)", f.value)
		case f.count && f.value > maxCount:
			v.fail(field, "must be at most %d, got %d", maxCount, f.value)
		}
	}
}
