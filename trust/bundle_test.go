package trust_test

import (
	"testing"
	"time"

	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// TestVerifyBundleAccepts covers each shape of bundle that is accepted:
// keyless and keyed, DSSE statements and message signatures, Rekor v1
// entries with SET and inclusion proof, and Rekor v2 entries with a
// timestamp authority's timestamp.
func TestVerifyBundleAccepts(t *testing.T) {
	f := trusttest.New(t)
	d := trusttest.RandomDigest(t)
	sign := trusttest.Statement(t, trust.CosignSignPredicate, d)
	v2, err := f.VS.AttestHashedRekordV2(trusttest.Subject, trusttest.Issuer, sign)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := f.VS.AttestAtTime(trusttest.Subject, trusttest.Issuer, sign, time.Now().Add(5*time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		bundle []byte
		want   trust.Signer
		kind   trust.Kind
		logs   int
	}{
		{"keyless statement", trusttest.JSON(t, f.Keyless(t, sign)), trust.Signer{Issuer: trusttest.Issuer, Subject: trusttest.Subject}, trust.KindSignature, 1},
		{"keyed statement", trusttest.JSON(t, f.Keyed(t, sign)), trust.Signer{KeyID: f.Key.ID}, trust.KindSignature, 1},
		{"keyed message signature", trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Digest: d, Key: f.SignKey, Logs: []*trusttest.Log{f.Log}})), trust.Signer{KeyID: f.Key.ID}, trust.KindSignature, 1},
		{"keyless message signature", trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Digest: d, Keyless: true, Identity: trusttest.Subject, Issuer: trusttest.Issuer, Logs: []*trusttest.Log{f.Log}})), trust.Signer{Issuer: trusttest.Issuer, Subject: trusttest.Subject}, trust.KindSignature, 1},
		{"attestation", trusttest.JSON(t, f.Keyless(t, trusttest.Statement(t, "https://example.com/other/v1", d))), trust.Signer{Issuer: trusttest.Issuer, Subject: trusttest.Subject}, trust.KindAttestation, 1},
		{"virtual sigstore rekor v1", trusttest.JSON(t, trusttest.EntityBundle(t, f.VS, v1)), trust.Signer{Issuer: trusttest.Issuer, Subject: trusttest.Subject}, trust.KindSignature, 1},
		{"virtual sigstore rekor v2 with tsa", trusttest.JSON(t, trusttest.EntityBundle(t, f.VS, v2)), trust.Signer{Issuer: trusttest.Issuer, Subject: trusttest.Subject}, trust.KindSignature, 1},
	}
	v := trusttest.Verifier(t, f.Policy())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.VerifyBundle(tt.bundle, d.String())
			if err != nil {
				t.Fatal(err)
			}
			if !c.Verified {
				t.Fatalf("refused: %v", c.Refusal)
			}
			if c.Signer == nil || *c.Signer != tt.want {
				t.Errorf("signer = %v, want %v", c.Signer, tt.want)
			}
			if c.Kind != tt.kind {
				t.Errorf("kind = %q, want %q", c.Kind, tt.kind)
			}
			if len(c.LogEntries) != tt.logs {
				t.Errorf("log entries = %v, want %d", c.LogEntries, tt.logs)
			}
		})
	}
}
