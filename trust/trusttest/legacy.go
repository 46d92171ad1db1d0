package trusttest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildguard/buildguard/trust"
)

// LegacySignature is a cosign v2 signature: a simple-signing payload and
// the annotations of its layer in the sha256-<hex>.sig image.
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

// AttachLegacy pushes sigs as the sha256-<hex>.sig image of subject, as
// cosign v2 does.
func AttachLegacy(t testing.TB, repo name.Repository, subject v1.Hash, sigs []LegacySignature, opts ...remote.Option) {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, s := range sigs {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(s.Payload, "application/vnd.dev.cosign.simplesigning.v1+json"), Annotations: s.Annotations})
		if err != nil {
			t.Fatal(err)
		}
	}
	tag := repo.Tag(strings.Replace(subject.String(), ":", "-", 1) + ".sig")
	if err := remote.Write(tag, img, opts...); err != nil {
		t.Fatal(err)
	}
}
