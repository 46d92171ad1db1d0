package guard

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/trust"
)

// builderDigest is the builder image of the published runs.
var builderDigest = "sha256:" + strings.Repeat("cd", 32)

// published runs a passing guarded build that publishes to the registry
// with a new key, and returns it, its signer's key and the pushed digest.
func published(t *testing.T, reg *countingRegistry) (*run, *ecdsa.PrivateKey, string) {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := attest.NewSigner(ec)
	if err != nil {
		t.Fatal(err)
	}
	g := decided(t, reg.host+"/app:v1", evidence.Pass, signer)
	g.report.Images = []evidence.Image{{Role: "builder", Ref: reg.host + "/go:1@" + builderDigest, Digest: builderDigest}}
	if err := g.finish(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	return g, ec, g.report.Published.Digest
}

// verifierFor trusts the public key of k, without a log (the bundles
// carry none), and requires buildguard's provenance and, with vsa, a VSA.
func verifierFor(t *testing.T, k *ecdsa.PrivateKey, vsa bool) *trust.Verifier {
	t.Helper()
	key, err := trust.NewKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	v, err := trust.New(trust.Policy{Keys: []trust.Key{key}, InsecureIgnoreTlog: true, BuilderIDs: []string{attest.BuilderID}, RequireVSA: vsa})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestPublishedImageVerifies: what a guarded build publishes with a
// signing key is verified by buildguard's image verification (as
// `buildguard verify --key --builder-id ... --require-vsa` runs it): the
// signature over the pushed digest, the provenance about it naming the
// recipe, and a PASSED VSA naming the image by digest; nothing attached
// is refused (the statements about the output files are not attached).
func TestPublishedImageVerifies(t *testing.T) {
	reg := startCountingRegistry(t)
	g, k, digest := published(t, reg)
	res, err := verifierFor(t, k, true).VerifyImage(t.Context(), reg.host+"/app@"+digest)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified {
		t.Fatalf("refused: %v", res.Reasons())
	}
	if r := res.Reasons(); len(r) != 0 {
		t.Errorf("refusals beside the verified statements: %v", r)
	}
	kinds := map[string]int{}
	for _, c := range res.Candidates {
		kinds[c.PredicateType]++
	}
	if kinds[attest.CosignSignPredicateType] != 1 || kinds[attest.ProvenancePredicateType] != 1 || kinds[attest.VSAPredicateType] != 1 || len(res.Candidates) != 3 {
		t.Errorf("candidates by predicate type: %v", kinds)
	}
	if s := res.Signers(); len(s) != 1 {
		t.Errorf("signers: %v", s)
	}
	p := res.Provenance()
	if len(p) != 1 || p[0].BuilderID != attest.BuilderID || p[0].SourceDigest != g.report.Source.Digest || p[0].BuilderDigest != builderDigest || p[0].Source != "." {
		t.Errorf("provenance: %+v", p)
	}
	vsas := res.VSAs()
	if len(vsas) != 1 || vsas[0].Result != trust.VSAPassed || vsas[0].ResourceURI != "oci://"+reg.host+"/app@"+digest ||
		vsas[0].Levels != attest.VerifiedLevel || vsas[0].VerifierID != attest.VerifierID || !strings.HasPrefix(vsas[0].PolicyDigest, "sha256:") {
		t.Errorf("VSAs: %+v", vsas)
	}
	for _, f := range []string{attest.ImageProvenanceFile, attest.ImageVSAFile, attest.ImageSignatureBundleFile, attest.ImageProvenanceBundleFile, attest.ImageVSABundleFile} {
		readFile(t, g.opts.Out, f)
	}
	if v := readFile(t, g.opts.Out, attest.ImageVSAFile); !bytes.Contains(v, []byte(`"resourceUri": "oci://`+reg.host+`/app@`+digest+`"`)) {
		t.Errorf("image.vsa.json:\n%s", v)
	}
}

// TestPublishedStatementsByteStable: two builds of the same inputs write
// byte-identical statements about the pushed image (only the bundles'
// signatures differ).
func TestPublishedStatementsByteStable(t *testing.T) {
	reg := startCountingRegistry(t)
	g1, _, d1 := published(t, reg)
	g2, _, d2 := published(t, reg)
	if d1 != d2 {
		t.Fatalf("digests differ: %s, %s", d1, d2)
	}
	for _, f := range []string{attest.ImageProvenanceFile, attest.ImageVSAFile} {
		if !bytes.Equal(readFile(t, g1.opts.Out, f), readFile(t, g2.opts.Out, f)) {
			t.Errorf("%s differs between two builds", f)
		}
	}
}

// TestPublishedImageRefusals: each way of passing off an image is
// refused with its own reason.
func TestPublishedImageRefusals(t *testing.T) {
	reg := startCountingRegistry(t)
	g, k, digest := published(t, reg)
	repo := mustRepo(t, reg.host+"/app")
	signer, err := attest.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("untrusted signer", func(t *testing.T) {
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		res := verifyRef(t, verifierFor(t, other, true), repo.Digest(digest).String())
		wantRefused(t, res, trust.ReasonNoSignature)
		for _, c := range res.Candidates {
			if c.Refusal == nil || c.Refusal.Reason != trust.ReasonUntrustedKey {
				t.Errorf("%s: %+v, want untrusted-key", c.Source, c.Refusal)
			}
		}
	})

	t.Run("statements copied onto another image", func(t *testing.T) {
		other := pushRandom(t, repo.Tag("other"))
		copyReferrers(t, repo, digest, other)
		res := verifyRef(t, verifierFor(t, k, true), repo.Digest(other.Digest.String()).String())
		wantRefused(t, res, trust.ReasonNoSignature)
		if len(res.Candidates) != 3 {
			t.Errorf("%d candidates, want the 3 copied bundles", len(res.Candidates))
		}
		for _, c := range res.Candidates {
			if c.Refusal == nil || c.Refusal.Reason != trust.ReasonDigestMismatch {
				t.Errorf("%s: %+v, want digest-mismatch", c.Source, c.Refusal)
			}
		}
		if !strings.Contains(res.Problems[len(res.Problems)-1].Detail, "about another artifact") {
			t.Errorf("problems: %v", res.Problems)
		}
	})

	t.Run("FAILED VSA", func(t *testing.T) {
		other := pushRandom(t, repo.Tag("failed"))
		d := other.Digest.String()
		attachStatement(t, repo, other, signer, attest.ImageSignature(repo.Name(), d))
		attachStatement(t, repo, other, signer, attest.ImageVSA(g.statements.build, attest.Decision{Passed: false}, repo.Name(), d))
		// A FAILED VSA refuses the image whether or not one is required.
		for _, require := range []bool{true, false} {
			res := verifyRef(t, verifierFor(t, k, false), repo.Digest(d).String())
			if require {
				res = verifyRef(t, verifierFor(t, k, true), repo.Digest(d).String())
			}
			wantRefused(t, res, trust.ReasonVSAFailed)
		}
	})

	t.Run("no VSA", func(t *testing.T) {
		other := pushRandom(t, repo.Tag("novsa"))
		d := other.Digest.String()
		attachStatement(t, repo, other, signer, attest.ImageSignature(repo.Name(), d))
		prov := attest.About(g.statements.prov, repo.Name(), d)
		attachStatement(t, repo, other, signer, prov)
		wantRefused(t, verifyRef(t, verifierFor(t, k, true), repo.Digest(d).String()), trust.ReasonNoVSA)
		// Only the requirement refuses it.
		if res := verifyRef(t, verifierFor(t, k, false), repo.Digest(d).String()); !res.Verified {
			t.Errorf("without --require-vsa: refused: %v", res.Reasons())
		}
	})

	t.Run("VSA about another artifact", func(t *testing.T) {
		other := pushRandom(t, repo.Tag("elsewhere"))
		d := other.Digest.String()
		attachStatement(t, repo, other, signer, attest.ImageSignature(repo.Name(), d))
		attachStatement(t, repo, other, signer, attest.About(g.statements.prov, repo.Name(), d))
		// Signed about this digest, but it says it verified the published one.
		st := attest.ImageVSA(g.statements.build, attest.Decision{Passed: true}, repo.Name(), digest)
		st.Subject = []attest.ResourceDescriptor{{Name: repo.Name(), Digest: attest.DigestSet(d)}}
		attachStatement(t, repo, other, signer, st)
		wantRefused(t, verifyRef(t, verifierFor(t, k, true), repo.Digest(d).String()), trust.ReasonVSAMismatch)
	})
}

func mustRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func verifyRef(t *testing.T, v *trust.Verifier, ref string) *trust.ImageResult {
	t.Helper()
	res, err := v.VerifyImage(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// wantRefused fails unless res is refused and one of its image-level
// problems has reason want.
func wantRefused(t *testing.T, res *trust.ImageResult, want trust.Reason) {
	t.Helper()
	if res.Verified {
		t.Fatalf("verified, want refused with %s", want)
	}
	for _, p := range res.Problems {
		if p.Reason == want {
			return
		}
	}
	t.Errorf("problems %v, want %s", res.Problems, want)
}

// pushRandom pushes a new image to tag and returns its descriptor.
func pushRandom(t *testing.T, tag name.Tag) v1.Descriptor {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(tag)
	if err != nil {
		t.Fatal(err)
	}
	return d.Descriptor
}

// rawManifest puts a manifest as it is.
type rawManifest struct {
	data []byte
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.data, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// copyReferrers puts a copy of every bundle referrer of digest in repo,
// with its subject changed to other, as an attacker with push access
// would copy statements from a good image onto theirs.
func copyReferrers(t *testing.T, repo name.Repository, digest string, other v1.Descriptor) {
	t.Helper()
	idx, err := remote.Referrers(repo.Digest(digest))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Annotations[annBundlePredicateType] == "" {
			continue
		}
		got, err := remote.Get(repo.Digest(d.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		putWithSubject(t, repo, got.Manifest, other)
	}
}

func putWithSubject(t *testing.T, repo name.Repository, manifest []byte, subject v1.Descriptor) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	m["subject"] = v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(repo.Digest(h.String()), rawManifest{data, types.OCIManifestSchema1}); err != nil {
		t.Fatal(err)
	}
}

// attachStatement signs st with s and attaches its bundle to subject, as
// guard attaches its own.
func attachStatement(t *testing.T, repo name.Repository, subject v1.Descriptor, s *attest.Signer, st *attest.Statement) {
	t.Helper()
	data, err := attest.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.Sign(t.Context(), s, data)
	if err != nil {
		t.Fatal(err)
	}
	cfg := static.NewLayer([]byte("{}"), types.OCIEmptyJSON)
	blob := static.NewLayer(b, trust.BundleMediaType)
	var descs []v1.Descriptor
	for _, l := range []v1.Layer{cfg, blob} {
		if err := remote.WriteLayer(repo, l); err != nil {
			t.Fatal(err)
		}
		d, err := partial.Descriptor(l)
		if err != nil {
			t.Fatal(err)
		}
		descs = append(descs, *d)
	}
	m, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "artifactType": trust.BundleMediaType,
		"config": descs[0], "layers": descs[1:],
		"annotations": map[string]string{annBundlePredicateType: st.PredicateType, annBundleContent: "dsse-envelope"},
	})
	if err != nil {
		t.Fatal(err)
	}
	putWithSubject(t, repo, m, subject)
}
