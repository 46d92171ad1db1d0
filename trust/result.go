package trust

import (
	"encoding/json"
	"fmt"

	"github.com/buildguard/buildguard/evidence"
)

// Reason is a stable code for why a candidate or an image was refused.
// Callers and policies branch on it; Refusal.Detail says the rest.
type Reason string

// The reasons.
const (
	// Image level.
	ReasonNoSignature      Reason = "no-signature"       // nothing verifiable is attached
	ReasonTooManyReferrers Reason = "too-many-referrers" // more referrers than Limits allow

	// Bundle shape and binding to the image.
	ReasonSubjectMismatch Reason = "subject-mismatch" // a referrer whose subject is another manifest
	ReasonBundleTooLarge  Reason = "bundle-too-large"
	ReasonMalformed       Reason = "malformed-bundle"
	ReasonDigestMismatch  Reason = "digest-mismatch" // signs another artifact digest

	// Signer.
	ReasonUntrustedKey         Reason = "untrusted-key"         // signed by a key the policy does not trust
	ReasonBadSignature         Reason = "bad-signature"         // the signature does not verify: payload or signature changed
	ReasonUntrustedCertificate Reason = "untrusted-certificate" // no chain to a trusted CA, or keyless not trusted
	ReasonCertificateExpired   Reason = "certificate-expired"   // logged outside the certificate's validity
	ReasonIdentityMismatch     Reason = "identity-mismatch"     // certificate subject not trusted
	ReasonIssuerMismatch       Reason = "issuer-mismatch"       // certificate OIDC issuer not trusted
	ReasonMissingSCT           Reason = "missing-sct"           // no verified signed certificate timestamp
	ReasonNoTimestamp          Reason = "no-timestamp"          // no verified time for a certificate

	// Transparency log.
	ReasonTlogMissing       Reason = "tlog-missing"          // no log entry
	ReasonTlogTooMany       Reason = "tlog-too-many-entries" // more entries than Limits allow
	ReasonTlogDuplicate     Reason = "tlog-duplicate-entry"  // the same entry twice
	ReasonTlogUnknownLog    Reason = "tlog-unknown-log"      // a log the trusted root does not name
	ReasonTlogInvalidSET    Reason = "tlog-invalid-set"      // signed entry timestamp does not verify
	ReasonTlogInclusion     Reason = "tlog-invalid-inclusion-proof"
	ReasonTlogCheckpoint    Reason = "tlog-invalid-checkpoint" // checkpoint not signed by the log's key
	ReasonTlogEntryMismatch Reason = "tlog-entry-mismatch"     // the entry logs another signature, key or payload
	ReasonTlogThreshold     Reason = "tlog-threshold"          // fewer distinct logs than required
	ReasonTlogSplitView     Reason = "tlog-split-view"         // the log presents a tree that does not extend one it signed before
	ReasonTlogNotOnline     Reason = "tlog-not-online"         // online look-up asked for, but no entry is in the log read online

	// Verification summary (VSA).
	ReasonNoVSA       Reason = "no-vsa"       // the policy requires a PASSED VSA and none verified
	ReasonVSAFailed   Reason = "vsa-failed"   // a verified VSA about the image says FAILED
	ReasonVSAMismatch Reason = "vsa-mismatch" // the verified VSA's resourceUri names another artifact

	// Provenance.
	ReasonNoProvenance       Reason = "no-provenance"       // the policy requires provenance and none verified
	ReasonProvenanceMismatch Reason = "provenance-mismatch" // provenance from another builder or source

	// Anything sigstore-go refused that the reasons above do not explain.
	ReasonVerification Reason = "verification-failed"
)

// Refusal is why a candidate or an image was refused.
type Refusal struct {
	Reason Reason `json:"reason"`
	Detail string `json:"detail"`
}

func (r Refusal) String() string { return string(r.Reason) + ": " + r.Detail }

func refuse(reason Reason, format string, args ...any) *Refusal {
	return &Refusal{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Kind says what a verified statement is about an image.
type Kind string

// The kinds.
const (
	// KindSignature is a signature over the image digest: a message
	// signature, or an in-toto statement of cosign's signature predicate.
	KindSignature Kind = "signature"
	// KindProvenance is SLSA provenance (v0.2 or v1) about the image.
	KindProvenance Kind = "provenance"
	// KindAttestation is any other in-toto statement about the image.
	KindAttestation Kind = "attestation"
)

// CosignSignPredicate is the predicate type cosign v3 signs images with.
const CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"

// Signer is who signed: a key, or a certificate's issuer and subject.
type Signer struct {
	KeyID   string `json:"keyID,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
}

func (s Signer) String() string {
	if s.KeyID != "" {
		return "key " + s.KeyID
	}
	return s.Subject + " (" + s.Issuer + ")"
}

// LogEntry is a verified transparency-log entry.
type LogEntry struct {
	// LogID is the hex SHA-256 of the log's public key, as the trusted root
	// names it.
	LogID string `json:"logID"`
	Index int64  `json:"index"`
	// Online is set when the entry was looked up online (Policy.RekorURL).
	Online *OnlineProof `json:"online,omitempty"`
}

// OnlineProof is an entry proven, by an inclusion proof computed from the
// log's tiles, to be in the log's current tree, whose checkpoint extends
// every earlier checkpoint seen of the log.
type OnlineProof struct {
	TreeSize uint64 `json:"treeSize"`
	RootHash string `json:"rootHash"` // hex
}

// Candidate is one bundle found for an artifact and what became of it.
type Candidate struct {
	// Source says where the bundle came from, e.g. "referrer sha256:...".
	Source        string `json:"source"`
	Kind          Kind   `json:"kind,omitempty"`
	PredicateType string `json:"predicateType,omitempty"`
	Verified      bool   `json:"verified"`
	// Signer and LogEntries are set when Verified; Provenance too for
	// verified SLSA provenance, VSA for a verified VSA.
	Signer     *Signer     `json:"signer,omitempty"`
	LogEntries []LogEntry  `json:"logEntries,omitempty"`
	Provenance *Provenance `json:"provenance,omitempty"`
	// VSA is set for a verified SLSA verification summary.
	VSA *VSA `json:"vsa,omitempty"`
	// Predicate is a verified provenance's whole predicate, as signed, for
	// a reader of more than Provenance holds (buildguard rebuild reads the
	// recipe from it).
	Predicate json.RawMessage `json:"predicate,omitempty"`
	// Refusal is set when not Verified.
	Refusal *Refusal `json:"refusal,omitempty"`
	// tiled are the verified entries of tiled (Rekor v2) and Rekor v1 logs,
	// for online look-ups.
	tiled []tiledEntry
}

// tiledEntry is what an online look-up needs of a verified entry in a tiled
// log, or in a Rekor v1 log (RekorV1). Its fields are exported for the
// result cache.
type tiledEntry struct {
	LogID    string `json:"logID"`
	Index    uint64 `json:"index"`
	LeafHash []byte `json:"leafHash"`
	// Checkpoint is the signed checkpoint the bundle's inclusion proof is
	// against; empty for a Rekor v1 entry with only a signed entry
	// timestamp.
	Checkpoint string `json:"checkpoint"`
	RekorV1    bool   `json:"rekorV1,omitempty"`
}

// ImageResult is what was proven about one image.
type ImageResult struct {
	// Ref is the reference as given; Digest the pinned manifest digest.
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	// Verified is set when at least one signature verified and, when the
	// policy requires provenance, a verified provenance met it.
	Verified bool `json:"verified"`
	// TlogWaived says the transparency log was not required: a verified
	// signature may never have been logged publicly.
	TlogWaived bool `json:"tlogWaived,omitempty"`
	// Candidates are every bundle found, verified or refused, in the order
	// the registry listed them.
	Candidates []Candidate `json:"candidates"`
	// Problems are refusals of the image as a whole.
	Problems []Refusal `json:"problems,omitempty"`
}

// Signers returns the signers of the verified signatures, without repeats.
func (r *ImageResult) Signers() []Signer {
	var out []Signer
	seen := map[Signer]bool{}
	for _, c := range r.Candidates {
		if c.Verified && c.Kind == KindSignature && c.Signer != nil && !seen[*c.Signer] {
			seen[*c.Signer] = true
			out = append(out, *c.Signer)
		}
	}
	return out
}

// LogEntries returns the verified log entries of the verified signatures,
// without repeats.
func (r *ImageResult) LogEntries() []LogEntry {
	var out []LogEntry
	seen := map[LogEntry]bool{}
	for _, c := range r.Candidates {
		if !c.Verified || c.Kind != KindSignature {
			continue
		}
		for _, e := range c.LogEntries {
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// Provenance returns the verified SLSA provenance statements, without
// repeats.
func (r *ImageResult) Provenance() []Provenance {
	var out []Provenance
	seen := map[Provenance]bool{}
	for _, c := range r.Candidates {
		if c.Verified && c.Provenance != nil && !seen[*c.Provenance] {
			seen[*c.Provenance] = true
			out = append(out, *c.Provenance)
		}
	}
	return out
}

// Reasons returns every refusal, of the image and of each candidate, as
// "reason: detail" lines prefixed by the candidate's source.
func (r *ImageResult) Reasons() []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, p.String())
	}
	for _, c := range r.Candidates {
		if c.Refusal != nil {
			out = append(out, c.Source+": "+c.Refusal.String())
		}
	}
	return out
}

// Evidence returns the report record of the image in role (builder,
// diverse or base).
func (r *ImageResult) Evidence(role string) evidence.Image {
	img := evidence.Image{Role: role, Ref: r.Ref, Digest: r.Digest, Pinned: r.Digest != "", Verified: r.Verified}
	for _, s := range r.Signers() {
		img.Signers = append(img.Signers, evidence.Signer{KeyID: s.KeyID, Issuer: s.Issuer, Subject: s.Subject})
	}
	for _, e := range r.LogEntries() {
		img.LogEntries = append(img.LogEntries, evidence.LogEntry{LogID: e.LogID, Index: e.Index})
	}
	for _, p := range r.Provenance() {
		img.Provenance = append(img.Provenance, evidence.Provenance{PredicateType: p.PredicateType, BuilderID: p.BuilderID, SourceURI: p.SourceURI})
	}
	if r.Verified && r.TlogWaived {
		img.Problems = append(img.Problems, "transparency log not checked (insecure-ignore-tlog): the signature may never have been logged publicly")
	}
	if !r.Verified {
		img.Problems = append(img.Problems, r.Reasons()...)
	}
	return img
}
