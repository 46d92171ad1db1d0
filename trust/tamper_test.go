package trust_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/proto"

	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// tamperCase is one forged or broken bundle and the reason it must be
// refused for.
type tamperCase struct {
	name   string
	bundle func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte
	policy func(p *trust.Policy)
	want   trust.Reason
}

func tamperCases() []tamperCase {
	return []tamperCase{
		{name: "signed by a key the policy does not trust", want: trust.ReasonUntrustedKey,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				other, _ := trusttest.NewKey(t)
				return trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Key: other, Logs: []*trusttest.Log{f.Log}}))
			}},
		{name: "payload modified after keyed signing", want: trust.ReasonBadSignature,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				b := f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Key: f.SignKey})
				env := b.GetDsseEnvelope()
				env.Payload = append(env.Payload[:len(env.Payload)-1:len(env.Payload)-1], ' ', '}')
				return trusttest.JSON(t, b)
			}},
		{name: "payload modified after keyless signing", want: trust.ReasonBadSignature,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				b := f.Keyless(t, trusttest.Statement(t, trust.CosignSignPredicate, d))
				env := b.GetDsseEnvelope()
				env.Payload = append(env.Payload[:len(env.Payload)-1:len(env.Payload)-1], ' ', '}')
				return trusttest.JSON(t, b)
			}},
		{name: "statement about another image", want: trust.ReasonDigestMismatch,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, trusttest.RandomDigest(t))))
			}},
		{name: "message signature over another digest", want: trust.ReasonDigestMismatch,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Digest: trusttest.RandomDigest(t), Key: f.SignKey, Logs: []*trusttest.Log{f.Log}}))
			}},
		{name: "inclusion proof does not match the entry", want: trust.ReasonTlogInclusion,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				b := f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d))
				entry(b, 0).InclusionProof.Hashes[0][0] ^= 1
				return trusttest.JSON(t, b)
			}},
		{name: "inclusion proof for another index", want: trust.ReasonTlogInclusion,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				b := f.Keyless(t, trusttest.Statement(t, trust.CosignSignPredicate, d))
				entry(b, 0).InclusionProof.LogIndex++
				return trusttest.JSON(t, b)
			}},
		{name: "checkpoint signed by an untrusted key", want: trust.ReasonTlogCheckpoint,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				b := f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d))
				forgeCheckpoint(t, f.Log.Origin, entry(b, 0).InclusionProof)
				return trusttest.JSON(t, b)
			}},
		{name: "entry in a log the trusted root does not name", want: trust.ReasonTlogUnknownLog,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				rogue := trusttest.NewLog(t, "rekor.rogue.example")
				return trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Key: f.SignKey, Logs: []*trusttest.Log{rogue}}))
			}},
		{name: "signed entry timestamp does not verify", want: trust.ReasonTlogInvalidSET,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				b := f.Keyless(t, trusttest.Statement(t, trust.CosignSignPredicate, d))
				e := entry(b, 0)
				e.IntegratedTime-- // the SET signed another time
				return trusttest.JSON(t, b)
			}},
		{name: "certificate expired when the entry was logged", want: trust.ReasonCertificateExpired,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Keyless: true, Identity: trusttest.Subject, Issuer: trusttest.Issuer,
					Logs: []*trusttest.Log{f.Log}, Integrated: time.Now().Add(time.Hour)}))
			}},
		{name: "certificate subject not trusted", want: trust.ReasonIdentityMismatch,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Keyless: true, Identity: "mallory@builders.example", Issuer: trusttest.Issuer, Logs: []*trusttest.Log{f.Log}}))
			}},
		{name: "certificate issuer not trusted", want: trust.ReasonIssuerMismatch,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Keyless: true, Identity: trusttest.Subject, Issuer: "https://issuer.evil.example", Logs: []*trusttest.Log{f.Log}}))
			}},
		{name: "subject regexp matches only part of the subject", want: trust.ReasonIdentityMismatch,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Keyless: true, Identity: "evil-" + trusttest.Subject, Issuer: trusttest.Issuer, Logs: []*trusttest.Log{f.Log}}))
			},
			policy: func(p *trust.Policy) {
				p.Identities = []trust.Identity{{Issuer: trusttest.Issuer, SubjectRegExp: `release@builders\.example`}}
			}},
		{name: "one entry twice to reach a threshold of two", want: trust.ReasonTlogDuplicate,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				b := f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d))
				b.VerificationMaterial.TlogEntries = append(b.VerificationMaterial.TlogEntries, proto.Clone(entry(b, 0)).(*protorekor.TransparencyLogEntry))
				return trusttest.JSON(t, b)
			},
			policy: func(p *trust.Policy) { p.TlogThreshold = 2 }},
		{name: "two entries of one log for a threshold of two logs", want: trust.ReasonTlogThreshold,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Key: f.SignKey, Logs: []*trusttest.Log{f.Log, f.Log}}))
			},
			policy: func(p *trust.Policy) { p.TlogThreshold = 2 }},
		{name: "bundle larger than the limit", want: trust.ReasonBundleTooLarge,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d)))
			},
			policy: func(p *trust.Policy) { p.Limits.MaxBundleBytes = 512 }},
		{name: "more log entries than the limit", want: trust.ReasonTlogTooMany,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Key: f.SignKey, Logs: []*trusttest.Log{f.Log, f.Log, f.Log}}))
			},
			policy: func(p *trust.Policy) { p.Limits.MaxLogEntries = 2 }},
		{name: "never logged", want: trust.ReasonTlogMissing,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Key: f.SignKey}))
			}},
		{name: "log entry of another signature", want: trust.ReasonTlogEntryMismatch,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				b := f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d))
				other := f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d)) // same key, same payload, new signature
				b.VerificationMaterial.TlogEntries = other.VerificationMaterial.TlogEntries
				return trusttest.JSON(t, b)
			}},
		{name: "rekor v2 entry without a timestamp authority", want: trust.ReasonNoTimestamp,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				e, err := f.VS.AttestHashedRekordV2(trusttest.Subject, trusttest.Issuer, trusttest.Statement(t, trust.CosignSignPredicate, d))
				if err != nil {
					t.Fatal(err)
				}
				b := trusttest.EntityBundle(t, f.VS, e)
				b.VerificationMaterial.TimestampVerificationData = nil
				return trusttest.JSON(t, b)
			}},
		{name: "certificate from another CA", want: trust.ReasonUntrustedCertificate,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				other, err := ca.NewVirtualSigstore()
				if err != nil {
					t.Fatal(err)
				}
				rogue := &trusttest.Sigstore{VS: other, Log: f.Log}
				return trusttest.JSON(t, rogue.Keyless(t, trusttest.Statement(t, trust.CosignSignPredicate, d)))
			}},
		{name: "keyless signature when only keys are trusted", want: trust.ReasonUntrustedCertificate,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Keyless(t, trusttest.Statement(t, trust.CosignSignPredicate, d)))
			},
			policy: func(p *trust.Policy) { p.Identities = nil }},
		{name: "keyed signature when only identities are trusted", want: trust.ReasonUntrustedKey,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return trusttest.JSON(t, f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d)))
			},
			policy: func(p *trust.Policy) { p.Keys = nil }},
		{name: "not a bundle", want: trust.ReasonMalformed,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				return []byte(`{"mediaType": "text/plain"}`)
			}},
		{name: "envelope that is not an in-toto statement", want: trust.ReasonMalformed,
			bundle: func(t *testing.T, f *trusttest.Sigstore, d trust.Digest) []byte {
				b := f.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d))
				b.GetDsseEnvelope().PayloadType = "text/plain"
				return trusttest.JSON(t, b)
			}},
	}
}

// TestTamperMatrix proves that each forgery is refused, for its own reason.
func TestTamperMatrix(t *testing.T) {
	f := trusttest.New(t)
	reasons := map[trust.Reason]bool{}
	for _, tc := range tamperCases() {
		t.Run(tc.name, func(t *testing.T) {
			d := trusttest.RandomDigest(t)
			p := f.Policy()
			if tc.policy != nil {
				tc.policy(&p)
			}
			v := trusttest.Verifier(t, p)
			c, err := v.VerifyBundle(tc.bundle(t, f, d), d.String())
			if err != nil {
				t.Fatal(err)
			}
			if c.Verified {
				t.Fatalf("verified a forgery (signer %v)", c.Signer)
			}
			if c.Refusal == nil || c.Refusal.Reason != tc.want {
				t.Fatalf("refusal = %v, want reason %q", c.Refusal, tc.want)
			}
			if c.Refusal.Detail == "" {
				t.Error("refusal has no detail")
			}
			t.Logf("%s", c.Refusal)
			reasons[tc.want] = true
		})
	}
	if len(reasons) < 15 {
		t.Errorf("the matrix covers %d distinct reasons, want at least 15", len(reasons))
	}
}

// TestTamperBaseline proves the matrix tampers with bundles that verify:
// the same fixtures untouched are accepted.
func TestTamperBaseline(t *testing.T) {
	f := trusttest.New(t)
	d := trusttest.RandomDigest(t)
	other := trusttest.NewLog(t, "rekor.second.example")
	f.RootPath, f.Root = trusttest.WriteTrustedRoot(t, f.VS, f.Log, other)
	p := f.Policy()
	p.TlogThreshold = 2
	v := trusttest.Verifier(t, p)
	for name, b := range map[string][]byte{
		"keyed in two logs":   trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Key: f.SignKey, Logs: []*trusttest.Log{f.Log, other}})),
		"keyless in two logs": trusttest.JSON(t, f.Sign(t, trusttest.SignOpts{Statement: trusttest.Statement(t, trust.CosignSignPredicate, d), Keyless: true, Identity: trusttest.Subject, Issuer: trusttest.Issuer, Logs: []*trusttest.Log{f.Log, other}})),
	} {
		c, err := v.VerifyBundle(b, d.String())
		if err != nil {
			t.Fatal(err)
		}
		if !c.Verified || len(c.LogEntries) != 2 {
			t.Errorf("%s: verified %v with %d log entries, refusal %v; want verified with 2", name, c.Verified, len(c.LogEntries), c.Refusal)
		}
	}
}

func entry(b *protobundle.Bundle, i int) *protorekor.TransparencyLogEntry {
	return b.GetVerificationMaterial().GetTlogEntries()[i]
}

// forgeCheckpoint replaces the checkpoint of p by one for the same tree
// signed by a key that is not the log's.
func forgeCheckpoint(t *testing.T, origin string, p *protorekor.InclusionProof) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadECDSASignerVerifier(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := util.CreateAndSignCheckpoint(context.Background(), origin, 1234, uint64(p.TreeSize), p.RootHash, signer)
	if err != nil {
		t.Fatal(err)
	}
	p.Checkpoint.Envelope = string(cp)
}
