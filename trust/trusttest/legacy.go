package trusttest

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"

	"github.com/buildguard/buildguard/trust"
)

// LegacySignature is a cosign v2 signature: a simple-signing payload and
// the annotations of its layer in the sha256-<hex>.sig image. For an
// attestation (LegacyAttest), Payload is the DSSE envelope of the layer in
// the sha256-<hex>.att image.
type LegacySignature struct {
	Payload     []byte
	Annotations map[string]string
}

// SimpleSigning is cosign's simple-signing payload for an image digest.
func SimpleSigning(t testing.TB, ref string, d trust.Digest) []byte {
	t.Helper()
	return MustJSON(t, map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": ref},
			"image":    map[string]string{"docker-manifest-digest": d.String()},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
}

// LegacySign signs payload as cosign v2 does: a signature over the payload,
// with the certificate, the Rekor bundle (when o.Logs has a log) and the
// RFC 3161 timestamp (when o.TSA) in annotations. o.Statement and o.Digest
// are ignored.
func (s *Sigstore) LegacySign(t testing.TB, payload []byte, o SignOpts) LegacySignature {
	t.Helper()
	sum := sha256.Sum256(payload)
	d, err := trust.ParseDigest("sha256:" + hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	o.Statement, o.Digest = nil, d
	b := s.Sign(t, o)
	vm := b.GetVerificationMaterial()
	ann := map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(b.GetMessageSignature().GetSignature())}
	if c := vm.GetCertificate(); c != nil {
		ann["dev.sigstore.cosign/certificate"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.RawBytes}))
	}
	if entries := vm.GetTlogEntries(); len(entries) > 0 {
		e := entries[0]
		ann["dev.sigstore.cosign/bundle"] = string(MustJSON(t, map[string]any{
			"SignedEntryTimestamp": base64.StdEncoding.EncodeToString(e.GetInclusionPromise().GetSignedEntryTimestamp()),
			"Payload": map[string]any{
				"body": base64.StdEncoding.EncodeToString(e.CanonicalizedBody), "integratedTime": e.IntegratedTime,
				"logIndex": e.LogIndex, "logID": hex.EncodeToString(e.LogId.KeyId),
			},
		}))
	}
	if ts := vm.GetTimestampVerificationData().GetRfc3161Timestamps(); len(ts) > 0 {
		ann["dev.sigstore.cosign/rfc3161timestamp"] = string(MustJSON(t, map[string]string{"SignedRFC3161Timestamp": base64.StdEncoding.EncodeToString(ts[0].SignedTimestamp)}))
	}
	return LegacySignature{Payload: payload, Annotations: ann}
}

// LegacyAttest signs an in-toto statement as cosign v2 attest does: a DSSE
// envelope, with the certificate and the Rekor bundle (when o.Logs has a
// log) in annotations. entryType is the Rekor entry cosign logs: "dsse"
// (dsse 0.0.1, the default of cosign v2.6) or "intoto" (intoto 0.0.2, of
// older releases). o.TSA is ignored (see trust/legacy.go).
func (s *Sigstore) LegacyAttest(t testing.TB, statement []byte, o SignOpts, entryType string) LegacySignature {
	t.Helper()
	logs := o.Logs
	o.Statement, o.TSA = statement, false
	if entryType != "dsse" {
		o.Logs = nil
	}
	b := s.Sign(t, o)
	sig := b.GetDsseEnvelope().GetSignatures()[0].GetSig()
	env := MustJSON(t, map[string]any{
		"payloadType": inTotoPayloadType,
		"payload":     base64.StdEncoding.EncodeToString(statement),
		"signatures":  []map[string]string{{"keyid": "", "sig": base64.StdEncoding.EncodeToString(sig)}},
	})
	ann := map[string]string{"dev.cosignproject.cosign/signature": "", "predicateType": predicateType(t, statement)}
	vm := b.GetVerificationMaterial()
	verifierPEM := []byte(nil)
	if c := vm.GetCertificate(); c != nil {
		verifierPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.RawBytes})
		ann["dev.sigstore.cosign/certificate"] = string(verifierPEM)
	} else {
		der, err := x509.MarshalPKIXPublicKey(o.Key.Public())
		if err != nil {
			t.Fatal(err)
		}
		verifierPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	var e *protorekor.TransparencyLogEntry
	switch {
	case len(logs) == 0:
	case entryType == "dsse":
		e = vm.GetTlogEntries()[0]
	case entryType == "intoto":
		// rekor's intoto v0.0.2 type keeps the signature base64-encoded
		// twice: the envelope's base64 string, as strfmt.Base64.
		body := MustJSON(t, map[string]any{"apiVersion": "0.0.2", "kind": "intoto", "spec": map[string]any{"content": map[string]any{
			"envelope": map[string]any{
				"payloadType": inTotoPayloadType,
				"signatures": []map[string]string{{
					"sig":       base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString(sig))),
					"publicKey": base64.StdEncoding.EncodeToString(verifierPEM),
				}},
			},
			"hash":        map[string]string{"algorithm": "sha256", "value": hexSum(env)},
			"payloadHash": map[string]string{"algorithm": "sha256", "value": hexSum(statement)},
		}}})
		when := o.Integrated
		if when.IsZero() {
			when = time.Now().Add(time.Minute)
		}
		e = logs[0].Add(t, "intoto", body, when)
	default:
		t.Fatalf("entry type %q", entryType)
	}
	if e != nil {
		ann["dev.sigstore.cosign/bundle"] = string(MustJSON(t, map[string]any{
			"SignedEntryTimestamp": base64.StdEncoding.EncodeToString(e.GetInclusionPromise().GetSignedEntryTimestamp()),
			"Payload": map[string]any{
				"body": base64.StdEncoding.EncodeToString(e.CanonicalizedBody), "integratedTime": e.IntegratedTime,
				"logIndex": e.LogIndex, "logID": hex.EncodeToString(e.LogId.KeyId),
			},
		}))
	}
	return LegacySignature{Payload: env, Annotations: ann}
}

func predicateType(t testing.TB, statement []byte) string {
	t.Helper()
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if err := json.Unmarshal(statement, &st); err != nil {
		t.Fatal(err)
	}
	return st.PredicateType
}

// AttachLegacy pushes sigs as the sha256-<hex>.sig image of subject, as
// cosign v2 does.
func AttachLegacy(t testing.TB, repo name.Repository, subject v1.Hash, sigs []LegacySignature, opts ...remote.Option) {
	t.Helper()
	attachLegacy(t, repo.Tag(strings.Replace(subject.String(), ":", "-", 1)+".sig"), "application/vnd.dev.cosign.simplesigning.v1+json", sigs, opts...)
}

// AttachLegacyAttestations pushes atts (from LegacyAttest) as the
// sha256-<hex>.att image of subject, as cosign v2 does.
func AttachLegacyAttestations(t testing.TB, repo name.Repository, subject v1.Hash, atts []LegacySignature, opts ...remote.Option) {
	t.Helper()
	attachLegacy(t, repo.Tag(strings.Replace(subject.String(), ":", "-", 1)+".att"), "application/vnd.dsse.envelope.v1+json", atts, opts...)
}

func attachLegacy(t testing.TB, tag name.Tag, layerType types.MediaType, layers []LegacySignature, opts ...remote.Option) {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, s := range layers {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(s.Payload, layerType), Annotations: s.Annotations})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		t.Fatal(err)
	}
}
