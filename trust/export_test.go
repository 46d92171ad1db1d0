package trust

// VerifyLegacyLayer verifies one layer of a sha256-<hex>.sig image (or of
// a .att image when attestation), for the fuzz tests.
func (v *Verifier) VerifyLegacyLayer(attestation bool, payload []byte, ann map[string]string, d Digest) Candidate {
	if attestation {
		return v.verifyLegacyAttestation(payload, ann, d, Candidate{Kind: KindAttestation})
	}
	return v.verifyLegacy(payload, ann, d, Candidate{Kind: KindSignature})
}
