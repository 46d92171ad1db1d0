package trust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildguard/buildguard/pin"
)

// bundleTypePrefix matches the media types of every Sigstore bundle version.
const bundleTypePrefix = "application/vnd.dev.sigstore.bundle"

// UnpinnedError is a reference without a digest; it is a usage error
// (exit 2): only a pinned image can be verified.
type UnpinnedError struct{ Ref string }

func (e *UnpinnedError) Error() string {
	return fmt.Sprintf("%q has no digest: run 'buildguard pin' to pin it, then verify NAME@sha256:...", e.Ref)
}

// ExitCode reports a usage error.
func (e *UnpinnedError) ExitCode() int { return 2 }

// RegistryError is a registry that could not be read; the verifier could
// not decide (exit 3).
type RegistryError struct {
	Ref string
	Err error
}

func (e *RegistryError) Error() string {
	return fmt.Sprintf("reading the attachments of %s: %v", e.Ref, e.Err)
}

// Unwrap returns the cause.
func (e *RegistryError) Unwrap() error { return e.Err }

// ExitCode reports that verification could not complete.
func (e *RegistryError) ExitCode() int { return 3 }

// VerifyImage verifies the image ref, which must carry a digest: it lists
// the Sigstore bundles attached to the digest (as referrers) and the legacy
// cosign signatures of its sha256-<hex>.sig tag, and verifies each. A refused
// image is a result with Verified false; the error is for a reference that
// cannot be verified (no digest: exit 2) or a registry that cannot be read
// (exit 3).
func (v *Verifier) VerifyImage(ctx context.Context, ref string) (*ImageResult, error) {
	r, err := pin.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	if !r.Pinned() {
		return nil, &UnpinnedError{Ref: ref}
	}
	d, err := ParseDigest(r.Digest)
	if err != nil {
		return nil, err
	}
	nd, err := name.NewDigest(r.Repo + "@" + r.Digest)
	if err != nil {
		return nil, &pin.RefError{Text: ref, Err: err}
	}
	e := v.cached(nd.String())
	e.once.Do(func() { e.res, e.err = v.verifyOnce(ctx, nd, d) })
	if e.err != nil {
		return nil, e.err
	}
	res := *e.res
	res.Ref = ref
	return &res, nil
}

type cacheEntry struct {
	once sync.Once
	res  *ImageResult
	err  error
}

// cached returns the entry for an image, so that an image named twice in a
// run is verified once.
func (v *Verifier) cached(key string) *cacheEntry {
	e, _ := v.cache.LoadOrStore(key, &cacheEntry{})
	return e.(*cacheEntry)
}

// verifyOnce verifies an image, or takes its verified result from the
// result cache, then looks its log entries up online when asked to: a
// cached result is looked up online like a new one.
func (v *Verifier) verifyOnce(ctx context.Context, nd name.Digest, d Digest) (*ImageResult, error) {
	res := v.results.load(v, d)
	if res == nil {
		var err error
		if res, err = v.verifyImage(ctx, nd, d); err != nil {
			return nil, err
		}
		if res.Verified {
			v.results.store(v, d, res)
		}
	}
	if v.online != nil && res.Verified {
		if err := v.checkOnline(ctx, res, d); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (v *Verifier) verifyImage(ctx context.Context, nd name.Digest, d Digest) (*ImageResult, error) {
	res := &ImageResult{Digest: d.String(), TlogWaived: v.policy.InsecureIgnoreTlog, Candidates: []Candidate{}}
	opts := v.remoteOptions(ctx)
	idx, err := remote.Referrers(nd, opts...)
	if err != nil {
		return nil, &RegistryError{Ref: nd.String(), Err: err}
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, &RegistryError{Ref: nd.String(), Err: err}
	}
	if n := len(im.Manifests); n > v.limits.MaxReferrers {
		res.Problems = append(res.Problems, *refuse(ReasonTooManyReferrers, "%s has %d referrers, more than the limit of %d %s", d, n, v.limits.MaxReferrers, raise("MaxReferrers")))
		return res, nil
	}
	// Registries list referrers in any order; the result must not depend
	// on it.
	descs := slices.Clone(im.Manifests)
	slices.SortFunc(descs, func(a, b v1.Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	for _, desc := range descs {
		if desc.MediaType.IsIndex() || !mayBeBundle(desc.ArtifactType) {
			continue
		}
		c, err := v.referrerCandidate(nd, desc, d, opts)
		if err != nil {
			return nil, &RegistryError{Ref: nd.String(), Err: err}
		}
		if c != nil {
			res.Candidates = append(res.Candidates, *c)
		}
	}
	legacy, err := v.legacyCandidates(nd, d, opts)
	if err != nil {
		return nil, &RegistryError{Ref: nd.String(), Err: err}
	}
	res.Candidates = append(res.Candidates, legacy...)
	v.conclude(res, d)
	return res, nil
}

// conclude decides from its candidates whether res is verified, and adds
// the image-level reasons when it is not.
func (v *Verifier) conclude(res *ImageResult, d Digest) {
	res.Verified = hasSignature(res.Candidates)
	if r := v.provenanceProblem(res.Candidates); r != nil {
		res.Verified = false
		res.Problems = append(res.Problems, *r)
	}
	if r := v.vsaProblem(res.Candidates, d); r != nil {
		res.Verified = false
		res.Problems = append(res.Problems, *r)
	}
	if !res.Verified && !hasSignature(res.Candidates) {
		switch {
		case len(res.Candidates) == 0:
			res.Problems = append(res.Problems, *refuse(ReasonNoSignature, "no Sigstore bundle is attached to %s", d))
		case allAboutOthers(res.Candidates):
			res.Problems = append(res.Problems, *refuse(ReasonNoSignature, "none of the %d bundle(s) attached to %s is a verified signature: every one is about another artifact (copied from another image?)", len(res.Candidates), d))
		default:
			res.Problems = append(res.Problems, *refuse(ReasonNoSignature, "none of the %d bundle(s) attached to %s is a verified signature", len(res.Candidates), d))
		}
	}
}

// emptyConfigType is the config media type of an artifact manifest.
const emptyConfigType = "application/vnd.oci.empty.v1+json"

// mayBeBundle reports whether a referrer of this artifact type may be a
// Sigstore bundle. Some registries list the config media type instead of
// the manifest's artifactType, so an artifact with an empty config is
// looked at too.
func mayBeBundle(artifactType string) bool {
	return strings.HasPrefix(artifactType, bundleTypePrefix) || artifactType == emptyConfigType || artifactType == ""
}

// allAboutOthers reports whether every candidate was refused as being
// about another artifact.
func allAboutOthers(cands []Candidate) bool {
	for _, c := range cands {
		if c.Refusal == nil || (c.Refusal.Reason != ReasonDigestMismatch && c.Refusal.Reason != ReasonSubjectMismatch) {
			return false
		}
	}
	return len(cands) > 0
}

func hasSignature(cands []Candidate) bool {
	for _, c := range cands {
		if c.Verified && c.Kind == KindSignature {
			return true
		}
	}
	return false
}

// referrerCandidate fetches and verifies the bundle of one referrer: nil
// when the referrer is not a bundle. An error means the registry could not
// be read.
func (v *Verifier) referrerCandidate(nd name.Digest, desc v1.Descriptor, d Digest, opts []remote.Option) (*Candidate, error) {
	c := &Candidate{Source: "referrer " + desc.Digest.String()}
	if desc.Size > v.limits.MaxManifestBytes {
		c.Refusal = refuse(ReasonBundleTooLarge, "referrer manifest of %d bytes is larger than the limit of %d %s", desc.Size, v.limits.MaxManifestBytes, raise("MaxManifestBytes"))
		return c, nil
	}
	img, err := remote.Image(nd.Context().Digest(desc.Digest.String()), opts...)
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(desc.ArtifactType, bundleTypePrefix) && !strings.HasPrefix(m.ArtifactType, bundleTypePrefix) {
		return nil, nil // another kind of artifact (an SBOM, ...)
	}
	if m.Subject == nil || m.Subject.Digest.String() != d.String() {
		c.Refusal = refuse(ReasonSubjectMismatch, "referrer is not about %s", d)
		return c, nil
	}
	var layers []v1.Descriptor
	for _, l := range m.Layers {
		if strings.HasPrefix(string(l.MediaType), bundleTypePrefix) {
			layers = append(layers, l)
		}
	}
	if len(layers) != 1 {
		c.Refusal = refuse(ReasonMalformed, "referrer has %d bundle layers, want 1", len(layers))
		return c, nil
	}
	if layers[0].Size > v.limits.MaxBundleBytes {
		c.Refusal = refuse(ReasonBundleTooLarge, "bundle of %d bytes is larger than the limit of %d %s", layers[0].Size, v.limits.MaxBundleBytes, raise("MaxBundleBytes"))
		return c, nil
	}
	data, err := v.readBlob(img, layers[0].Digest)
	if errors.Is(err, errTooLarge) {
		c.Refusal = refuse(ReasonBundleTooLarge, "bundle is larger than the limit of %d bytes %s", v.limits.MaxBundleBytes, raise("MaxBundleBytes"))
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	out := v.verifyBundle(data, d)
	out.Source = c.Source
	return &out, nil
}

// readBlob reads a layer, bounded; go-containerregistry checks its digest
// when the read reaches the end.
func (v *Verifier) readBlob(img v1.Image, h v1.Hash) ([]byte, error) {
	l, err := img.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, v.limits.MaxBundleBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > v.limits.MaxBundleBytes {
		return nil, errTooLarge
	}
	return data, nil
}

func (v *Verifier) remoteOptions(ctx context.Context) []remote.Option {
	opts := []remote.Option{remote.WithContext(ctx)}
	if p := v.registryPuller(); p != nil {
		return append(opts, remote.Reuse(p))
	}
	return append(opts, v.baseRemoteOptions()...)
}

func (v *Verifier) baseRemoteOptions() []remote.Option {
	limit := max(v.limits.MaxBundleBytes, v.limits.MaxManifestBytes) + 1<<20
	return []remote.Option{
		remote.WithTransport(limitTransport(v.transport, limit)),
		remote.WithAuthFromKeychain(v.keychain),
		remote.WithUserAgent("buildguard"),
	}
}

// registryPuller is shared by every look-up of the verifier, so that each
// repository's ping and token are fetched once, not once per request.
func (v *Verifier) registryPuller() *remote.Puller {
	v.pullerOnce.Do(func() {
		v.puller, _ = remote.NewPuller(v.baseRemoteOptions()...) // nil on error: each call sets up its own
	})
	return v.puller
}

// VerifyImages verifies refs concurrently, at most jobs at a time (0: four
// per core), and returns the results in the order of refs. errs[i] is set
// when image i could not be verified; results[i] is then nil.
func (v *Verifier) VerifyImages(ctx context.Context, refs []string, jobs int) (results []*ImageResult, errs []error) {
	if jobs <= 0 {
		jobs = 4 * runtime.NumCPU()
	}
	results, errs = make([]*ImageResult, len(refs)), make([]error, len(refs))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i], errs[i] = v.VerifyImage(ctx, ref)
		}()
	}
	wg.Wait()
	return results, errs
}
