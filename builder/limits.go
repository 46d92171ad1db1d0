package builder

import "fmt"

// Default limits. They are generous for a real builder image (a Go toolchain
// image is about 1 GiB and 20,000 entries) and small enough that a hostile
// image cannot fill the disk or the inode table.
const (
	DefaultMaxBytes   int64 = 8 << 30
	DefaultMaxEntries int64 = 1_000_000
	DefaultMaxPathLen       = 4096
	DefaultMaxDepth         = 256
	DefaultMaxLayers        = 256
)

// maxSymlinkFollows bounds symlink resolution, as Linux does (ELOOP after 40).
const maxSymlinkFollows = 40

// Limits bound what one image may unpack to. A zero field takes its default;
// there is no way to switch a limit off.
type Limits struct {
	// MaxBytes bounds the total size of regular files over all layers, counted
	// from the sizes the layers declare before anything is written.
	MaxBytes int64
	// MaxEntries bounds the number of tar entries over all layers, whiteouts
	// and skipped entries included.
	MaxEntries int64
	// MaxPathLen bounds the length in bytes of an entry's name and of a link
	// target.
	MaxPathLen int
	// MaxDepth bounds the number of path components of an entry's name.
	MaxDepth int
	// MaxLayers bounds the number of layers of one image.
	MaxLayers int
}

// limitSettings names, for each field of Limits and for the other limits of
// this package, the buildguard.yaml field and the command-line flag of
// `buildguard build` that raise it.
var limitSettings = map[string]string{
	"MaxBytes":         "limits.imageBytes, --max-image-bytes",
	"MaxEntries":       "limits.tarEntries, --max-tar-entries",
	"MaxPathLen":       "limits.pathLength, --max-path-length",
	"MaxDepth":         "limits.pathDepth, --max-path-depth",
	"MaxLayers":        "limits.layers, --max-layers",
	"MaxLog":           "limits.buildLogBytes, --max-build-log-bytes",
	"MaxOutputEntries": "limits.outputEntries, --max-output-entries",
	"Scratch":          "builder.limits.scratch",
}

// Setting names the buildguard.yaml field and the flag that raise the limit
// that was exceeded, such as "limits.tarEntries, --max-tar-entries", or
// builder.Limits.Field for a limit they do not set.
func (e *LimitError) Setting() string {
	if s, ok := limitSettings[e.Field]; ok {
		return s
	}
	return "builder.Limits." + e.Field
}

// Validate reports a negative limit.
func (l Limits) Validate() error {
	if l.MaxBytes < 0 || l.MaxEntries < 0 || l.MaxPathLen < 0 || l.MaxDepth < 0 || l.MaxLayers < 0 {
		return fmt.Errorf("builder limits must not be negative: %+v", l)
	}
	return nil
}

// withDefaults fills zero fields with the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxEntries == 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxPathLen == 0 {
		l.MaxPathLen = DefaultMaxPathLen
	}
	if l.MaxDepth == 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxLayers == 0 {
		l.MaxLayers = DefaultMaxLayers
	}
	return l
}
