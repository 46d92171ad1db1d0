package pin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"
)

// maxPlatforms bounds the manifests of one index.
const maxPlatforms = 256

// MaxConfigSize bounds an image's config blob, as its manifest declares it,
// checked before the config is read (go-containerregistry reads a config
// whole, up to whatever size the manifest declares). Real configs are tens
// of kilobytes.
const MaxConfigSize = 1 << 20

// Resolved is what a registry serves for a reference now.
type Resolved struct {
	// Key is Ref.Key() of the references this answers.
	Key string
	// Index is the digest of the image index (manifest list) the tag names,
	// empty when it names a single manifest.
	Index string
	// Manifest is the digest of the single manifest the tag names, empty
	// when it names an index.
	Manifest string
	// Platforms maps "os/arch[/variant]" to its manifest digest.
	Platforms map[string]string
}

// Digest is what an unqualified pin uses: the index digest, else the
// manifest digest.
func (r *Resolved) Digest() string {
	if r.Index != "" {
		return r.Index
	}
	return r.Manifest
}

// ForPlatform returns the manifest digest for platform ("os/arch[/variant]").
func (r *Resolved) ForPlatform(platform string) (string, error) {
	want, err := v1.ParsePlatform(platform)
	if err != nil {
		return "", err
	}
	for _, p := range sortedKeys(r.Platforms) {
		got, err := v1.ParsePlatform(p)
		if err == nil && got.OS == want.OS && got.Architecture == want.Architecture &&
			(want.Variant == "" || got.Variant == want.Variant) {
			return r.Platforms[p], nil
		}
	}
	return "", fmt.Errorf("no manifest for platform %s (the image has: %s)", platform, strings.Join(sortedKeys(r.Platforms), ", "))
}

// Matches reports whether digest is one this resolution stands for: the
// index, the single manifest, or one of the platform manifests.
func (r *Resolved) Matches(digest string) bool {
	if digest == r.Index || digest == r.Manifest {
		return digest != ""
	}
	for _, d := range r.Platforms {
		if d == digest {
			return true
		}
	}
	return false
}

// Resolver asks registries what references name now.
type Resolver struct {
	// Jobs bounds concurrent look-ups; 0 means 4 per core, 1 is sequential.
	Jobs int
	// Options are passed to go-containerregistry, e.g. a transport. The
	// default keychain (Docker config, credential helpers) is always used
	// unless an option overrides authentication.
	Options []remote.Option
}

// ResolveError is a reference the registry could not resolve.
type ResolveError struct {
	// Pos is "FILE:LINE" of the first place the reference is written, when
	// known.
	Pos string
	Ref string
	Key string
	Err error

	code int
}

func (e *ResolveError) Error() string {
	if e.Pos != "" {
		return fmt.Sprintf("%s: resolving %s: %v", e.Pos, e.Ref, e.Err)
	}
	return fmt.Sprintf("resolving %s: %v", e.Ref, e.Err)
}
func (e *ResolveError) Unwrap() error { return e.Err }

// ExitCode is 2 when the reference does not exist (the file needs fixing),
// 3 when the registry could not be asked.
func (e *ResolveError) ExitCode() int { return e.code }

// Resolve resolves each distinct reference once, concurrently, and returns
// the results in the order of refs (duplicates by Key share one result).
// With byDigest, pinned references are resolved by their digest instead of
// their tag, to learn their platforms without moving them.
func (r *Resolver) Resolve(ctx context.Context, refs []Ref, byDigest bool) ([]*Resolved, error) {
	return r.resolve(ctx, refs, byDigest, true)
}

// resolve is Resolve; without platforms, the platform of a single-manifest
// image is not looked up, which saves a round trip per image when neither a
// lockfile nor a --platform needs it.
func (r *Resolver) resolve(ctx context.Context, refs []Ref, byDigest, platforms bool) ([]*Resolved, error) {
	type job struct {
		ref    Ref
		digest bool
	}
	index := map[string]int{}
	var jobs []job
	slot := make([]int, len(refs))
	for i, ref := range refs {
		useDigest := byDigest && ref.Pinned()
		key := ref.Key()
		if useDigest {
			key = ref.Repo + "@" + ref.Digest
		}
		j, ok := index[key]
		if !ok {
			j = len(jobs)
			index[key] = j
			jobs = append(jobs, job{ref, useDigest})
		}
		slot[i] = j
	}
	results := make([]*Resolved, len(jobs))
	errs := make([]error, len(jobs))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(r.jobs())
	opts := append([]remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("buildguard")}, r.Options...)
	opts = append(opts, remote.WithContext(ctx))
	// One puller shares each registry's ping and token across every look-up.
	puller, err := remote.NewPuller(opts...)
	if err != nil {
		return nil, err
	}
	opts = append(opts, remote.Reuse(puller))
	for j, jb := range jobs {
		g.Go(func() error {
			var nameRef name.Reference
			if jb.digest {
				nameRef = jb.ref.digestRef(jb.ref.Digest)
			} else {
				nameRef = jb.ref.tagRef()
			}
			res, err := resolveOne(nameRef, opts, platforms)
			if err != nil {
				errs[j] = classify(jb.ref, err)
				return nil // collect every failure, not only the first
			}
			res.Key = jb.ref.Key()
			results[j] = res
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([]*Resolved, len(refs))
	for i := range refs {
		out[i] = results[slot[i]]
	}
	return out, nil
}

func (r *Resolver) jobs() int {
	if r.Jobs > 0 {
		return r.Jobs
	}
	return 4 * runtime.NumCPU()
}

// resolveOne fetches the manifest a reference names and recomputes its
// digest locally: a registry's Docker-Content-Digest header is not trusted.
func resolveOne(ref name.Reference, opts []remote.Option, platforms bool) (*Resolved, error) {
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(desc.Manifest)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if d, ok := ref.(name.Digest); ok && d.DigestStr() != digest {
		return nil, fmt.Errorf("registry served a manifest whose digest is %s, not the pinned %s", digest, d.DigestStr())
	}
	if desc.Digest.String() != digest {
		return nil, fmt.Errorf("manifest digest %s does not match its content (%s); schema 1 manifests are not supported", desc.Digest, digest)
	}
	res := &Resolved{Platforms: map[string]string{}}
	if desc.MediaType.IsIndex() {
		res.Index = digest
		im, err := v1.ParseIndexManifest(strings.NewReader(string(desc.Manifest)))
		if err != nil {
			return nil, fmt.Errorf("parsing index %s: %w", digest, err)
		}
		if len(im.Manifests) > maxPlatforms {
			return nil, fmt.Errorf("index %s lists %d manifests, more than the limit of %d", digest, len(im.Manifests), maxPlatforms)
		}
		for _, m := range im.Manifests {
			if m.Platform == nil || m.Platform.OS == "unknown" || m.Platform.OS == "" {
				continue // attestation manifests and the like
			}
			res.Platforms[PlatformString(*m.Platform)] = m.Digest.String()
		}
		return res, nil
	}
	if !desc.MediaType.IsImage() {
		return nil, fmt.Errorf("%s is a %s, not an image", digest, desc.MediaType)
	}
	res.Manifest = digest
	if !platforms {
		return res, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	if err := CheckConfigSize(img); err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	if cfg.OS != "" && cfg.Architecture != "" {
		p := cfg.Platform()
		res.Platforms[PlatformString(*p)] = digest
	}
	return res, nil
}

// CheckConfigSize refuses an image whose manifest declares a config larger
// than MaxConfigSize.
func CheckConfigSize(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	if m.Config.Size > MaxConfigSize || int64(len(m.Config.Data)) > MaxConfigSize {
		return fmt.Errorf("image config %s is %d bytes, more than the limit of %d", m.Config.Digest, m.Config.Size, MaxConfigSize)
	}
	return nil
}

// PlatformString spells a platform as "os/arch[/variant]".
func PlatformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// classify turns a registry error into a message that says what to do.
func classify(ref Ref, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch {
		case terr.StatusCode == http.StatusNotFound || hasCode(terr, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode):
			what := "tag " + ref.EffectiveTag()
			if ref.Pinned() && ref.Tag == "" {
				what = "digest " + ref.Digest
			}
			return &ResolveError{Ref: ref.Text, Key: ref.Key(), code: 2, Err: fmt.Errorf("%s does not exist in %s (check the spelling, or push it first): %w", what, ref.Repo, err)}
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return &ResolveError{Ref: ref.Text, Key: ref.Key(), code: 3, Err: fmt.Errorf("the registry refused access (log in with `docker login %s` or a credential helper): %w", registryOf(ref), err)}
		}
	}
	if !unreachable(err) {
		// The registry answered, with something resolution refuses (a
		// digest that does not match, a limit exceeded): do not send the
		// user looking for a network problem.
		return &ResolveError{Ref: ref.Text, Key: ref.Key(), code: 3, Err: fmt.Errorf("refusing what %s served: %w", registryOf(ref), err)}
	}
	return &ResolveError{Ref: ref.Text, Key: ref.Key(), code: 3, Err: fmt.Errorf("could not ask the registry (is %s reachable?): %w", registryOf(ref), err)}
}

// unreachable reports whether err is a failure to get an answer: a network
// error, an error status, or the context ending.
func unreachable(err error) bool {
	var terr *transport.Error
	var uerr *url.Error
	var nerr net.Error
	return errors.As(err, &terr) || errors.As(err, &uerr) || errors.As(err, &nerr) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func hasCode(terr *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range terr.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

func registryOf(ref Ref) string {
	reg, _, _ := strings.Cut(ref.Repo, "/")
	return reg
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
