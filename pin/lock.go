package pin

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"

	"github.com/buildguard/buildguard/internal/strictjson"
)

// LockAPIVersion is the version of the lockfile format this package writes
// and reads.
const LockAPIVersion = "buildguard/v1"

// DefaultLockFile is the lockfile --check reads when present.
const DefaultLockFile = "buildguard.lock"

// maxLockSize bounds a lockfile read from disk.
const maxLockSize = 16 << 20

var digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// Lock records, per reference, the digests it resolved to. It is sorted and
// has no timestamps, so the same resolutions give the same bytes.
type Lock struct {
	APIVersion string      `json:"apiVersion"`
	Images     []LockImage `json:"images"`
}

// LockImage is one reference in a lockfile.
type LockImage struct {
	// Ref is the canonical reference: repo:tag, or repo@digest for a
	// reference written with a digest and no tag.
	Ref string `json:"ref"`
	// Index is the image index digest, when the reference names an index.
	Index string `json:"index,omitempty"`
	// Manifest is the manifest digest, when it names a single manifest.
	Manifest string `json:"manifest,omitempty"`
	// Platforms maps "os/arch[/variant]" to the platform's manifest digest.
	Platforms map[string]string `json:"platforms,omitempty"`
}

// NewLock builds a lockfile from resolutions, one entry per reference key.
func NewLock(resolved []*Resolved) *Lock {
	byRef := map[string]*Resolved{}
	for _, r := range resolved {
		byRef[r.Key] = r
	}
	l := &Lock{APIVersion: LockAPIVersion, Images: []LockImage{}}
	for key, r := range byRef {
		img := LockImage{Ref: key, Index: r.Index, Manifest: r.Manifest}
		if len(r.Platforms) > 0 {
			img.Platforms = r.Platforms
		}
		l.Images = append(l.Images, img)
	}
	sort.Slice(l.Images, func(i, j int) bool { return l.Images[i].Ref < l.Images[j].Ref })
	return l
}

// Find returns the entry for a reference key.
func (l *Lock) Find(key string) (*LockImage, bool) {
	i := sort.Search(len(l.Images), func(i int) bool { return l.Images[i].Ref >= key })
	if i < len(l.Images) && l.Images[i].Ref == key {
		return &l.Images[i], true
	}
	return nil, false
}

// Matches reports whether digest is one the entry records.
func (li *LockImage) Matches(digest string) bool {
	r := Resolved{Index: li.Index, Manifest: li.Manifest, Platforms: li.Platforms}
	return r.Matches(digest)
}

// Marshal encodes the lockfile: indented JSON with a trailing newline.
func (l *Lock) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// LockError is a lockfile that cannot be used. It is a usage error.
type LockError struct {
	File string
	Err  error
}

func (e *LockError) Error() string { return fmt.Sprintf("lockfile %s: %v", e.File, e.Err) }
func (e *LockError) Unwrap() error { return e.Err }

// ExitCode reports a usage error (2).
func (e *LockError) ExitCode() int { return 2 }

// ReadLock reads and validates a lockfile.
func ReadLock(path string) (*Lock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &LockError{File: path, Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxLockSize+1))
	if err != nil {
		return nil, &LockError{File: path, Err: err}
	}
	l, err := ParseLock(data)
	if err != nil {
		return nil, &LockError{File: path, Err: err}
	}
	return l, nil
}

// ParseLock decodes and validates lockfile bytes: the version is known, no
// field is unknown, every digest is a sha256 digest, entries are sorted and
// unique.
func ParseLock(data []byte) (*Lock, error) {
	var l Lock
	if err := strictjson.Decode(data, maxLockSize, &l); err != nil {
		return nil, fmt.Errorf("not a valid lockfile: %w", err)
	}
	if l.APIVersion != LockAPIVersion {
		return nil, fmt.Errorf("apiVersion %q is not %q (this buildguard reads %s lockfiles)", l.APIVersion, LockAPIVersion, LockAPIVersion)
	}
	for i, img := range l.Images {
		ref, err := ParseRef(img.Ref)
		if err != nil {
			return nil, fmt.Errorf("images[%d]: %w", i, err)
		}
		if ref.Key() != img.Ref {
			return nil, fmt.Errorf("images[%d]: ref %q is not canonical (want %q)", i, img.Ref, ref.Key())
		}
		if i > 0 && l.Images[i-1].Ref >= img.Ref {
			return nil, fmt.Errorf("images[%d]: %q is out of order or repeated", i, img.Ref)
		}
		if (img.Index == "") == (img.Manifest == "") {
			return nil, fmt.Errorf("images[%d]: %q needs exactly one of index and manifest", i, img.Ref)
		}
		for _, d := range append([]string{img.Index, img.Manifest}, mapValues(img.Platforms)...) {
			if d != "" && !digestRE.MatchString(d) {
				return nil, fmt.Errorf("images[%d]: %q is not a sha256 digest", i, d)
			}
		}
	}
	if l.Images == nil {
		l.Images = []LockImage{}
	}
	return &l, nil
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}
