package attest

// Verdict is the VSA's verificationResult.
type Verdict string

// The verification results of a VSA.
const (
	Passed Verdict = "PASSED"
	Failed Verdict = "FAILED"
)

// Decision is what the VSA says about a guarded build.
type Decision struct {
	// Passed is true only for a pass decision; fail and error are FAILED.
	Passed bool
	// ResourceURI is what was verified: the publish destination, or
	// OutputURI when nothing is published.
	ResourceURI string
	// PolicyDigest is the digest set of the policy that decided.
	PolicyDigest map[string]string
	// Provenance is the provenance statement (its bytes) the decision
	// covered, linked by digest as an input attestation.
	Provenance []byte
	// ProvenanceName names Provenance among the input attestations;
	// empty means ProvenanceFile.
	ProvenanceName string
}

// VSA returns the Verification Summary Attestation v1 of the decision,
// about the same subjects as the provenance.
func VSA(b *Build, d Decision) (*Statement, error) {
	subjects, err := b.Subjects()
	if err != nil {
		return nil, err
	}
	return vsa(subjects, b.SourceDateEpoch, d), nil
}

// ImageVSA returns the VSA of the decision about a pushed image: its only
// subject is the image (name its repository, digest its manifest's
// "sha256:<hex>"), and its resourceUri names the image by digest,
// "oci://NAME@DIGEST", whatever d.ResourceURI says. It is what a consumer
// of the image checks (buildguard verify --require-vsa, cosign
// verify-attestation --type https://slsa.dev/verification_summary/v1).
func ImageVSA(b *Build, d Decision, name, digest string) *Statement {
	d.ResourceURI = ImageURI(name, digest)
	return vsa([]ResourceDescriptor{{Name: name, Digest: DigestSet(digest)}}, b.SourceDateEpoch, d)
}

// ImageURI is the URI of an image by digest: "oci://NAME@DIGEST".
func ImageURI(name, digest string) string { return "oci://" + name + "@" + digest }

func vsa(subjects []ResourceDescriptor, epoch int64, d Decision) *Statement {
	result, levels := Failed, []string{}
	if d.Passed {
		result, levels = Passed, []string{VerifiedLevel}
	}
	uri := d.ResourceURI
	if uri == "" {
		uri = OutputURI
	}
	pred := map[string]any{
		"verifier":           map[string]any{"id": VerifierID},
		"timeVerified":       epochTime(epoch),
		"resourceUri":        uri,
		"policy":             map[string]any{"uri": PolicyURI, "digest": d.PolicyDigest},
		"verificationResult": result,
		"verifiedLevels":     levels,
		"slsaVersion":        "1.0",
	}
	if d.Provenance != nil {
		name := d.ProvenanceName
		if name == "" {
			name = ProvenanceFile
		}
		pred["inputAttestations"] = []ResourceDescriptor{{URI: name, Digest: SHA256(d.Provenance)}}
	}
	return &Statement{Type: StatementType, Subject: subjects, PredicateType: VSAPredicateType, Predicate: pred}
}

// ImageSignature returns the statement cosign v3 signs an image with
// (`cosign sign` makes a DSSE bundle of it, not a message signature): its
// only subject is the image and its predicate, of type
// CosignSignPredicateType, is empty. `cosign verify` (v3) accepts a
// verified bundle of it as the image's signature, and so does
// `buildguard verify`.
func ImageSignature(name, digest string) *Statement {
	return &Statement{Type: StatementType, Subject: []ResourceDescriptor{{Name: name, Digest: DigestSet(digest)}},
		PredicateType: CosignSignPredicateType, Predicate: map[string]any{}}
}
