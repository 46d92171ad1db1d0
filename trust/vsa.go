package trust

import (
	"fmt"
	"strings"

	vsav1 "github.com/in-toto/attestation/go/predicates/vsa/v1"
	in_toto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// SLSAVSAV1 is the predicate type of a SLSA Verification Summary
// Attestation v1.
const SLSAVSAV1 = "https://slsa.dev/verification_summary/v1"

// The verification results a VSA can state.
const (
	VSAPassed = "PASSED"
	VSAFailed = "FAILED"
)

// VSA is what a verified SLSA Verification Summary Attestation says about
// the image.
type VSA struct {
	VerifierID string `json:"verifierID"`
	// ResourceURI is what the verifier verified, e.g.
	// "oci://registry.example/app@sha256:...".
	ResourceURI string `json:"resourceUri"`
	// Result is PASSED or FAILED.
	Result string `json:"verificationResult"`
	// Levels are the verified levels, joined by ",".
	Levels string `json:"verifiedLevels,omitempty"`
	// PolicyURI and PolicyDigest ("sha256:<hex>") name the policy that
	// decided.
	PolicyURI    string `json:"policyURI,omitempty"`
	PolicyDigest string `json:"policyDigest,omitempty"`
}

// parseVSA reads a verified VSA statement with the in-toto attestation
// types.
func parseVSA(st *in_toto.Statement) (*VSA, error) {
	raw, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		return nil, fmt.Errorf("VSA predicate: %w", err)
	}
	var pred vsav1.VerificationSummary
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &pred); err != nil {
		return nil, fmt.Errorf("VSA predicate: %w", err)
	}
	out := &VSA{
		VerifierID: pred.GetVerifier().GetId(), ResourceURI: pred.GetResourceUri(),
		Result: pred.GetVerificationResult(), Levels: strings.Join(pred.GetVerifiedLevels(), ","),
		PolicyURI: pred.GetPolicy().GetUri(),
	}
	if h := pred.GetPolicy().GetDigest()["sha256"]; h != "" {
		out.PolicyDigest = "sha256:" + h
	}
	if out.Result != VSAPassed && out.Result != VSAFailed {
		return nil, fmt.Errorf("VSA verificationResult %q: want %s or %s", out.Result, VSAPassed, VSAFailed)
	}
	return out, nil
}

// about reports whether the VSA's resourceUri names the image d by
// digest: it must end in "@" and the digest, as "oci://NAME@DIGEST" and
// "NAME@DIGEST" do. The repository is not compared, so that a VSA stays
// good for a copy of the image in a mirror: the signed subject already
// binds the statement to the digest.
func (s *VSA) about(d Digest) bool {
	return strings.HasSuffix(s.ResourceURI, "@"+d.String())
}

// VSAs returns the verified VSAs about the image, without repeats.
func (r *ImageResult) VSAs() []VSA {
	var out []VSA
	seen := map[VSA]bool{}
	for _, c := range r.Candidates {
		if c.Verified && c.VSA != nil && !seen[*c.VSA] {
			seen[*c.VSA] = true
			out = append(out, *c.VSA)
		}
	}
	return out
}

// vsaProblem says why the image's VSAs refuse it: a verified FAILED VSA
// about it refuses it always (a signer the policy trusts said it failed);
// with Policy.RequireVSA, a verified PASSED VSA whose resourceUri names
// the image's digest is required. nil when neither applies.
func (v *Verifier) vsaProblem(cands []Candidate, d Digest) *Refusal {
	var passed, elsewhere []string
	for _, c := range cands {
		if !c.Verified || c.VSA == nil {
			continue
		}
		s := c.VSA
		switch {
		case !s.about(d):
			elsewhere = append(elsewhere, s.ResourceURI)
		case s.Result == VSAFailed:
			return refuse(ReasonVSAFailed, "%s: a VSA signed by %s says verification of %s FAILED (verifier %s)", c.Source, c.Signer, d, s.VerifierID)
		default:
			passed = append(passed, s.ResourceURI)
		}
	}
	if !v.policy.RequireVSA || len(passed) > 0 {
		return nil
	}
	if len(elsewhere) > 0 {
		return refuse(ReasonVSAMismatch, "the verified VSA(s) are about %s, not %s", strings.Join(elsewhere, ", "), d)
	}
	return refuse(ReasonNoVSA, "no verified PASSED VSA (%s) about %s from a trusted signer, and the policy requires one", SLSAVSAV1, d)
}
