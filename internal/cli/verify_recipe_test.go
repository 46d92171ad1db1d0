package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/trust"
)

// TestPrintVerifiedRecipe: the line of a verified image built by
// buildguard names its recipe (the source and its tree digest, the builder
// image's digest) and its VSA's result; refusals are listed by reason.
func TestPrintVerifiedRecipe(t *testing.T) {
	src, bld := "sha256:"+strings.Repeat("ab", 32), "sha256:"+strings.Repeat("cd", 32)
	res := &trust.ImageResult{Verified: true, TlogWaived: true, Candidates: []trust.Candidate{
		{Verified: true, Kind: trust.KindSignature, Signer: &trust.Signer{KeyID: "sha256:k"}},
		{Verified: true, Kind: trust.KindProvenance, Signer: &trust.Signer{KeyID: "sha256:k"}, Provenance: &trust.Provenance{
			BuilderID: "https://github.com/buildguard/buildguard/builder/v1", Source: "src", SourceDigest: src, Builder: "r/go@" + bld, BuilderDigest: bld}},
		{Verified: true, Kind: trust.KindAttestation, Signer: &trust.Signer{KeyID: "sha256:k"}, VSA: &trust.VSA{
			VerifierID: "https://github.com/buildguard/buildguard/verifier/v1", Result: trust.VSAPassed, Levels: "BUILDGUARD_GUARDED_BUILD_V1"}},
	}}
	var buf bytes.Buffer
	printVerified(&buf, verifyImage{Ref: "r/app@sha256:x", ImageResult: res})
	want := `verified  r/app@sha256:x: signed by key sha256:k; transparency log NOT checked (--insecure-ignore-tlog); built by https://github.com/buildguard/buildguard/builder/v1; recipe: source "src" (` + src + `), builder ` + bld + `; VSA PASSED by https://github.com/buildguard/buildguard/verifier/v1 (BUILDGUARD_GUARDED_BUILD_V1)` + "\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}

	buf.Reset()
	res = &trust.ImageResult{Problems: []trust.Refusal{{Reason: trust.ReasonVSAFailed, Detail: "a VSA says FAILED"}}}
	printVerified(&buf, verifyImage{Ref: "r/app@sha256:y", ImageResult: res})
	if want := "refused   r/app@sha256:y\n  vsa-failed: a VSA says FAILED\n"; buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}
