package trust_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

func imageDigest(t *testing.T, ref string) trust.Digest {
	t.Helper()
	d, err := trust.ParseDigest(ref[strings.LastIndexByte(ref, '@')+1:])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestVerifyImage verifies images whose bundles are attached as referrers,
// through the referrers API and through the tag fallback.
func TestVerifyImage(t *testing.T) {
	f := trusttest.New(t)
	forEachRegistry(t, func(t *testing.T, reg *testRegistry) {
		ref, desc := reg.image(t, "team/builder")
		d := imageDigest(t, ref)
		reg.attachBundle(t, "team/builder", desc, trusttest.JSON(t, f.Keyless(t, trusttest.Statement(t, trust.CosignSignPredicate, d))))
		reg.attachBundle(t, "team/builder", desc, trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d))))
		reg.attach(t, "team/builder", desc, "application/spdx+json", []byte(`{"spdxVersion": "SPDX-2.3"}`))
		v := trusttest.Verifier(t, f.Policy(), trust.WithKeychain(anonymous))
		fallback := reg.fallbackReads.Load()
		res, err := v.VerifyImage(t.Context(), ref)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Verified {
			t.Fatalf("refused: %v", res.Reasons())
		}
		if usedTag := reg.fallbackReads.Load() > fallback; usedTag == reg.referrersAPI {
			t.Errorf("read the referrers tag: %v, with the referrers API: %v", usedTag, reg.referrersAPI)
		}
		if len(res.Candidates) != 2 {
			t.Errorf("candidates = %+v, want the two bundles (the SBOM is not one)", res.Candidates)
		}
		signers := res.Signers()
		if len(signers) != 2 {
			t.Errorf("signers = %v, want the key and the identity", signers)
		}
		if len(res.LogEntries()) != 2 || res.LogEntries()[0].LogID != f.Log.ID {
			t.Errorf("log entries = %v, want two in %s", res.LogEntries(), f.Log.ID)
		}
		ev := res.Evidence("builder")
		if !ev.Verified || !ev.Pinned || ev.Digest != d.String() || len(ev.Signers) != 2 || len(ev.LogEntries) != 2 || len(ev.Problems) != 0 {
			t.Errorf("evidence = %+v", ev)
		}
	})
}

// TestVerifyImageRefusals covers what is refused at the image level: no
// signature, a bundle moved from another image, too many referrers, an
// oversized bundle, and a referrers tag that lists another image's
// referrer.
func TestVerifyImageRefusals(t *testing.T) {
	f := trusttest.New(t)
	forEachRegistry(t, func(t *testing.T, reg *testRegistry) {
		check := func(t *testing.T, v *trust.Verifier, ref string, want trust.Reason) *trust.ImageResult {
			t.Helper()
			res, err := v.VerifyImage(t.Context(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if res.Verified {
				t.Fatalf("verified, want refused for %s", want)
			}
			for _, r := range res.Reasons() {
				if strings.Contains(r, string(want)+": ") {
					return res
				}
			}
			t.Fatalf("reasons = %q, want %s", res.Reasons(), want)
			return nil
		}
		v := trusttest.Verifier(t, f.Policy(), trust.WithKeychain(anonymous))

		t.Run("unsigned", func(t *testing.T) {
			ref, _ := reg.image(t, "unsigned")
			res := check(t, v, ref, trust.ReasonNoSignature)
			if ev := res.Evidence("base"); ev.Verified || len(ev.Problems) == 0 {
				t.Errorf("evidence = %+v, want unverified with problems", ev)
			}
		})
		t.Run("bundle of another image", func(t *testing.T) {
			other, _ := reg.image(t, "moved")
			ref, desc := reg.image(t, "moved")
			reg.attachBundle(t, "moved", desc, trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, imageDigest(t, other)))))
			check(t, v, ref, trust.ReasonDigestMismatch)
		})
		t.Run("attestation only", func(t *testing.T) {
			ref, desc := reg.image(t, "attested")
			reg.attachBundle(t, "attested", desc, trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, "https://example.com/test-result/v1", imageDigest(t, ref)))))
			res := check(t, v, ref, trust.ReasonNoSignature)
			if len(res.Candidates) != 1 || !res.Candidates[0].Verified || res.Candidates[0].Kind != trust.KindAttestation {
				t.Errorf("candidates = %+v, want one verified attestation", res.Candidates)
			}
		})
		t.Run("too many referrers", func(t *testing.T) {
			ref, desc := reg.image(t, "crowded")
			for i := range 3 {
				reg.attach(t, "crowded", desc, "application/example", fmt.Appendf(nil, "attachment %d", i))
			}
			p := f.Policy()
			p.Limits.MaxReferrers = 2
			check(t, trusttest.Verifier(t, p, trust.WithKeychain(anonymous)), ref, trust.ReasonTooManyReferrers)
		})
		t.Run("oversized bundle", func(t *testing.T) {
			ref, desc := reg.image(t, "large")
			reg.attachBundle(t, "large", desc, trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, imageDigest(t, ref)))))
			p := f.Policy()
			p.Limits.MaxBundleBytes = 1000
			check(t, trusttest.Verifier(t, p, trust.WithKeychain(anonymous)), ref, trust.ReasonBundleTooLarge)
		})
		if !reg.referrersAPI {
			t.Run("referrers tag lists another image's referrer", func(t *testing.T) {
				otherRef, otherDesc := reg.image(t, "spliced")
				ref, desc := reg.image(t, "spliced")
				// A good signature of the other image, listed under this
				// image's referrers tag by someone who can push tags.
				h := reg.attachBundle(t, "spliced", otherDesc, trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, imageDigest(t, otherRef)))))
				reg.attach(t, "spliced", desc, "application/example", []byte("something"))
				im := reg.fallbackIndex(t, "spliced", desc.Digest)
				for _, m := range reg.fallbackIndex(t, "spliced", otherDesc.Digest).Manifests {
					if m.Digest == h {
						im.Manifests = append(im.Manifests, m)
					}
				}
				reg.putFallbackIndex(t, "spliced", desc.Digest, im)
				check(t, v, ref, trust.ReasonSubjectMismatch)
			})
		}
	})
}

// TestVerifyImageTlogWaived accepts an unlogged signature only when the log
// is waived, and says so in the result and the evidence.
func TestVerifyImageTlogWaived(t *testing.T) {
	f := trusttest.New(t)
	reg := newTestRegistry(t, true)
	ref, desc := reg.image(t, "unlogged")
	reg.attachBundle(t, "unlogged", desc, trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, imageDigest(t, ref)), Key: f.SignKey})))

	strict, err := trusttest.Verifier(t, trust.Policy{TrustedRoot: f.Root, Keys: []trust.Key{f.Key}}, trust.WithKeychain(anonymous)).VerifyImage(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if strict.Verified {
		t.Fatal("verified an unlogged signature by default")
	}
	waived, err := trusttest.Verifier(t, trust.Policy{Keys: []trust.Key{f.Key}, InsecureIgnoreTlog: true}, trust.WithKeychain(anonymous)).VerifyImage(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if !waived.Verified || !waived.TlogWaived {
		t.Fatalf("verified %v, tlog waived %v; want both (reasons %q)", waived.Verified, waived.TlogWaived, waived.Reasons())
	}
	ev := waived.Evidence("builder")
	if len(ev.Problems) != 1 || !strings.Contains(ev.Problems[0], "transparency log not checked") {
		t.Errorf("evidence problems = %q, want the waiver stated", ev.Problems)
	}
}

// TestVerifyImageErrors: an unpinned reference is a usage error, a
// registry that cannot be reached is "could not complete".
func TestVerifyImageErrors(t *testing.T) {
	f := trusttest.New(t)
	v := trusttest.Verifier(t, f.Policy(), trust.WithKeychain(anonymous))
	_, err := v.VerifyImage(t.Context(), "registry.example/team/builder:1.0")
	var unpinned *trust.UnpinnedError
	if !errors.As(err, &unpinned) || exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "buildguard pin") {
		t.Errorf("unpinned: err = %v (exit %d), want a usage error naming buildguard pin", err, exitcode.Of(err))
	}
	_, err = v.VerifyImage(t.Context(), "Not A Reference")
	if exitcode.Of(err) != exitcode.Usage {
		t.Errorf("malformed: err = %v (exit %d), want a usage error", err, exitcode.Of(err))
	}
	reg := newTestRegistry(t, true)
	ref, _ := reg.image(t, "gone")
	down := strings.Replace(ref, reg.host, "127.0.0.1:1", 1)
	_, err = v.VerifyImage(t.Context(), down)
	var rerr *trust.RegistryError
	if !errors.As(err, &rerr) || exitcode.Of(err) != exitcode.Incomplete {
		t.Errorf("registry down: err = %v (exit %d), want could not complete", err, exitcode.Of(err))
	}
}

// TestVerifyImagesOrderAndCache verifies many images concurrently: results
// come back in input order, and an image named twice is read once.
func TestVerifyImagesOrderAndCache(t *testing.T) {
	f := trusttest.New(t)
	reg := newTestRegistry(t, true)
	var refs []string
	for i := range 8 {
		ref, desc := reg.image(t, fmt.Sprintf("many/img%d", i))
		if i%2 == 0 {
			reg.attachBundle(t, fmt.Sprintf("many/img%d", i), desc, trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, imageDigest(t, ref)))))
		}
		refs = append(refs, ref)
	}
	v := trusttest.Verifier(t, f.Policy(), trust.WithKeychain(anonymous))
	before := reg.requests.Load()
	results, errs := v.VerifyImages(context.Background(), append(refs, refs[0]), 3)
	first := reg.requests.Load() - before
	for i, res := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if want := refs[i%len(refs)]; res.Ref != want {
			t.Errorf("result %d is for %s, want %s", i, res.Ref, want)
		}
		if want := i%len(refs)%2 == 0; res.Verified != want {
			t.Errorf("%s: verified %v, want %v (%q)", res.Ref, res.Verified, want, res.Reasons())
		}
	}
	if _, errs := v.VerifyImages(context.Background(), refs, 0); errors.Join(errs...) != nil {
		t.Fatal(errors.Join(errs...))
	}
	if again := reg.requests.Load() - before - first; again != 0 {
		t.Errorf("verifying the same images again made %d registry requests, want 0 (cached per digest)", again)
	}
}
