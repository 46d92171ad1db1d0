package trust_test

import (
	"testing"
	"time"

	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// TestLegacySignatures verifies cosign v2 signatures from the
// sha256-<hex>.sig tag: keyed and keyless, logged in Rekor v1, and refuses
// the forgeries that matter for the format.
func TestLegacySignatures(t *testing.T) {
	f := trusttest.New(t)
	reg := newTestRegistry(t, true)
	keyed := trusttest.SignOpts{Key: f.SignKey, Logs: []*trusttest.Log{f.Log}}
	keyless := trusttest.SignOpts{Keyless: true, Identity: trusttest.Subject, Issuer: trusttest.Issuer, Logs: []*trusttest.Log{f.Log}, TSA: true}
	tests := []struct {
		name string
		sign func(ref string, d trust.Digest) trusttest.LegacySignature
		want trust.Reason // "" for verified
	}{
		{"keyed", func(ref string, d trust.Digest) trusttest.LegacySignature {
			return f.LegacySign(t, trusttest.SimpleSigning(t, ref, d), keyed)
		}, ""},
		{"keyless with timestamp", func(ref string, d trust.Digest) trusttest.LegacySignature {
			return f.LegacySign(t, trusttest.SimpleSigning(t, ref, d), keyless)
		}, ""},
		{"payload for another image", func(ref string, d trust.Digest) trusttest.LegacySignature {
			return f.LegacySign(t, trusttest.SimpleSigning(t, ref, trusttest.RandomDigest(t)), keyed)
		}, trust.ReasonDigestMismatch},
		{"payload changed after signing", func(ref string, d trust.Digest) trusttest.LegacySignature {
			s := f.LegacySign(t, trusttest.SimpleSigning(t, ref, d), keyed)
			s.Payload = append(s.Payload, ' ')
			return s
		}, trust.ReasonBadSignature},
		{"not logged", func(ref string, d trust.Digest) trusttest.LegacySignature {
			return f.LegacySign(t, trusttest.SimpleSigning(t, ref, d), trusttest.SignOpts{Key: f.SignKey})
		}, trust.ReasonTlogMissing},
		{"another signer", func(ref string, d trust.Digest) trusttest.LegacySignature {
			other, _ := trusttest.NewKey(t)
			return f.LegacySign(t, trusttest.SimpleSigning(t, ref, d), trusttest.SignOpts{Key: other, Logs: []*trusttest.Log{f.Log}})
		}, trust.ReasonUntrustedKey},
		{"certificate expired when logged", func(ref string, d trust.Digest) trusttest.LegacySignature {
			o := keyless
			o.TSA, o.Integrated = false, timeAfterCertificate()
			return f.LegacySign(t, trusttest.SimpleSigning(t, ref, d), o)
		}, trust.ReasonCertificateExpired},
	}
	v := trusttest.Verifier(t, f.Policy(), trust.WithKeychain(anonymous))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := "legacy/" + string(rune('a'+i))
			ref, desc := reg.image(t, repo)
			trusttest.AttachLegacy(t, reg.repo(t, repo), desc.Digest, []trusttest.LegacySignature{tt.sign(ref, imageDigest(t, ref))})
			res, err := v.VerifyImage(t.Context(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Candidates) != 1 {
				t.Fatalf("candidates = %+v, want the legacy signature", res.Candidates)
			}
			c := res.Candidates[0]
			if tt.want == "" {
				if !res.Verified || !c.Verified || len(c.LogEntries) != 1 {
					t.Errorf("refused: %q", res.Reasons())
				}
				return
			}
			if res.Verified || c.Refusal == nil || c.Refusal.Reason != tt.want {
				t.Errorf("verified %v, refusal %v; want %s", res.Verified, c.Refusal, tt.want)
			}
		})
	}
}

// timeAfterCertificate is a time after the virtual CA's certificates, which
// are valid for ten minutes from now, expire.
func timeAfterCertificate() time.Time { return time.Now().Add(time.Hour) }
