package pin

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/buildguard/buildguard/internal/atomicfile"
)

// Options choose how Pin resolves references.
type Options struct {
	// Platform ("os/arch[/variant]") pins each reference to that platform's
	// manifest instead of the index.
	Platform string
	// Update re-resolves references that already carry a digest and a tag,
	// moving the digest where the tag has moved.
	Update bool
	// Lock also resolves references that are already pinned (by digest), so
	// that the lockfile can record every reference with its platforms.
	Lock bool
	// Resolver asks the registries; nil means a default Resolver.
	Resolver *Resolver
}

// Change is what pinning does to one occurrence.
type Change struct {
	*Occurrence
	// Pinned is the text the occurrence has after pinning.
	Pinned string `json:"pinned"`
	// Digest is the digest Pinned carries.
	Digest string `json:"digest,omitempty"`
	// Changed is set when Pinned differs from the text in the file.
	Changed bool `json:"changed"`
	// Note says what happened when it is not a plain pin.
	Note string `json:"note,omitempty"`
	// Warning is set when the note is something to fix.
	Warning bool `json:"warning,omitempty"`
}

// Result is the outcome of Pin.
type Result struct {
	Files   []*File
	Changes []*Change
	// Lock holds every resolved reference.
	Lock *Lock
}

// Changed reports how many occurrences pinning changes.
func (r *Result) Changed() int {
	n := 0
	for _, c := range r.Changes {
		if c.Changed {
			n++
		}
	}
	return n
}

// Pin resolves the references of files and says how each is to be written.
// It changes no file; see WriteFiles. A malformed reference anywhere fails
// the whole call before any network request.
func Pin(ctx context.Context, files []*File, opts Options) (*Result, error) {
	var errs []error
	for _, f := range files {
		errs = append(errs, f.Errors())
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	res := opts.Resolver
	if res == nil {
		res = &Resolver{}
	}

	// What must be asked: tags for unpinned references (and pinned ones on
	// --update), digests for pinned ones when the lock needs their platforms.
	var byTag, byDigest []Ref
	for _, f := range files {
		for _, o := range f.Occurrences {
			switch {
			case o.Dynamic:
			case !o.Ref.Pinned() || (opts.Update && o.Ref.Tag != ""):
				byTag = append(byTag, o.Ref)
			case opts.Lock:
				byDigest = append(byDigest, o.Ref)
			}
		}
	}
	platforms := opts.Lock || opts.Platform != ""
	tagged, err := res.resolve(ctx, byTag, false, platforms)
	if err != nil {
		return nil, locate(err, files)
	}
	digested, err := res.resolve(ctx, byDigest, true, platforms)
	if err != nil {
		return nil, locate(err, files)
	}
	result := &Result{Files: files, Lock: NewLock(append(tagged, digested...))}
	ti := 0
	for _, f := range files {
		for _, o := range f.Occurrences {
			c := &Change{Occurrence: o, Pinned: o.Text}
			switch {
			case o.Dynamic:
				c.Note, c.Warning = "built from variables or expressions: not pinned here; write the whole reference (for a Dockerfile, as an ARG default)", true
			case !o.Ref.Pinned() || (opts.Update && o.Ref.Tag != ""):
				r := tagged[ti]
				ti++
				if err := c.pin(r, opts); err != nil {
					errs = append(errs, &ScanError{File: o.File, Line: o.Line, Err: fmt.Errorf("%s: %w", o.Text, err)})
				}
			default:
				c.Digest = o.Ref.Digest
				c.Note = "already pinned"
			}
			result.Changes = append(result.Changes, c)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return result, nil
}

// locate names, in each resolution error, the first file and line where the
// reference is written.
func locate(err error, files []*File) error {
	var list []error
	if joined, ok := err.(interface{ Unwrap() []error }); ok { //nolint:errorlint // Resolve returns errors.Join of ResolveErrors
		list = joined.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var re *ResolveError
		if !errors.As(e, &re) || re.Pos != "" {
			continue
		}
	find:
		for _, f := range files {
			for _, o := range f.Occurrences {
				if !o.Dynamic && (o.Ref.Key() == re.Key || o.Ref.Repo+"@"+o.Ref.Digest == re.Key) {
					re.Pos = o.Pos()
					break find
				}
			}
		}
	}
	return err
}

// pin sets the change for a resolution of the occurrence's tag.
func (c *Change) pin(r *Resolved, opts Options) error {
	digest := r.Digest()
	if opts.Platform != "" {
		d, err := r.ForPlatform(opts.Platform)
		if err != nil {
			return err
		}
		digest = d
	}
	ref := c.Ref
	if ref.Pinned() {
		if r.Matches(ref.Digest) {
			c.Digest, c.Note = ref.Digest, "already pinned; the tag still names this digest"
			return nil
		}
		c.Note = fmt.Sprintf("the tag moved: %s was %s", ref.EffectiveTag(), ref.Digest)
	} else if ref.Tag == "" {
		c.Note, c.Warning = "no tag: pinned what latest names now; write the tag you mean", true
	}
	c.Digest = digest
	c.Pinned = ref.WithDigest(digest)
	c.Changed = c.Pinned != c.Text
	return nil
}

// Rewrite returns the new content of each file that pinning changes, keyed
// by path. Only the reference texts change; comments, spacing and line
// order stay as they are.
func (r *Result) Rewrite() (map[string][]byte, error) {
	byFile := map[string][]*Change{}
	for _, c := range r.Changes {
		if c.Changed {
			byFile[c.File] = append(byFile[c.File], c)
		}
	}
	out := map[string][]byte{}
	for _, f := range r.Files {
		changes := byFile[f.Path]
		if len(changes) == 0 {
			continue
		}
		sort.Slice(changes, func(i, j int) bool { return changes[i].Offset > changes[j].Offset })
		data := append([]byte(nil), f.Data...)
		for _, c := range changes {
			end := c.Offset + len(c.Text)
			if end > len(data) || string(data[c.Offset:end]) != c.Text {
				return nil, &ScanError{File: f.Path, Line: c.Line, Err: fmt.Errorf("%s is not where it was read; file left untouched", c.Text)}
			}
			data = append(data[:c.Offset], append([]byte(c.Pinned), data[end:]...)...)
		}
		out[f.Path] = data
	}
	return out, nil
}

// WriteFiles writes each rewritten file atomically: to a temporary file in
// the same directory, synced, then renamed over the original with its mode.
// All contents are computed before the first write.
func (r *Result) WriteFiles() error {
	contents, err := r.Rewrite()
	if err != nil {
		return err
	}
	for _, f := range r.Files {
		data, ok := contents[f.Path]
		if !ok {
			continue
		}
		if err := writeAtomic(f.Path, data); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic replaces path with data, keeping its permission bits.
func writeAtomic(path string, data []byte) error { return atomicfile.Write(path, data, 0o644) }

// WriteLock writes the lockfile atomically.
func WriteLock(path string, l *Lock) error {
	data, err := l.Marshal()
	if err != nil {
		return err
	}
	return writeAtomic(path, data)
}

// Problem is a reference that --check refuses.
type Problem struct {
	*Occurrence
	Msg string `json:"message"`
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s", p.Pos(), p.Msg) }

// Check reports, without network, every reference that is not pinned and,
// when lock is not nil, every pinned reference whose digest the lockfile
// does not record. A malformed reference is an error, not a problem.
func Check(files []*File, lock *Lock, lockPath string) ([]Problem, error) {
	var errs []error
	for _, f := range files {
		errs = append(errs, f.Errors())
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []Problem
	for _, f := range files {
		for _, o := range f.Occurrences {
			switch {
			case o.Dynamic:
				out = append(out, Problem{o, fmt.Sprintf("%s is built from variables or expressions and cannot be checked; write the whole reference with a digest (for a Dockerfile, as an ARG default)", o.Text)})
			case !o.Ref.Pinned():
				out = append(out, Problem{o, fmt.Sprintf("%s is not pinned (run: buildguard pin --write %s)", o.Text, o.File)})
			case lock != nil:
				entry, ok := lock.Find(o.Ref.Key())
				switch {
				case !ok:
					out = append(out, Problem{o, fmt.Sprintf("%s is not in %s (run: buildguard pin --lock %s FILE...)", o.Text, lockPath, lockPath)})
				case !entry.Matches(o.Ref.Digest):
					out = append(out, Problem{o, fmt.Sprintf("%s disagrees with %s, which records %s (run: buildguard pin --update --write %s, or refresh the lockfile)", o.Text, lockPath, lockDigest(entry), o.File)})
				}
			}
		}
	}
	return out, nil
}

func lockDigest(e *LockImage) string {
	if e.Index != "" {
		return e.Index
	}
	return e.Manifest
}
