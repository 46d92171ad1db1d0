package tlog

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"hash"

	"golang.org/x/mod/sumdb/note"
)

// NoteVerifier returns a signed-note verifier for a log's checkpoints, as
// rekor-tiles signs them: Ed25519 per the C2SP signed-note spec, and ECDSA
// with the key ID SHA-256(PKIX DER)[:4] and an ASN.1 signature over the
// curve's default hash of the note text (sigstore's default for the key).
func NoteVerifier(origin string, pub crypto.PublicKey) (note.Verifier, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		vkey, err := note.NewEd25519VerifierKey(origin, k)
		if err != nil {
			return nil, fmt.Errorf("note verifier key for %q: %w", origin, err)
		}
		return note.NewVerifier(vkey)
	case *ecdsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("marshaling log key: %w", err)
		}
		var newHash func() hash.Hash
		switch k.Curve {
		case elliptic.P256():
			newHash = sha256.New
		case elliptic.P384():
			newHash = sha512.New384
		case elliptic.P521():
			newHash = sha512.New
		default:
			return nil, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
		id := sha256.Sum256(der)
		return &ecdsaNoteVerifier{name: origin, hash: binary.BigEndian.Uint32(id[:4]), key: k, newHash: newHash}, nil
	default:
		return nil, fmt.Errorf("unsupported log key type %T", pub)
	}
}

type ecdsaNoteVerifier struct {
	name    string
	hash    uint32
	key     *ecdsa.PublicKey
	newHash func() hash.Hash
}

func (v *ecdsaNoteVerifier) Name() string    { return v.name }
func (v *ecdsaNoteVerifier) KeyHash() uint32 { return v.hash }
func (v *ecdsaNoteVerifier) Verify(msg, sig []byte) bool {
	h := v.newHash()
	h.Write(msg)
	return ecdsa.VerifyASN1(v.key, h.Sum(nil), sig)
}
