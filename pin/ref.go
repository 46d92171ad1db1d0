// Package pin finds image references in Dockerfiles, Containerfiles and YAML
// files, resolves each to the digest its registry serves now, rewrites the
// files as name:tag@sha256:..., records a lockfile, and checks, without
// network, that every reference is pinned.
package pin

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// ErrMalformedReference is matched by every error about a reference that is
// not a valid image reference.
var ErrMalformedReference = errors.New("malformed image reference")

// RefError is a reference that cannot be parsed. It is a usage error: the
// file needs fixing, nothing was attempted.
type RefError struct {
	Text string
	Err  error
}

func (e *RefError) Error() string {
	return fmt.Sprintf("%q is not a valid image reference: %v", e.Text, e.Err)
}

// Unwrap lets errors.Is match ErrMalformedReference and the parser's error.
func (e *RefError) Unwrap() []error { return []error{ErrMalformedReference, e.Err} }

// ExitCode reports a usage error (2).
func (e *RefError) ExitCode() int { return 2 }

// maxRefLen bounds a reference; registries reject longer names anyway.
const maxRefLen = 1024

// maxRepoLen is the longest repository name the distribution spec allows.
const maxRepoLen = 255

// Ref is a parsed image reference that remembers how it was written.
//
// The parser fills in Docker's defaults (docker.io, library/, latest) only
// for resolving; Text is what the user wrote and what a rewrite keeps.
type Ref struct {
	// Text is the reference exactly as written.
	Text string
	// Repo is the repository in canonical form, e.g. docker.io/library/golang.
	Repo string
	// Tag is the tag as written; empty when the reference has none.
	Tag string
	// Digest is "sha256:<hex>" when the reference carries one.
	Digest string

	repo name.Repository
}

// ParseRef parses an image reference such as "golang:1.26",
// "ghcr.io/org/img:v1@sha256:..." or "alpine@sha256:...".
func ParseRef(text string) (Ref, error) {
	if text == "" {
		return Ref{}, &RefError{Text: text, Err: errors.New("empty reference")}
	}
	if len(text) > maxRefLen {
		return Ref{}, &RefError{Text: text[:64] + "...", Err: fmt.Errorf("longer than %d bytes", maxRefLen)}
	}
	if strings.TrimSpace(text) != text || strings.ContainsAny(text, " \t\r\n") {
		return Ref{}, &RefError{Text: text, Err: errors.New("contains white space")}
	}
	r := Ref{Text: text}
	base := text
	if i := strings.IndexByte(text, '@'); i >= 0 {
		d, err := name.NewDigest(text)
		if err != nil {
			return Ref{}, &RefError{Text: text, Err: err}
		}
		r.Digest = d.DigestStr()
		r.repo = d.Context()
		base = text[:i]
	}
	// A tag follows the last colon after the last slash (a colon before it
	// belongs to a registry port).
	if i := strings.LastIndexByte(base, ':'); i > strings.LastIndexByte(base, '/') {
		r.Tag = base[i+1:]
	}
	t, err := name.NewTag(base)
	if err != nil {
		return Ref{}, &RefError{Text: text, Err: err}
	}
	if r.Digest == "" {
		r.repo = t.Context()
	}
	// The distribution spec bounds the repository name, Docker Hub's
	// "library/" included; go-containerregistry checks that only for some
	// forms, so a name could parse unpinned and fail once pinned.
	if n := len(r.repo.RepositoryStr()); n > maxRepoLen {
		return Ref{}, &RefError{Text: text, Err: fmt.Errorf("repository %q is %d characters, more than %d", r.repo.RepositoryStr()[:32]+"...", n, maxRepoLen)}
	}
	if reg := r.repo.RegistryStr(); !registryRE.MatchString(reg) {
		return Ref{}, &RefError{Text: text, Err: fmt.Errorf("registry %q is not a host name or address with an optional port", reg)}
	}
	for _, c := range strings.Split(r.repo.RepositoryStr(), "/") {
		if !pathComponentRE.MatchString(c) {
			return Ref{}, &RefError{Text: text, Err: fmt.Errorf("repository path component %q is not lower-case letters and digits joined by '.', '_', '__' or '-'", c)}
		}
	}
	r.Repo = canonicalRepo(r.repo)
	if n := len(r.WithDigest(sha256Zero)); n > maxRefLen {
		return Ref{}, &RefError{Text: text, Err: fmt.Errorf("pinned it would be %d bytes, longer than %d", n, maxRefLen)}
	}
	return r, nil
}

// sha256Zero stands for any sha256 digest when only the length matters.
var sha256Zero = "sha256:" + strings.Repeat("0", 64)

// registryRE is the distribution reference grammar for a registry: DNS
// labels joined by dots, or a bracketed IPv6 address, with an optional port.
var registryRE = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$`)

// pathComponentRE is the distribution reference grammar for one component
// of a repository path, stricter than go-containerregistry's parser.
var pathComponentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)

// canonicalRepo spells Docker Hub as docker.io, as Docker shows it.
func canonicalRepo(repo name.Repository) string {
	reg := repo.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + repo.RepositoryStr()
}

// Pinned reports whether the reference carries a digest.
func (r Ref) Pinned() bool { return r.Digest != "" }

// EffectiveTag is the tag a registry is asked for: the written one, or
// "latest" when none is written.
func (r Ref) EffectiveTag() string {
	if r.Tag == "" {
		return "latest"
	}
	return r.Tag
}

// Key identifies what the reference names independent of spelling:
// repo:tag when it has a tag (or no digest), else repo@digest. Two texts
// with the same key resolve the same way.
func (r Ref) Key() string {
	if r.Tag == "" && r.Digest != "" {
		return r.Repo + "@" + r.Digest
	}
	return r.Repo + ":" + r.EffectiveTag()
}

// WithDigest returns the text to write for this reference pinned to digest:
// the written name and tag (":latest" added when none was written) followed
// by "@digest". An existing digest is replaced.
func (r Ref) WithDigest(digest string) string {
	base := r.Text
	if i := strings.IndexByte(base, '@'); i >= 0 {
		base = base[:i]
	}
	if r.Tag == "" && r.Digest == "" {
		base += ":latest"
	}
	return base + "@" + digest
}

// Name is the go-containerregistry name of the reference: by digest when it
// carries one, else by its effective tag.
func (r Ref) Name() name.Reference {
	if r.Pinned() {
		return r.digestRef(r.Digest)
	}
	return r.tagRef()
}

// tagRef is the name the registry is asked to resolve.
func (r Ref) tagRef() name.Reference {
	return r.repo.Tag(r.EffectiveTag())
}

// digestRef is the name of the pinned manifest.
func (r Ref) digestRef(digest string) name.Reference {
	return r.repo.Digest(digest)
}
