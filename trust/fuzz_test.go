package trust_test

import (
	"testing"

	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// FuzzVerifyBundle feeds attacker bytes to the bundle verifier: it must
// never panic, and whatever it accepts must name a signer and a verified
// log entry.
func FuzzVerifyBundle(f *testing.F) {
	sig := trusttest.New(f)
	d := trusttest.RandomDigest(f)
	f.Add(trusttest.JSON(f, sig.Keyed(f, trusttest.Statement(f, trust.CosignSignPredicate, d))))
	f.Add(trusttest.JSON(f, sig.Keyless(f, trusttest.Statement(f, trust.CosignSignPredicate, d))))
	f.Add(trusttest.JSON(f, sig.Sign(f, trusttest.SignOpts{Digest: d, Key: sig.SignKey, Logs: []*trusttest.Log{sig.Log}})))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{`))
	v := trusttest.Verifier(f, sig.Policy())
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := v.VerifyBundle(data, d.String())
		if err != nil {
			t.Fatal(err)
		}
		if c.Verified && (c.Signer == nil || len(c.LogEntries) == 0 || c.Refusal != nil) {
			t.Fatalf("accepted without signer or log entry: %+v", c)
		}
		if !c.Verified && (c.Refusal == nil || c.Refusal.Reason == "" || c.Refusal.Detail == "") {
			t.Fatalf("refused without a reason: %+v", c)
		}
	})
}

// FuzzParseDigest: ParseDigest accepts only canonical digests, which print
// back as given.
func FuzzParseDigest(f *testing.F) {
	f.Add("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	f.Add("sha512:" + string(make([]byte, 128)))
	f.Add("SHA256:ab")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := trust.ParseDigest(s)
		if err == nil && d.String() != s {
			t.Fatalf("ParseDigest(%q) prints as %q", s, d.String())
		}
	})
}

// FuzzVerifyLegacy feeds attacker bytes to the verification of cosign v2
// signatures and attestations (the layer and its Rekor bundle annotation):
// it must never panic, and whatever it accepts must name a signer and a
// verified log entry.
func FuzzVerifyLegacy(f *testing.F) {
	sig := trusttest.New(f)
	d := trusttest.RandomDigest(f)
	keyed := trusttest.SignOpts{Key: sig.SignKey, Logs: []*trusttest.Log{sig.Log}}
	s := sig.LegacySign(f, trusttest.SimpleSigning(f, "registry.example/a", d), keyed)
	a := sig.LegacyAttest(f, trusttest.ProvenanceV02(f, "https://builder.example", "https://github.com/org/tool", d), keyed, "intoto")
	b := sig.LegacyAttest(f, trusttest.ProvenanceV1(f, "https://builder.example", "https://github.com/org/tool", d), keyed, "dsse")
	f.Add(false, s.Payload, s.Annotations["dev.cosignproject.cosign/signature"], s.Annotations["dev.sigstore.cosign/bundle"])
	f.Add(true, a.Payload, "", a.Annotations["dev.sigstore.cosign/bundle"])
	f.Add(true, b.Payload, "", b.Annotations["dev.sigstore.cosign/bundle"])
	f.Add(true, []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`), "", `{}`)
	v := trusttest.Verifier(f, sig.Policy())
	f.Fuzz(func(t *testing.T, attestation bool, payload []byte, signature, rekorBundle string) {
		ann := map[string]string{"dev.cosignproject.cosign/signature": signature, "dev.sigstore.cosign/bundle": rekorBundle}
		c := v.VerifyLegacyLayer(attestation, payload, ann, d)
		if c.Verified && (c.Signer == nil || len(c.LogEntries) == 0 || c.Refusal != nil) {
			t.Fatalf("accepted without signer or log entry: %+v", c)
		}
		if !c.Verified && (c.Refusal == nil || c.Refusal.Reason == "" || c.Refusal.Detail == "") {
			t.Fatalf("refused without a reason: %+v", c)
		}
	})
}
