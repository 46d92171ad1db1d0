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
}

// VSA returns the Verification Summary Attestation v1 of the decision,
// about the same subjects as the provenance.
func VSA(b *Build, d Decision) (*Statement, error) {
	subjects, err := b.Subjects()
	if err != nil {
		return nil, err
	}
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
		"timeVerified":       epochTime(b.SourceDateEpoch),
		"resourceUri":        uri,
		"policy":             map[string]any{"uri": PolicyURI, "digest": d.PolicyDigest},
		"verificationResult": result,
		"verifiedLevels":     levels,
		"slsaVersion":        "1.0",
	}
	if d.Provenance != nil {
		pred["inputAttestations"] = []ResourceDescriptor{{URI: ProvenanceFile, Digest: SHA256(d.Provenance)}}
	}
	return &Statement{Type: StatementType, Subject: subjects, PredicateType: VSAPredicateType, Predicate: pred}, nil
}
