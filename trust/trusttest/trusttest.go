// Package trusttest makes Sigstore fixtures for tests: a virtual Sigstore
// deployment (sigstore-go's VirtualSigstore certificate and timestamp
// authorities, and Rekor v1 style logs with real Merkle proofs, checkpoints
// and signed entry timestamps), bundles signed with keys or certificates,
// and bundles attached to images as OCI referrers the way cosign v3 does.
//
// It is for tests only: it imports sigstore-go's testing CA.
package trusttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/buildguard/buildguard/trust"
)

// The identity Keyless signs as.
const (
	Issuer  = "https://issuer.example"
	Subject = "release@builders.example"
)

// inTotoPayloadType is the DSSE payload type of an in-toto statement.
const inTotoPayloadType = "application/vnd.in-toto+json"

// Sigstore is a virtual Sigstore deployment: sigstore-go's VirtualSigstore
// (a real Fulcio CA and timestamp authority with real keys) and Rekor v1
// style logs whose entries carry real inclusion proofs, checkpoints and
// signed entry timestamps. Its trusted root goes through trusted_root.json
// as a user's would.
type Sigstore struct {
	VS *ca.VirtualSigstore
	// Log is the log the trusted root names.
	Log *Log
	// RootPath is the trusted_root.json of the deployment; Root is it loaded.
	RootPath string
	Root     *root.TrustedRoot
	// SignKey signs keyed bundles; Key is its public half.
	SignKey *ecdsa.PrivateKey
	Key     trust.Key
}

// New starts a virtual Sigstore deployment with one trusted log.
func New(t testing.TB) *Sigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	s := &Sigstore{VS: vs, Log: NewLog(t, "rekor.trusted.example")}
	s.RootPath, s.Root = WriteTrustedRoot(t, vs, s.Log)
	s.SignKey, s.Key = NewKey(t)
	return s
}

// NewKey returns a new P-256 signing key and its trust.Key.
func NewKey(t testing.TB) (*ecdsa.PrivateKey, trust.Key) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := trust.NewKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return priv, k
}

// WriteTrustedRoot writes the CA and TSA of vs, vs's own Rekor log and logs
// as a trusted_root.json (without CT logs: VirtualSigstore certificates
// carry no SCT) and loads it back.
func WriteTrustedRoot(t testing.TB, vs *ca.VirtualSigstore, logs ...*Log) (string, *root.TrustedRoot) {
	t.Helper()
	infos := make([]*root.TransparencyLog, 0, len(logs))
	for _, l := range logs {
		infos = append(infos, l.Info())
	}
	return WriteTrustedRootLogs(t, vs, infos...)
}

// Trust writes the deployment's trusted root again with logs added (e.g.
// a TileLog's Info) beside its own.
func (s *Sigstore) Trust(t testing.TB, logs ...*root.TransparencyLog) {
	t.Helper()
	s.RootPath, s.Root = WriteTrustedRootLogs(t, s.VS, append([]*root.TransparencyLog{s.Log.Info()}, logs...)...)
}

// WriteTrustedRootLogs is WriteTrustedRoot for logs as a trusted root
// names them.
func WriteTrustedRootLogs(t testing.TB, vs *ca.VirtualSigstore, logs ...*root.TransparencyLog) (string, *root.TrustedRoot) {
	t.Helper()
	tlogs := map[string]*root.TransparencyLog{}
	for id, tl := range vs.RekorLogs() {
		// VirtualSigstore spells the ID in hex; the file holds raw bytes.
		c := *tl
		c.ID, _ = hex.DecodeString(id)
		tlogs[id] = &c
	}
	for _, l := range logs {
		tlogs[hex.EncodeToString(l.ID)] = l
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), nil, vs.TimestampingAuthorities(), tlogs)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := trust.LoadTrustedRoot(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, loaded
}

// SignOpts says how to sign a test bundle.
type SignOpts struct {
	// Statement is the DSSE payload; nil makes a message signature over
	// Digest.
	Statement []byte
	Digest    trust.Digest
	// Keyless signs with a certificate for Identity and Issuer; otherwise
	// Key signs.
	Keyless          bool
	Identity, Issuer string
	Key              *ecdsa.PrivateKey
	// Logs to enter the signature in; Integrated is the entry time (zero:
	// now + 1 minute, inside the certificate's validity).
	Logs       []*Log
	Integrated time.Time
	// TSA adds an RFC 3161 timestamp from the virtual TSA.
	TSA bool
}

// Sign returns a bundle v0.3.
func (s *Sigstore) Sign(t testing.TB, o SignOpts) *protobundle.Bundle {
	t.Helper()
	priv, vm, verifierPEM := o.Key, &protobundle.VerificationMaterial{}, []byte(nil)
	if o.Keyless {
		cert, key, err := s.VS.GenerateLeafCert(o.Identity, o.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		priv = key.(*ecdsa.PrivateKey)
		vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}}
		verifierPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	} else {
		der, err := x509.MarshalPKIXPublicKey(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(der)
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: base64.StdEncoding.EncodeToString(sum[:])}}
		verifierPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	b := &protobundle.Bundle{MediaType: trust.BundleMediaType, VerificationMaterial: vm}
	var sig []byte
	var kind string
	var body []byte
	if o.Statement != nil {
		sum := sha256.Sum256(dsse.PAE(inTotoPayloadType, o.Statement))
		sig = mustSign(t, priv, sum[:])
		b.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: o.Statement, PayloadType: inTotoPayloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}}
		env, _ := json.Marshal(map[string]any{"payload": base64.StdEncoding.EncodeToString(o.Statement), "payloadType": inTotoPayloadType,
			"signatures": []map[string]string{{"sig": base64.StdEncoding.EncodeToString(sig)}}})
		kind, body = "dsse", MustJSON(t, map[string]any{"apiVersion": "0.0.1", "kind": "dsse", "spec": map[string]any{
			"envelopeHash": map[string]string{"algorithm": "sha256", "value": hexSum(env)},
			"payloadHash":  map[string]string{"algorithm": "sha256", "value": hexSum(o.Statement)},
			"signatures":   []map[string]string{{"signature": base64.StdEncoding.EncodeToString(sig), "verifier": base64.StdEncoding.EncodeToString(verifierPEM)}},
		}})
	} else {
		raw, err := hex.DecodeString(o.Digest.Hex)
		if err != nil {
			t.Fatal(err)
		}
		sig = mustSign(t, priv, raw)
		b.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: raw}, Signature: sig,
		}}
		kind, body = "hashedrekord", MustJSON(t, map[string]any{"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": map[string]any{
			"data":      map[string]any{"hash": map[string]string{"algorithm": "sha256", "value": o.Digest.Hex}},
			"signature": map[string]any{"content": base64.StdEncoding.EncodeToString(sig), "publicKey": map[string]string{"content": base64.StdEncoding.EncodeToString(verifierPEM)}},
		}})
	}
	when := o.Integrated
	if when.IsZero() {
		when = time.Now().Add(time.Minute)
	}
	for _, l := range o.Logs {
		vm.TlogEntries = append(vm.TlogEntries, l.Add(t, kind, body, when))
	}
	if o.TSA {
		ts, err := s.VS.TimestampResponse(sig)
		if err != nil {
			t.Fatal(err)
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts}}}
	}
	return b
}

// Keyless signs a statement as Subject from Issuer, logged in the trusted
// log.
func (s *Sigstore) Keyless(t testing.TB, statement []byte) *protobundle.Bundle {
	return s.Sign(t, SignOpts{Statement: statement, Keyless: true, Identity: Subject, Issuer: Issuer, Logs: []*Log{s.Log}})
}

// Keyed signs a statement with SignKey, logged in the trusted log.
func (s *Sigstore) Keyed(t testing.TB, statement []byte) *protobundle.Bundle {
	return s.Sign(t, SignOpts{Statement: statement, Key: s.SignKey, Logs: []*Log{s.Log}})
}

// KeyFile writes the public half of SignKey as a PEM file and returns its
// path.
func (s *Sigstore) KeyFile(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(s.SignKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Policy trusts the deployment's root, Key, and Subject from Issuer.
func (s *Sigstore) Policy() trust.Policy {
	return trust.Policy{
		TrustedRoot: s.Root,
		Keys:        []trust.Key{s.Key},
		Identities:  []trust.Identity{{Issuer: Issuer, Subject: Subject}},
	}
}

// Verifier returns a trust.Verifier for p.
func Verifier(t testing.TB, p trust.Policy, opts ...trust.Option) *trust.Verifier {
	t.Helper()
	v, err := trust.New(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// EntityBundle turns a VirtualSigstore test entity (a v1 entry with a SET,
// or a Rekor v2 entry with a checkpoint) into a bundle v0.3.
func EntityBundle(t testing.TB, vs *ca.VirtualSigstore, e *ca.TestEntity) *protobundle.Bundle {
	t.Helper()
	vc, err := e.VerificationContent()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := e.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := e.TlogEntries()
	if err != nil {
		t.Fatal(err)
	}
	tss, err := e.Timestamps()
	if err != nil {
		t.Fatal(err)
	}
	vm := &protobundle.VerificationMaterial{
		Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
		TimestampVerificationData: &protobundle.TimestampVerificationData{},
	}
	for _, ts := range tss {
		vm.TimestampVerificationData.Rfc3161Timestamps = append(vm.TimestampVerificationData.Rfc3161Timestamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
	}
	for _, entry := range entries {
		vm.TlogEntries = append(vm.TlogEntries, entityEntry(t, vs, entry))
	}
	b := &protobundle.Bundle{MediaType: trust.BundleMediaType, VerificationMaterial: vm}
	env := sc.EnvelopeContent().RawEnvelope()
	payload, err := env.DecodeB64Payload()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	b.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{Payload: payload, PayloadType: env.PayloadType, Signatures: []*protodsse.Signature{{Sig: sig}}}}
	return b
}

// entityEntry completes a VirtualSigstore entry: a v1 entry gets its kind,
// its SET (signed again by the virtual log) and an inclusion proof.
func entityEntry(t testing.TB, vs *ca.VirtualSigstore, entry *tlog.Entry) *protorekor.TransparencyLogEntry {
	t.Helper()
	tle := entry.TransparencyLogEntry()
	if entry.IsRekorV2() {
		return tle
	}
	var head struct{ Kind, APIVersion string }
	if err := json.Unmarshal(tle.CanonicalizedBody, &head); err != nil {
		t.Fatal(err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: head.Kind, Version: head.APIVersion}
	set, err := vs.RekorSignPayload(tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(tle.CanonicalizedBody), IntegratedTime: tle.IntegratedTime, LogIndex: tle.LogIndex, LogID: hex.EncodeToString(tle.LogId.KeyId)})
	if err != nil {
		t.Fatal(err)
	}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	return tle
}

// JSON encodes a bundle.
func JSON(t testing.TB, b *protobundle.Bundle) []byte {
	t.Helper()
	data, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustSign(t testing.TB, priv *ecdsa.PrivateKey, digest []byte) []byte {
	t.Helper()
	sig, err := ecdsa.SignASN1(rand.Reader, priv, digest)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// MustJSON marshals v.
func MustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// RandomDigest is the digest of some random image.
func RandomDigest(t testing.TB) trust.Digest {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	d, err := trust.ParseDigest("sha256:" + hexSum(b))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
