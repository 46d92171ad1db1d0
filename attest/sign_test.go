package attest_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

func pkcs8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestSignVerify: a statement signed with a PKCS#8 key, and with a cosign
// encrypted key file, verifies with trust.VerifyBundle against the public
// key; the same bundle with one payload byte changed, or checked against
// another key, is refused.
func TestSignVerify(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der := pkcs8(t, ec)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.key")
	if err := os.WriteFile(plain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	enc, err := encrypted.Encrypt(der, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	cosignKey := filepath.Join(dir, "cosign.key")
	if err := os.WriteFile(cosignKey, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: enc}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := attest.LoadSigner(cosignKey, []byte("wrong")); err == nil || !strings.Contains(err.Error(), "COSIGN_PASSWORD") {
		t.Errorf("a wrong password: %v", err)
	}

	key, err := trust.NewKey(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	v := trusttest.Verifier(t, trust.Policy{Keys: []trust.Key{key}, InsecureIgnoreTlog: true})
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := trust.NewKey(other.Public())
	vOther := trusttest.Verifier(t, trust.Policy{Keys: []trust.Key{otherKey}, InsecureIgnoreTlog: true})

	prov, vsa := statements(t, sampleBuild(), true)
	for _, tc := range []struct{ name, path, pass string }{{"pkcs8", plain, ""}, {"cosign", cosignKey, "s3cret"}} {
		s, err := attest.LoadSigner(tc.path, []byte(tc.pass))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, st := range [][]byte{prov, vsa} {
			b, err := attest.Sign(t.Context(), s, st)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.VerifyBundle(b, "sha256:"+hexB)
			if err != nil || !c.Verified {
				t.Fatalf("%s: the bundle does not verify: %v %+v", tc.name, err, c.Refusal)
			}
			if c, _ := vOther.VerifyBundle(b, "sha256:"+hexB); c.Verified {
				t.Errorf("%s: verified with another key", tc.name)
			}
			if c, _ := v.VerifyBundle(flipPayloadByte(t, b), "sha256:"+hexB); c.Verified {
				t.Errorf("%s: a bundle with one payload byte changed verified", tc.name)
			}
		}
	}
}

// flipPayloadByte changes one byte of the DSSE payload inside a bundle.
func flipPayloadByte(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	env := m["dsseEnvelope"].(map[string]any)
	var payload []byte
	if err := json.Unmarshal([]byte(`"`+env["payload"].(string)+`"`), &payload); err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(payload), "app")
	payload[i] = 'b' // the subject "app" becomes "bpp"
	env["payload"] = payload
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestParseSignerRefuses: other PEM types and small keys are refused by
// name; Ed25519 keys are accepted.
func TestParseSignerRefuses(t *testing.T) {
	if _, err := attest.ParseSigner([]byte("not pem"), nil); err == nil {
		t.Error("not PEM: accepted")
	}
	if _, err := attest.ParseSigner(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}), nil); err == nil || !strings.Contains(err.Error(), "EC PRIVATE KEY") {
		t.Errorf("SEC 1 key: %v", err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := attest.ParseSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8(t, ed)}), nil); err != nil {
		t.Errorf("ed25519: %v", err)
	}
}
