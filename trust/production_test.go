package trust_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// Production bundles that sigstore-go ships: signed on GitHub Actions (and
// by a person through GitHub login) against the public-good Sigstore
// instance, logged in the public Rekor v1 log, verified here offline.

const (
	githubIssuer = "https://token.actions.githubusercontent.com"
	sigstoreJS   = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
)

type productionBundle struct {
	name, bundle, root, digest string
	identity                   trust.Identity
	logIndex                   int64
}

var productionBundles = []productionBundle{
	{
		name: "sigstore-js 1.3.0 provenance (slsa v0.2)", bundle: "examples/bundle-provenance.json", root: "examples/trusted-root-public-good.json",
		digest:   "sha512:76176ffa33808b54602c7c35de5c6e9a4deb96066dba6533f50ac234f4f1f4c6b3527515dc17c06fbe2860030f410eee69ea20079bd3a2c6f3dcf3b329b10751",
		identity: trust.Identity{Issuer: githubIssuer, Subject: sigstoreJS}, logIndex: 18300934,
	},
	{
		name: "sigstore-js 2.0.0 provenance (slsa v1)", bundle: "pkg/testing/data/bundles/sigstore.js@2.0.0-provenance.sigstore.json", root: "pkg/testing/data/trusted-roots/public-good.json",
		digest:   "sha512:46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c",
		identity: trust.Identity{Issuer: githubIssuer, SubjectRegExp: `https://github\.com/sigstore/sigstore-js/\.github/workflows/.*`},
	},
	{
		name: "signed by a person (bundle v0.1, SET only)", bundle: "pkg/testing/data/bundles/dsse.sigstore.json", root: "pkg/testing/data/trusted-roots/public-good.json",
		digest:   "sha512:bbfd372fc9beeb777fe35d05bb10c0c70a9733d366a75fed7dd18866c7391de3ee7e88ba74dd47abf3e15c845e547fcf0e5c3da80854c751554224d3a6d4e55f",
		identity: trust.Identity{Issuer: "https://github.com/login/oauth", Subject: "brian@dehamer.com"},
	},
}

var sigstoreGoDir = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/sigstore/sigstore-go").Output()
	return strings.TrimSpace(string(out)), err
})

// production reads a file of sigstore-go's module.
func production(t *testing.T, rel string) []byte {
	t.Helper()
	dir, err := sigstoreGoDir()
	if err != nil || dir == "" {
		t.Fatalf("locating sigstore-go in the module cache: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func productionVerifier(t *testing.T, pb productionBundle) *trust.Verifier {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(path, production(t, pb.root), 0o600); err != nil {
		t.Fatal(err)
	}
	tr, err := trust.LoadTrustedRoot(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := trust.New(trust.Policy{TrustedRoot: tr, Identities: []trust.Identity{pb.identity}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestProductionBundles verifies real public-good bundles offline, with
// SCTs required (the public-good root names CT logs).
func TestProductionBundles(t *testing.T) {
	for _, pb := range productionBundles {
		t.Run(pb.name, func(t *testing.T) {
			v := productionVerifier(t, pb)
			c, err := v.VerifyBundle(production(t, pb.bundle), pb.digest)
			if err != nil {
				t.Fatal(err)
			}
			if !c.Verified {
				t.Fatalf("refused: %v", c.Refusal)
			}
			if c.Signer.Issuer != pb.identity.Issuer {
				t.Errorf("issuer = %q, want %q", c.Signer.Issuer, pb.identity.Issuer)
			}
			if len(c.LogEntries) != 1 || c.LogEntries[0].LogID != "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d" {
				t.Errorf("log entries = %+v, want one in the public Rekor log", c.LogEntries)
			}
			if pb.logIndex != 0 && c.LogEntries[0].Index != pb.logIndex {
				t.Errorf("log index = %d, want %d", c.LogEntries[0].Index, pb.logIndex)
			}
		})
	}
}

// TestProductionDigestChanged refuses every production bundle for each
// one-character change of the artifact digest.
func TestProductionDigestChanged(t *testing.T) {
	for _, pb := range productionBundles {
		v := productionVerifier(t, pb)
		data := production(t, pb.bundle)
		alg, hexDigest, _ := strings.Cut(pb.digest, ":")
		for i := range hexDigest {
			b := []byte(hexDigest)
			b[i] = flipHex(b[i])
			c, err := v.VerifyBundle(data, alg+":"+string(b))
			if err != nil {
				t.Fatal(err)
			}
			if c.Verified || c.Refusal.Reason != trust.ReasonDigestMismatch {
				t.Fatalf("%s with digest character %d changed: verified %v, refusal %v", pb.name, i, c.Verified, c.Refusal)
			}
		}
	}
}

// TestProductionBundleChanged refuses the production bundles when one byte
// of what they sign or prove changes.
func TestProductionBundleChanged(t *testing.T) {
	mutations := []struct {
		name   string
		mutate func(b *protobundle.Bundle)
		want   trust.Reason
	}{
		{"statement byte", func(b *protobundle.Bundle) { p := b.GetDsseEnvelope().Payload; p[len(p)-10] ^= 1 }, trust.ReasonBadSignature},
		{"signature byte", func(b *protobundle.Bundle) { s := b.GetDsseEnvelope().Signatures[0].Sig; s[len(s)-1] ^= 1 }, trust.ReasonBadSignature},
		{"certificate byte", func(b *protobundle.Bundle) { c := leafDER(b); c[len(c)-1] ^= 1 }, trust.ReasonTlogEntryMismatch},
		{"signed entry timestamp byte", func(b *protobundle.Bundle) { s := entry(b, 0).InclusionPromise.SignedEntryTimestamp; s[len(s)-1] ^= 1 }, trust.ReasonTlogInvalidSET},
		{"integrated time", func(b *protobundle.Bundle) { entry(b, 0).IntegratedTime ^= 1 }, trust.ReasonTlogInvalidSET},
		{"log index", func(b *protobundle.Bundle) { entry(b, 0).LogIndex ^= 1 }, trust.ReasonTlogInvalidSET},
		{"logged payload hash", func(b *protobundle.Bundle) {
			body := entry(b, 0).CanonicalizedBody
			i := bytes.Index(body, []byte(`"payloadHash":{"algorithm":"sha256","value":"`)) + len(`"payloadHash":{"algorithm":"sha256","value":"`)
			body[i] = flipHex(body[i])
		}, trust.ReasonTlogInvalidSET},
	}
	pb := productionBundles[0]
	v := productionVerifier(t, pb)
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			var b protobundle.Bundle
			if err := protojson.Unmarshal(production(t, pb.bundle), &b); err != nil {
				t.Fatal(err)
			}
			m.mutate(&b)
			c, err := v.VerifyBundle(trusttest.JSON(t, &b), pb.digest)
			if err != nil {
				t.Fatal(err)
			}
			if c.Verified {
				t.Fatal("verified a changed production bundle")
			}
			if c.Refusal.Reason != m.want {
				t.Errorf("refusal = %v, want reason %q", c.Refusal, m.want)
			}
		})
	}
}

// flipHex changes a lower-case hex digit to another one.
func flipHex(c byte) byte {
	return "1032547698badcfe"[strings.IndexByte("0123456789abcdef", c)]
}

func leafDER(b *protobundle.Bundle) []byte {
	if c := b.GetVerificationMaterial().GetCertificate(); c != nil {
		return c.RawBytes
	}
	return b.GetVerificationMaterial().GetX509CertificateChain().GetCertificates()[0].RawBytes
}
