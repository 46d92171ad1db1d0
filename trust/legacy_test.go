package trust_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
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

// TestLegacyAttestations verifies cosign v2 attestations from the
// sha256-<hex>.att tag and feeds their provenance to the builder policy:
// each forgery is refused for its own reason.
func TestLegacyAttestations(t *testing.T) {
	f := trusttest.New(t)
	reg := newTestRegistry(t, true)
	other, _ := trusttest.NewKey(t)
	keyed := trusttest.SignOpts{Key: f.SignKey, Logs: []*trusttest.Log{f.Log}}
	keyless := trusttest.SignOpts{Keyless: true, Identity: trusttest.Subject, Issuer: trusttest.Issuer, Logs: []*trusttest.Log{f.Log}}
	tests := []struct {
		name    string
		attest  func(d trust.Digest) trusttest.LegacySignature
		want    trust.Reason // of the attestation; "" for verified
		problem trust.Reason // of the image; "" for verified
	}{
		{"keyed provenance v0.2", func(d trust.Digest) trusttest.LegacySignature {
			return f.LegacyAttest(t, trusttest.ProvenanceV02(t, trustedBuilder, trustedSource, d), keyed, "intoto")
		}, "", ""},
		{"keyless provenance v1", func(d trust.Digest) trusttest.LegacySignature {
			return f.LegacyAttest(t, trusttest.ProvenanceV1(t, trustedBuilder, "https://github.com/org/tool", d), keyless, "intoto")
		}, "", ""},
		{"keyed, logged as a dsse entry", func(d trust.Digest) trusttest.LegacySignature {
			return f.LegacyAttest(t, trusttest.ProvenanceV02(t, trustedBuilder, trustedSource, d), keyed, "dsse")
		}, "", ""},
		{"keyless, logged as a dsse entry", func(d trust.Digest) trusttest.LegacySignature {
			return f.LegacyAttest(t, trusttest.ProvenanceV1(t, trustedBuilder, "https://github.com/org/tool", d), keyless, "dsse")
		}, "", ""},
		{"another builder", func(d trust.Digest) trusttest.LegacySignature {
			return f.LegacyAttest(t, trusttest.ProvenanceV02(t, "https://ci.evil.example", trustedSource, d), keyed, "intoto")
		}, "", trust.ReasonProvenanceMismatch},
		{"payload changed after signing", func(d trust.Digest) trusttest.LegacySignature {
			a := f.LegacyAttest(t, trusttest.ProvenanceV02(t, trustedBuilder, trustedSource, d), keyed, "intoto")
			a.Payload = tamperEnvelope(t, a.Payload, func(st map[string]any) {
				st["predicate"].(map[string]any)["buildType"] = "https://changed.example"
			})
			return a
		}, trust.ReasonBadSignature, trust.ReasonNoProvenance},
		{"subject of another image", func(d trust.Digest) trusttest.LegacySignature {
			return f.LegacyAttest(t, trusttest.ProvenanceV02(t, trustedBuilder, trustedSource, trusttest.RandomDigest(t)), keyed, "intoto")
		}, trust.ReasonDigestMismatch, trust.ReasonNoProvenance},
		{"untrusted key", func(d trust.Digest) trusttest.LegacySignature {
			return f.LegacyAttest(t, trusttest.ProvenanceV02(t, trustedBuilder, trustedSource, d), trusttest.SignOpts{Key: other, Logs: []*trusttest.Log{f.Log}}, "dsse")
		}, trust.ReasonUntrustedKey, trust.ReasonNoProvenance},
		{"not logged", func(d trust.Digest) trusttest.LegacySignature {
			return f.LegacyAttest(t, trusttest.ProvenanceV02(t, trustedBuilder, trustedSource, d), trusttest.SignOpts{Key: f.SignKey}, "intoto")
		}, trust.ReasonTlogMissing, trust.ReasonNoProvenance},
		{"not an envelope", func(d trust.Digest) trusttest.LegacySignature {
			a := f.LegacyAttest(t, trusttest.ProvenanceV02(t, trustedBuilder, trustedSource, d), keyed, "intoto")
			a.Payload = []byte("not json")
			return a
		}, trust.ReasonMalformed, trust.ReasonNoProvenance},
	}
	p := f.Policy()
	p.BuilderIDs = []string{trustedBuilder}
	v := trusttest.Verifier(t, p, trust.WithKeychain(anonymous))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := "legacyatt/" + string(rune('a'+i))
			ref, desc := reg.image(t, repo)
			d := imageDigest(t, ref)
			trusttest.AttachLegacy(t, reg.repo(t, repo), desc.Digest, []trusttest.LegacySignature{f.LegacySign(t, trusttest.SimpleSigning(t, ref, d), keyed)})
			trusttest.AttachLegacyAttestations(t, reg.repo(t, repo), desc.Digest, []trusttest.LegacySignature{tt.attest(d)})
			res, err := v.VerifyImage(t.Context(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Candidates) != 2 || !res.Candidates[0].Verified {
				t.Fatalf("candidates = %+v, want the legacy signature, verified, and the attestation", res.Candidates)
			}
			c := res.Candidates[1]
			if !strings.HasPrefix(c.Source, "legacy attestation sha256-") {
				t.Errorf("source = %q", c.Source)
			}
			if tt.want == "" {
				if !c.Verified || c.Kind != trust.KindProvenance || c.Provenance == nil || len(c.LogEntries) != 1 {
					t.Errorf("attestation: verified %v, kind %q, provenance %+v, refusal %v", c.Verified, c.Kind, c.Provenance, c.Refusal)
				}
			} else if c.Verified || c.Refusal == nil || c.Refusal.Reason != tt.want {
				t.Errorf("attestation: verified %v, refusal %v; want %s", c.Verified, c.Refusal, tt.want)
			}
			if tt.problem == "" {
				if !res.Verified {
					t.Errorf("image refused: %q", res.Reasons())
				}
			} else if res.Verified || len(res.Problems) == 0 || res.Problems[0].Reason != tt.problem {
				t.Errorf("image: verified %v, problems %v; want %s", res.Verified, res.Problems, tt.problem)
			}
		})
	}
}

// TestLegacyAttestationLimits refuses an .att image with more layers than
// the limit, without reading them.
func TestLegacyAttestationLimits(t *testing.T) {
	f := trusttest.New(t)
	reg := newTestRegistry(t, true)
	ref, desc := reg.image(t, "legacyatt/many")
	d := imageDigest(t, ref)
	keyed := trusttest.SignOpts{Key: f.SignKey, Logs: []*trusttest.Log{f.Log}}
	trusttest.AttachLegacy(t, reg.repo(t, "legacyatt/many"), desc.Digest, []trusttest.LegacySignature{f.LegacySign(t, trusttest.SimpleSigning(t, ref, d), keyed)})
	att := f.LegacyAttest(t, trusttest.ProvenanceV02(t, trustedBuilder, trustedSource, d), keyed, "intoto")
	trusttest.AttachLegacyAttestations(t, reg.repo(t, "legacyatt/many"), desc.Digest, []trusttest.LegacySignature{att, att, att})
	p := f.Policy()
	p.BuilderIDs = []string{trustedBuilder}
	p.Limits.MaxReferrers = 2
	res, err := trusttest.Verifier(t, p, trust.WithKeychain(anonymous)).VerifyImage(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Candidates) != 2 || res.Candidates[1].Refusal == nil || res.Candidates[1].Refusal.Reason != trust.ReasonTooManyReferrers {
		t.Fatalf("candidates = %+v, want the .att image refused as too many", res.Candidates)
	}
	if res.Verified || len(res.Problems) == 0 || res.Problems[0].Reason != trust.ReasonNoProvenance {
		t.Errorf("image: verified %v, problems %v; want %s", res.Verified, res.Problems, trust.ReasonNoProvenance)
	}
}

// tamperEnvelope changes the statement inside a DSSE envelope and keeps
// its signature.
func tamperEnvelope(t *testing.T, envelope []byte, change func(map[string]any)) []byte {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal(envelope, &env); err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.DecodeString(env["payload"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(payload, &st); err != nil {
		t.Fatal(err)
	}
	change(st)
	env["payload"] = base64.StdEncoding.EncodeToString(trusttest.MustJSON(t, st))
	return trusttest.MustJSON(t, env)
}
