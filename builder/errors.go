package builder

import (
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Sentinel errors for what callers branch on. Every error that refuses an
// image's content (as opposed to failing to read it) matches one of
// ErrUnsafeEntry, ErrLimit or ErrDigestMismatch.
var (
	// ErrUnpinned is matched by an UnpinnedError.
	ErrUnpinned = errors.New("image reference is not pinned by digest")
	// ErrUnsafeEntry is matched by errors about a layer entry that would
	// reach outside the root or cannot be applied safely.
	ErrUnsafeEntry = errors.New("unsafe layer entry")
	// ErrLimit is matched by every LimitError.
	ErrLimit = errors.New("unpack limit exceeded")
	// ErrDigestMismatch is matched by every DigestMismatchError.
	ErrDigestMismatch = errors.New("content does not match its digest")
)

// Exit codes, as internal/exitcode defines them (library packages do not
// import it).
const (
	exitFail       = 1
	exitUsage      = 2
	exitIncomplete = 3
)

// UnpinnedError is a builder reference without a digest. Running from a
// reference that can change under a tag is a fail decision, never a warning.
type UnpinnedError struct {
	// Ref is the reference as given.
	Ref string
}

func (e *UnpinnedError) Error() string {
	return fmt.Sprintf("builder image %q is not pinned by digest: run `buildguard pin --write` to pin it", e.Ref)
}

// Unwrap lets errors.Is match ErrUnpinned.
func (e *UnpinnedError) Unwrap() error { return ErrUnpinned }

// ExitCode is 1: an unpinned input is a fail decision.
func (e *UnpinnedError) ExitCode() int { return exitFail }

// RefError is a reference that carries a digest but cannot be parsed, or
// names a digest algorithm other than sha256. It is a usage error.
type RefError struct {
	// Ref is the reference as given.
	Ref string
	// Err says what is wrong with it.
	Err error
}

func (e *RefError) Error() string { return fmt.Sprintf("image reference %q: %v", e.Ref, e.Err) }

// Unwrap returns the parser's error.
func (e *RefError) Unwrap() error { return e.Err }

// ExitCode is 2: the reference needs fixing, nothing was attempted.
func (e *RefError) ExitCode() int { return exitUsage }

// PlatformError is an index that has no image for the platform this machine
// runs builds on.
type PlatformError struct {
	// Index is the digest of the index.
	Index v1.Hash
	// Want is the platform that was looked for, e.g. "linux/amd64".
	Want string
	// Have lists the platforms the index offers, in index order.
	Have []string
}

func (e *PlatformError) Error() string {
	return fmt.Sprintf("index %s has no %s image (it has %v)", e.Index, e.Want, e.Have)
}

// ExitCode is 2: the configuration names a builder this machine cannot run.
func (e *PlatformError) ExitCode() int { return exitUsage }

// LimitError is an image whose layers exceed one of the Limits.
type LimitError struct {
	// Field names the Limits field that was exceeded, e.g. "MaxBytes".
	Field string
	// Max is the limit's value.
	Max int64
	// What describes the quantity, e.g. "total unpacked size in bytes".
	What string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s exceeds the limit of %d (raise with %s)", e.What, e.Max, e.Setting())
}

// Is matches ErrLimit.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// ConfigLimitError is an image whose config is larger than
// pin.MaxConfigSize: refused before it is read, a fail decision (exit 1).
type ConfigLimitError struct {
	Ref string
	Err error
}

func (e *ConfigLimitError) Error() string { return fmt.Sprintf("image %q: %v", e.Ref, e.Err) }

// Unwrap returns the cause.
func (e *ConfigLimitError) Unwrap() error { return e.Err }

// Is matches ErrLimit.
func (e *ConfigLimitError) Is(target error) bool { return target == ErrLimit }

// ExitCode is 1: the image's content is refused.
func (e *ConfigLimitError) ExitCode() int { return exitFail }

// DigestMismatchError is a layer whose compressed bytes do not hash to the
// digest the manifest names: the registry (or whatever served the bytes)
// served something else.
type DigestMismatchError struct {
	// Want is the digest the manifest names; Got is the digest of the bytes.
	Want, Got v1.Hash
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("layer bytes hash to %s, the manifest says %s", e.Got, e.Want)
}

// Is matches ErrDigestMismatch.
func (e *DigestMismatchError) Is(target error) bool { return target == ErrDigestMismatch }

// LayerError is a failure to apply one layer, naming the layer and, when
// known, the entry.
type LayerError struct {
	// Index is the layer's position in the image, from 0 (the bottom).
	Index int
	// Layer is the layer's (compressed) digest.
	Layer v1.Hash
	// Entry is the entry's name as written in the layer; empty when the
	// failure is not about one entry.
	Entry string
	// Err is the cause.
	Err error
}

func (e *LayerError) Error() string {
	if e.Entry == "" {
		return fmt.Sprintf("layer %d (%s): %v", e.Index, e.Layer, e.Err)
	}
	return fmt.Sprintf("layer %d (%s): entry %q: %v", e.Index, e.Layer, short(e.Entry), e.Err)
}

// short cuts a hostile name down to a length an error message can carry.
func short(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:max], len(s))
}

// Unwrap returns the cause.
func (e *LayerError) Unwrap() error { return e.Err }

// ExitCode is 1 when the layer's content was refused (unsafe entry, limit,
// digest mismatch), a fail decision about the image; 3 otherwise (the layer
// could not be read or written).
func (e *LayerError) ExitCode() int {
	if errors.Is(e.Err, ErrUnsafeEntry) || errors.Is(e.Err, ErrLimit) || errors.Is(e.Err, ErrDigestMismatch) {
		return exitFail
	}
	return exitIncomplete
}

// unsafef returns an error matching ErrUnsafeEntry.
func unsafef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsafeEntry, fmt.Sprintf(format, args...))
}
