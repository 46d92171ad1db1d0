// Package attest makes the in-toto statements buildguard writes about a
// guarded build: SLSA Provenance v1 for the output and a SLSA Verification
// Summary Attestation (VSA v1) carrying the decision. Both are plain JSON,
// byte-stable for the same inputs and SOURCE_DATE_EPOCH: no wall-clock
// time, no duration and no host path reaches them. Sign (sign.go) wraps a
// statement in a DSSE envelope inside a Sigstore bundle.
package attest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// The URIs and media types of the statements. Those under the buildguard
// module path are minted by buildguard and listed in docs/formats.md.
const (
	// StatementType is the in-toto Statement v1 type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// ProvenancePredicateType is SLSA Provenance v1.
	ProvenancePredicateType = "https://slsa.dev/provenance/v1"
	// VSAPredicateType is the SLSA Verification Summary Attestation v1.
	VSAPredicateType = "https://slsa.dev/verification_summary/v1"
	// CosignSignPredicateType is the predicate of the statement cosign v3
	// signs an image with (ImageSignature).
	CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"

	// BuildType names the guarded build, its externalParameters and its
	// byproducts.
	BuildType = "https://github.com/buildguard/buildguard/buildtypes/guarded-build/v1"
	// BuilderID is the builder of the provenance: buildguard running the
	// build in the pinned builder image.
	BuilderID = "https://github.com/buildguard/buildguard/builder/v1"
	// VerifierID is the verifier of the VSA.
	VerifierID = "https://github.com/buildguard/buildguard/verifier/v1"
	// PolicyURI names the policy section of buildguard.yaml in the VSA.
	PolicyURI = "urn:buildguard:policy"
	// OutputURI is the VSA's resourceUri when nothing is published.
	OutputURI = "urn:buildguard:output"
	// VerifiedLevel is the level a passed VSA claims: every check of the
	// guarded build (pinned, verified, reproducible, agreed) that was not
	// waived held.
	VerifiedLevel = "BUILDGUARD_GUARDED_BUILD_V1"

	// ReproducibilityMediaType is the media type of the reproducibility
	// byproduct.
	ReproducibilityMediaType = "application/vnd.buildguard.reproducibility.v1+json"
	// RunMediaType is the media type of a run byproduct, whose digest is
	// its output tree manifest's.
	RunMediaType = "application/vnd.buildguard.output-manifest.v1+json"
	// SourceMediaType is the media type of the source dependency, whose
	// digest is its tree manifest's.
	SourceMediaType = "application/vnd.buildguard.source-manifest.v1+json"
)

// The file names of the statements in the evidence directory.
const (
	ProvenanceFile       = "provenance.json"
	VSAFile              = "vsa.json"
	ProvenanceBundleFile = "provenance.sigstore.json"
	VSABundleFile        = "vsa.sigstore.json"

	// The statements about the pushed image, written after the push and
	// attached to it: its provenance and VSA (byte-stable), their bundles
	// and the bundle of its signature (ImageSignature), when signed.
	ImageProvenanceFile       = "image.provenance.json"
	ImageVSAFile              = "image.vsa.json"
	ImageProvenanceBundleFile = "image.provenance.sigstore.json"
	ImageVSABundleFile        = "image.vsa.sigstore.json"
	ImageSignatureBundleFile  = "image.sigstore.json"
)

// Statement is an in-toto Statement v1.
type Statement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     any                  `json:"predicate"`
}

// ResourceDescriptor is an in-toto ResourceDescriptor v1.
type ResourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	MediaType   string            `json:"mediaType,omitempty"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

// Marshal encodes a statement canonically: struct fields in declaration
// order, map keys sorted, indented, no HTML escaping, a final newline.
func Marshal(st *Statement) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DigestSet turns "sha256:<hex>" into an in-toto digest set; a string
// without an algorithm gives nil.
func DigestSet(d string) map[string]string {
	for i := 0; i < len(d); i++ {
		if d[i] == ':' {
			if i == 0 || i == len(d)-1 {
				return nil
			}
			return map[string]string{d[:i]: d[i+1:]}
		}
	}
	return nil
}

// SHA256 is the digest set of data.
func SHA256(data []byte) map[string]string {
	sum := sha256.Sum256(data)
	return map[string]string{"sha256": hex.EncodeToString(sum[:])}
}

// epochTime formats SOURCE_DATE_EPOCH as RFC 3339 in UTC.
func epochTime(epoch int64) string {
	return time.Unix(epoch, 0).UTC().Format(time.RFC3339)
}

// About returns a copy of st whose only subject is an image: name is its
// repository (no tag) and digest its manifest's "sha256:<hex>". Tools that
// verify an attestation by the image's digest (cosign verify-attestation)
// need such a subject.
func About(st *Statement, name, digest string) *Statement {
	c := *st
	c.Subject = []ResourceDescriptor{{Name: name, Digest: DigestSet(digest)}}
	return &c
}
