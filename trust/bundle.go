package trust

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// BundleMediaType is the media type of a Sigstore bundle v0.3, the
// artifactType of a bundle attached to an image as a referrer.
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// inTotoPayloadType is the DSSE payload type of an in-toto statement.
const inTotoPayloadType = "application/vnd.in-toto+json"

// maxSubjects bounds the subjects of a statement.
const maxSubjects = 1024

// Digest is an artifact digest such as "sha256:<hex>".
type Digest struct {
	Algorithm string // sha256, sha384 or sha512
	Hex       string // lower-case
	raw       []byte
}

// ParseDigest parses "sha256:<hex>" (or sha384, sha512).
func ParseDigest(s string) (Digest, error) {
	alg, h, ok := strings.Cut(s, ":")
	size := map[string]int{"sha256": 32, "sha384": 48, "sha512": 64}[alg]
	if !ok || size == 0 {
		return Digest{}, &DigestError{Text: s, Err: errors.New("want sha256:<hex>, sha384:<hex> or sha512:<hex>")}
	}
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != size || strings.ToLower(h) != h {
		return Digest{}, &DigestError{Text: s, Err: fmt.Errorf("want %d lower-case hex digits", 2*size)}
	}
	return Digest{Algorithm: alg, Hex: h, raw: raw}, nil
}

func (d Digest) String() string { return d.Algorithm + ":" + d.Hex }

// DigestError is a malformed digest; it is a usage error (exit 2).
type DigestError struct {
	Text string
	Err  error
}

func (e *DigestError) Error() string { return fmt.Sprintf("digest %q: %v", e.Text, e.Err) }

// Unwrap returns the cause.
func (e *DigestError) Unwrap() error { return e.Err }

// ExitCode reports a usage error.
func (e *DigestError) ExitCode() int { return 2 }

// VerifyBundle verifies a standalone Sigstore bundle (JSON) about the
// artifact with digest artifactDigest. A refusal is in the result; the error
// is for a malformed digest only.
func (v *Verifier) VerifyBundle(data []byte, artifactDigest string) (Candidate, error) {
	d, err := ParseDigest(artifactDigest)
	if err != nil {
		return Candidate{}, err
	}
	c := v.verifyBundle(data, d)
	c.Source = "bundle"
	return c, nil
}

// verifyBundle is the whole verification of one bundle about d.
func (v *Verifier) verifyBundle(data []byte, d Digest) Candidate {
	var c Candidate
	if int64(len(data)) > v.limits.MaxBundleBytes {
		c.Refusal = refuse(ReasonBundleTooLarge, "bundle of %d bytes is larger than the limit of %d %s", len(data), v.limits.MaxBundleBytes, raise("MaxBundleBytes"))
		return c
	}
	b := &bundle.Bundle{}
	if err := b.UnmarshalJSON(data); err != nil {
		c.Refusal = refuse(ReasonMalformed, "not a Sigstore bundle: %v", err)
		return c
	}
	kind, predicateType, r := bindDigest(b.Bundle, d)
	c.Kind, c.PredicateType = kind, predicateType
	if r != nil {
		c.Refusal = r
		return c
	}
	return v.verifyEntity(b, d, c)
}

// verifyEntity verifies a parsed bundle whose artifact has digest d; c
// carries what is known of it so far.
func (v *Verifier) verifyEntity(b *bundle.Bundle, d Digest, c Candidate) Candidate {
	entries, err := b.TlogEntries()
	if err != nil {
		c.Refusal = refuse(ReasonMalformed, "transparency-log entries: %v", err)
		return c
	}
	if len(entries) > v.limits.MaxLogEntries {
		c.Refusal = refuse(ReasonTlogTooMany, "bundle carries %d log entries, more than the limit of %d %s", len(entries), v.limits.MaxLogEntries, raise("MaxLogEntries"))
		return c
	}
	vc, err := b.VerificationContent()
	if err != nil {
		c.Refusal = refuse(ReasonMalformed, "verification material: %v", err)
		return c
	}
	artifact := verify.WithArtifactDigest(d.Algorithm, d.raw)
	var ok *verified
	if vc.Certificate() != nil {
		ok, c.Refusal = v.verifyKeyless(b, d, artifact)
	} else {
		ok, c.Refusal = v.verifyKeyed(b, d, artifact, vc.PublicKey().Hint())
	}
	if c.Refusal != nil {
		return c
	}
	if st := ok.result.Statement; st != nil {
		// The verified statement is authoritative for what was signed.
		c.PredicateType = st.GetPredicateType()
		c.Kind = kindOf(c.PredicateType)
		if c.Kind == KindProvenance {
			p, err := parseProvenance(st)
			if err != nil {
				c.Refusal = refuse(ReasonMalformed, "%v", err)
				return c
			}
			c.Provenance = p
			if c.Predicate, err = predicateJSON(st.GetPredicate()); err != nil {
				c.Refusal = refuse(ReasonMalformed, "provenance predicate: %v", err)
				return c
			}
		}
		if c.PredicateType == SLSAVSAV1 {
			s, err := parseVSA(st)
			if err != nil {
				c.Refusal = refuse(ReasonMalformed, "%v", err)
				return c
			}
			c.VSA = s
		}
	}
	c.Verified, c.Signer = true, &ok.signer
	if !v.policy.InsecureIgnoreTlog {
		c.LogEntries = verifiedEntries(entries, ok.material)
		c.tiled = tiledEntries(entries, ok.material)
	}
	return c
}

// verified is what sigstore-go accepted, with the signer and the trusted
// material it was accepted against.
type verified struct {
	result   *verify.VerificationResult
	material root.TrustedMaterial
	signer   Signer
}

func (v *Verifier) verifyKeyless(b *bundle.Bundle, d Digest, artifact verify.ArtifactPolicyOption) (*verified, *Refusal) {
	if v.keyless == nil {
		return nil, refuse(ReasonUntrustedCertificate, "signed with a certificate, but the policy trusts no keyless identity")
	}
	opts := make([]verify.PolicyOption, 0, len(v.identities))
	for _, id := range v.identities {
		opts = append(opts, verify.WithCertificateIdentity(id))
	}
	res, err := v.keyless.Verify(b, verify.NewPolicy(artifact, opts...))
	if err != nil {
		return nil, v.diagnoseKeyless(b, d, err)
	}
	cert := res.Signature.Certificate
	return &verified{result: res, material: v.policy.TrustedRoot, signer: Signer{Issuer: cert.Issuer, Subject: cert.SubjectAlternativeName}}, nil
}

func (v *Verifier) verifyKeyed(b *bundle.Bundle, d Digest, artifact verify.ArtifactPolicyOption, hint string) (*verified, *Refusal) {
	if len(v.keyed) == 0 {
		return nil, refuse(ReasonUntrustedKey, "signed with a key, but the policy trusts no key")
	}
	// The hint is not trusted; it only says which key to try first.
	order := make([]keyedVerifier, 0, len(v.keyed))
	for _, kv := range v.keyed {
		if hasHint(kv.key, hint) {
			order = append([]keyedVerifier{kv}, order...)
		} else {
			order = append(order, kv)
		}
	}
	var firstErr error
	for _, kv := range order {
		res, err := kv.verifier.Verify(b, verify.NewPolicy(artifact, verify.WithKey()))
		if err == nil {
			return &verified{result: res, material: kv.material, signer: Signer{KeyID: kv.key.ID}}, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, v.diagnoseKeyed(b, d, hint, firstErr)
}

// kindOf classifies a verified statement by its predicate type.
func kindOf(predicateType string) Kind {
	switch {
	case predicateType == CosignSignPredicate:
		return KindSignature
	case isProvenance(predicateType):
		return KindProvenance
	}
	return KindAttestation
}

// bindDigest checks that the bundle is about the artifact d before any
// cryptography, so that a bundle moved from another artifact is refused for
// that reason.
func bindDigest(b *protobundle.Bundle, d Digest) (Kind, string, *Refusal) {
	switch content := b.GetContent().(type) {
	case *protobundle.Bundle_MessageSignature:
		md := content.MessageSignature.GetMessageDigest()
		alg := hashName(md.GetAlgorithm())
		if alg != d.Algorithm || !bytes.Equal(md.GetDigest(), d.raw) {
			return KindSignature, "", refuse(ReasonDigestMismatch, "signs %s:%x, not %s", alg, md.GetDigest(), d)
		}
		return KindSignature, "", nil
	case *protobundle.Bundle_DsseEnvelope:
		env := content.DsseEnvelope
		if env.GetPayloadType() != inTotoPayloadType {
			return "", "", refuse(ReasonMalformed, "envelope payload type %q is not an in-toto statement", env.GetPayloadType())
		}
		var st struct {
			PredicateType string `json:"predicateType"`
			Subject       []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
		}
		if err := json.Unmarshal(env.GetPayload(), &st); err != nil {
			return "", "", refuse(ReasonMalformed, "in-toto statement: %v", err)
		}
		kind := kindOf(st.PredicateType)
		if len(st.Subject) > maxSubjects {
			return kind, st.PredicateType, refuse(ReasonMalformed, "statement has %d subjects, more than %d", len(st.Subject), maxSubjects)
		}
		var about []string
		for _, s := range st.Subject {
			if h, ok := s.Digest[d.Algorithm]; ok {
				if strings.EqualFold(h, d.Hex) {
					return kind, st.PredicateType, nil
				}
				if len(about) < 3 {
					about = append(about, d.Algorithm+":"+h)
				}
			}
		}
		if len(about) == 0 {
			return kind, st.PredicateType, refuse(ReasonDigestMismatch, "statement has no %s subject digest, so it is not about %s", d.Algorithm, d)
		}
		return kind, st.PredicateType, refuse(ReasonDigestMismatch, "statement is about %s, not %s", strings.Join(about, ", "), d)
	}
	return "", "", refuse(ReasonMalformed, "bundle has neither a message signature nor an envelope")
}

func hashName(a protocommon.HashAlgorithm) string {
	switch a {
	case protocommon.HashAlgorithm_SHA2_256:
		return "sha256"
	case protocommon.HashAlgorithm_SHA2_384:
		return "sha384"
	case protocommon.HashAlgorithm_SHA2_512:
		return "sha512"
	}
	return strings.ToLower(a.String())
}

// predicateJSON encodes a predicate as compact JSON with sorted keys:
// protojson's own spacing is deliberately unstable.
func predicateJSON(m proto.Message) (json.RawMessage, error) {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
