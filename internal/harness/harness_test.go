package harness

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

const checkpointText = "example.com/log\n3\nq0pe6p8WBa9a7FJ4kGK3yW8xEpZ7aLRW9jc5YK8HQqQ=\n"

func TestNoteVerifierEd25519(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	// vkey is name+keyhash+base64(0x01 || Ed25519 public key).
	enc, err := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2])
	if err != nil || len(enc) != 1+ed25519.PublicKeySize || enc[0] != 1 {
		t.Fatalf("unexpected verifier key %q: %v", vkey, err)
	}
	pub := ed25519.PublicKey(enc[1:])
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: checkpointText}, signer)
	if err != nil {
		t.Fatal(err)
	}
	openWith(t, "example.com/log", pub, signed, true)
	openWith(t, "example.org/other", pub, signed, false)
}

// ecdsaSigner signs notes the way rekor-tiles' pkg/note does for an ECDSA
// key: key ID SHA-256(PKIX DER)[:4], ASN.1 signature over SHA-256(text).
type ecdsaSigner struct {
	name string
	key  *ecdsa.PrivateKey
}

func (s ecdsaSigner) Name() string { return s.name }
func (s ecdsaSigner) KeyHash() uint32 {
	der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		panic(err)
	}
	h := sha256.Sum256(der)
	return binary.BigEndian.Uint32(h[:4])
}
func (s ecdsaSigner) Sign(msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, s.key, h[:])
}

func TestNoteVerifierECDSA(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: checkpointText}, ecdsaSigner{"example.com/log", key})
	if err != nil {
		t.Fatal(err)
	}
	openWith(t, "example.com/log", &key.PublicKey, signed, true)

	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	openWith(t, "example.com/log", &other.PublicKey, signed, false)
	tampered := bytes.Replace(signed, []byte("\n3\n"), []byte("\n4\n"), 1)
	openWith(t, "example.com/log", &key.PublicKey, tampered, false)
}

func openWith(t *testing.T, origin string, pub any, signed []byte, wantOK bool) {
	t.Helper()
	v, err := NoteVerifier(origin, pub)
	if err != nil {
		t.Fatal(err)
	}
	_, err = note.Open(signed, note.VerifierList(v))
	if gotOK := err == nil; gotOK != wantOK {
		t.Errorf("note.Open with %T for %q: err = %v, want ok=%v", pub, origin, err, wantOK)
	}
}

// fakeTB records how Require ends a test instead of ending it.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }
func (f *fakeTB) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...) }

func TestRequire(t *testing.T) {
	const missing = "buildguard-no-such-tool"
	if _, err := Lookup(missing); !errors.Is(err, ErrToolNotFound) {
		t.Errorf("Lookup(%q) err = %v, want ErrToolNotFound", missing, err)
	}

	t.Setenv("CI", "")
	var local fakeTB
	Require(&local, missing)
	if local.fatal != "" || !strings.Contains(local.skip, missing+" not found: install it") {
		t.Errorf("outside CI: fatal %q, skip %q; want a skip", local.fatal, local.skip)
	}

	t.Setenv("CI", "true")
	var ci fakeTB
	Require(&ci, missing)
	if ci.skip != "" || !strings.Contains(ci.fatal, missing+" not found") {
		t.Errorf("in CI: fatal %q, skip %q; want a failure", ci.fatal, ci.skip)
	}

	if p := Require(t, "sh"); !strings.HasPrefix(p, "/") {
		t.Errorf("Require(sh) = %q, want an absolute path", p)
	}
}
