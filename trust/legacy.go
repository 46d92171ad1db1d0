package trust

// Legacy cosign signatures and attestations (what cosign v2 writes).
//
// The tag sha256-<hex>.sig in the image's repository holds an image whose
// layers are simple-signing payloads naming the image digest; each layer's
// annotations carry the signature over the payload, the certificate, the
// Rekor bundle (the signed entry timestamp and the logged body) and an RFC
// 3161 timestamp. Each layer is turned into a Sigstore bundle v0.1 about the
// payload and verified like any other; the payload must name the pinned
// digest.
//
// The tag sha256-<hex>.att holds an image whose layers are DSSE envelopes
// of in-toto statements, with the same annotations except the signature,
// which is in the envelope. Each is turned into a bundle v0.1 with that
// envelope and verified like a cosign v3 attestation: a subject must be the
// pinned digest, and SLSA provenance goes to the provenance checks. cosign
// v2 takes the RFC 3161 timestamp of an attestation over the whole envelope,
// not over its signature as a bundle's timestamp is, so it is not used: the
// time of a keyless attestation comes from its Rekor entry.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
)

const (
	simpleSigningType   = "application/vnd.dev.cosign.simplesigning.v1+json"
	cosignSignatureType = "cosign container image signature"
	annSignature        = "dev.cosignproject.cosign/signature"
	annCertificate      = "dev.sigstore.cosign/certificate"
	annBundle           = "dev.sigstore.cosign/bundle"
	annTimestamp        = "dev.sigstore.cosign/rfc3161timestamp"
	bundleV01           = "application/vnd.dev.sigstore.bundle+json;version=0.1"
	dsseEnvelopeType    = "application/vnd.dsse.envelope.v1+json"
)

// legacyCandidates verifies the layers of the sha256-<hex>.sig and
// sha256-<hex>.att images of nd; none when there are no such tags. An error
// means the registry could not be read.
func (v *Verifier) legacyCandidates(nd name.Digest, d Digest, opts []remote.Option) ([]Candidate, error) {
	sigs, err := v.legacyTag(nd, d, opts, legacySig)
	if err != nil {
		return nil, err
	}
	atts, err := v.legacyTag(nd, d, opts, legacyAtt)
	if err != nil {
		return nil, err
	}
	return append(sigs, atts...), nil
}

// legacyKind is one of the two tags cosign v2 attaches to an image.
type legacyKind struct {
	suffix    string // tag suffix
	what      string // in messages and candidate sources
	layerType types.MediaType
	kind      Kind // until the verified content says more
}

var (
	legacySig = legacyKind{suffix: ".sig", what: "signature", layerType: simpleSigningType, kind: KindSignature}
	legacyAtt = legacyKind{suffix: ".att", what: "attestation", layerType: dsseEnvelopeType, kind: KindAttestation}
)

// legacyTag verifies the layers of the sha256-<hex><suffix> image of nd.
func (v *Verifier) legacyTag(nd name.Digest, d Digest, opts []remote.Option, lk legacyKind) ([]Candidate, error) {
	tag := nd.Context().Tag(strings.Replace(d.String(), ":", "-", 1) + lk.suffix)
	desc, err := remote.Get(tag, opts...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	src := "legacy " + lk.what + " " + tag.TagStr()
	if desc.Size > v.limits.MaxManifestBytes {
		return []Candidate{{Source: src, Kind: lk.kind, Refusal: refuse(ReasonBundleTooLarge, "%s manifest of %d bytes is larger than the limit of %d %s", lk.what, desc.Size, v.limits.MaxManifestBytes, raise("MaxManifestBytes"))}}, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if n := len(m.Layers); n > v.limits.MaxReferrers {
		return []Candidate{{Source: src, Kind: lk.kind, Refusal: refuse(ReasonTooManyReferrers, "%s holds %d %ss, more than the limit of %d %s", tag.TagStr(), n, lk.what, v.limits.MaxReferrers, raise("MaxReferrers"))}}, nil
	}
	var out []Candidate
	for _, l := range m.Layers {
		c := Candidate{Source: src + " layer " + l.Digest.String(), Kind: lk.kind}
		switch {
		case l.MediaType != lk.layerType:
			c.Refusal = refuse(ReasonMalformed, "layer of type %q is not a %s", l.MediaType, map[Kind]string{KindSignature: "simple-signing payload", KindAttestation: "DSSE envelope"}[lk.kind])
		case l.Size > v.limits.MaxBundleBytes:
			c.Refusal = refuse(ReasonBundleTooLarge, "%s of %d bytes is larger than the limit of %d %s", lk.what, l.Size, v.limits.MaxBundleBytes, raise("MaxBundleBytes"))
		default:
			payload, err := v.readBlob(img, l.Digest)
			if errors.Is(err, errTooLarge) {
				c.Refusal = refuse(ReasonBundleTooLarge, "%s is larger than the limit of %d bytes %s", lk.what, v.limits.MaxBundleBytes, raise("MaxBundleBytes"))
				break
			}
			if err != nil {
				return nil, err
			}
			if lk.kind == KindSignature {
				c = v.verifyLegacy(payload, l.Annotations, d, c)
			} else {
				c = v.verifyLegacyAttestation(payload, l.Annotations, d, c)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// verifyLegacy verifies one legacy signature of the image with digest d.
func (v *Verifier) verifyLegacy(payload []byte, ann map[string]string, d Digest, c Candidate) Candidate {
	var ss struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
			Type string `json:"type"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(payload, &ss); err != nil {
		c.Refusal = refuse(ReasonMalformed, "simple-signing payload: %v", err)
		return c
	}
	if ss.Critical.Type != cosignSignatureType {
		c.Refusal = refuse(ReasonMalformed, "payload type %q is not a cosign container image signature", ss.Critical.Type)
		return c
	}
	if ss.Critical.Image.Digest != d.String() {
		c.Refusal = refuse(ReasonDigestMismatch, "signs %s, not %s", ss.Critical.Image.Digest, d)
		return c
	}
	pb, err := legacyBundle(payload, ann)
	if err != nil {
		c.Refusal = refuse(ReasonMalformed, "%v", err)
		return c
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		c.Refusal = refuse(ReasonMalformed, "legacy signature: %v", err)
		return c
	}
	sum := sha256.Sum256(payload)
	return v.verifyEntity(b, Digest{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:]), raw: sum[:]}, c)
}

// legacyBundle builds the Sigstore bundle v0.1 a legacy signature stands
// for: a message signature over the payload.
func legacyBundle(payload []byte, ann map[string]string) (*protobundle.Bundle, error) {
	sig, err := base64.StdEncoding.DecodeString(ann[annSignature])
	if err != nil || len(sig) == 0 {
		return nil, errors.New("legacy signature: no valid signature annotation")
	}
	vm, err := legacyMaterial("signature", ann)
	if err != nil {
		return nil, err
	}
	if ts := ann[annTimestamp]; ts != "" {
		var t struct {
			SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
		}
		if err := json.Unmarshal([]byte(ts), &t); err != nil {
			return nil, errors.New("legacy signature: timestamp annotation is not an RFC 3161 timestamp bundle")
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: t.SignedRFC3161Timestamp}}}
	}
	sum := sha256.Sum256(payload)
	return &protobundle.Bundle{
		MediaType:            bundleV01,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]}, Signature: sig,
		}},
	}, nil
}

// legacyMaterial reads the certificate and the Rekor bundle of a legacy
// signature or attestation (what) from its layer's annotations.
func legacyMaterial(what string, ann map[string]string) (*protobundle.VerificationMaterial, error) {
	vm := &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}}
	if c := ann[annCertificate]; c != "" {
		block, _ := pem.Decode([]byte(c))
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("legacy %s: certificate annotation is not a PEM certificate", what)
		}
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{
			Certificates: []*protocommon.X509Certificate{{RawBytes: block.Bytes}},
		}}
	}
	if rb := ann[annBundle]; rb != "" {
		tle, err := legacyEntry(rb)
		if err != nil {
			return nil, fmt.Errorf("legacy %s: %w", what, err)
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{tle}
	}
	return vm, nil
}

// verifyLegacyAttestation verifies one legacy attestation (a DSSE envelope)
// of the image with digest d.
func (v *Verifier) verifyLegacyAttestation(envelope []byte, ann map[string]string, d Digest, c Candidate) Candidate {
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"`
		Signatures  []struct {
			KeyID string `json:"keyid"`
			Sig   []byte `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(envelope, &env); err != nil {
		c.Refusal = refuse(ReasonMalformed, "legacy attestation is not a DSSE envelope: %v", err)
		return c
	}
	// sigstore-go verifies an envelope with exactly one signature, which is
	// what cosign writes.
	if len(env.Signatures) != 1 || len(env.Signatures[0].Sig) == 0 {
		c.Refusal = refuse(ReasonMalformed, "legacy attestation envelope has %d signatures, want 1", len(env.Signatures))
		return c
	}
	vm, err := legacyMaterial("attestation", ann)
	if err != nil {
		c.Refusal = refuse(ReasonMalformed, "%v", err)
		return c
	}
	pb := &protobundle.Bundle{
		MediaType:            bundleV01,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: env.Payload, PayloadType: env.PayloadType,
			Signatures: []*protodsse.Signature{{Sig: env.Signatures[0].Sig, Keyid: env.Signatures[0].KeyID}},
		}},
	}
	kind, predicateType, r := bindDigest(pb, d)
	c.Kind, c.PredicateType = kind, predicateType
	if r != nil {
		c.Refusal = r
		return c
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		c.Refusal = refuse(ReasonMalformed, "legacy attestation: %v", err)
		return c
	}
	return v.verifyEntity(b, d, c)
}

// legacyEntry turns cosign's Rekor bundle annotation into a log entry with
// its signed entry timestamp.
func legacyEntry(annotation string) (*protorekor.TransparencyLogEntry, error) {
	var rb struct {
		SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
		Payload              struct {
			Body           []byte `json:"body"`
			IntegratedTime int64  `json:"integratedTime"`
			LogIndex       int64  `json:"logIndex"`
			LogID          string `json:"logID"`
		} `json:"Payload"`
	}
	if err := json.Unmarshal([]byte(annotation), &rb); err != nil {
		return nil, errors.New("the Rekor bundle annotation is malformed")
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil {
		return nil, errors.New("the Rekor bundle names a malformed log id")
	}
	var head struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(rb.Payload.Body, &head); err != nil {
		return nil, errors.New("logged body is not a Rekor entry")
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          rb.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: head.Kind, Version: head.APIVersion},
		IntegratedTime:    rb.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
		CanonicalizedBody: rb.Payload.Body,
	}, nil
}
