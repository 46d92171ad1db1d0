package trust

// Legacy cosign signatures (what cosign v2 writes): the tag sha256-<hex>.sig
// in the image's repository holds an image whose layers are simple-signing
// payloads naming the image digest; each layer's annotations carry the
// signature over the payload, the certificate, the Rekor bundle (the signed
// entry timestamp and the logged body) and an RFC 3161 timestamp. Each layer
// is turned into a Sigstore bundle v0.1 about the payload and verified like
// any other; the payload must name the pinned digest.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
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
)

// legacyCandidates verifies the layers of the sha256-<hex>.sig image of nd;
// none when there is no such tag. An error means the registry could not be
// read.
func (v *Verifier) legacyCandidates(nd name.Digest, d Digest, opts []remote.Option) ([]Candidate, error) {
	tag := nd.Context().Tag(strings.Replace(d.String(), ":", "-", 1) + ".sig")
	desc, err := remote.Get(tag, opts...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	src := "legacy signature " + tag.TagStr()
	if desc.Size > v.limits.MaxManifestBytes {
		return []Candidate{{Source: src, Kind: KindSignature, Refusal: refuse(ReasonBundleTooLarge, "signature manifest of %d bytes is larger than the limit of %d", desc.Size, v.limits.MaxManifestBytes)}}, nil
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
		return []Candidate{{Source: src, Kind: KindSignature, Refusal: refuse(ReasonTooManyReferrers, "%s holds %d signatures, more than the limit of %d", tag.TagStr(), n, v.limits.MaxReferrers)}}, nil
	}
	var out []Candidate
	for _, l := range m.Layers {
		c := Candidate{Source: src + " layer " + l.Digest.String(), Kind: KindSignature}
		switch {
		case l.MediaType != simpleSigningType:
			c.Refusal = refuse(ReasonMalformed, "layer of type %q is not a simple-signing payload", l.MediaType)
		case l.Size > v.limits.MaxBundleBytes:
			c.Refusal = refuse(ReasonBundleTooLarge, "payload of %d bytes is larger than the limit of %d", l.Size, v.limits.MaxBundleBytes)
		default:
			payload, err := v.readBlob(img, l.Digest)
			if errors.Is(err, errTooLarge) {
				c.Refusal = refuse(ReasonBundleTooLarge, "payload is larger than the limit of %d bytes", v.limits.MaxBundleBytes)
				break
			}
			if err != nil {
				return nil, err
			}
			c = v.verifyLegacy(payload, l.Annotations, d, c)
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
	sum := sha256.Sum256(payload)
	vm := &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}}}
	if c := ann[annCertificate]; c != "" {
		block, _ := pem.Decode([]byte(c))
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, errors.New("legacy signature: certificate annotation is not a PEM certificate")
		}
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{
			Certificates: []*protocommon.X509Certificate{{RawBytes: block.Bytes}},
		}}
	}
	if rb := ann[annBundle]; rb != "" {
		tle, err := legacyEntry(rb)
		if err != nil {
			return nil, err
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{tle}
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
	return &protobundle.Bundle{
		MediaType:            bundleV01,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]}, Signature: sig,
		}},
	}, nil
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
		return nil, errors.New("legacy signature: Rekor bundle annotation is malformed")
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil {
		return nil, errors.New("legacy signature: Rekor bundle names a malformed log id")
	}
	var head struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(rb.Payload.Body, &head); err != nil {
		return nil, errors.New("legacy signature: logged body is not a Rekor entry")
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
