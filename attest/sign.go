package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// maxKeyFile bounds a signing key file.
const maxKeyFile = 64 << 10

// The PEM types of a private key file: cosign's encrypted keys (both
// spellings) and unencrypted PKCS#8.
const (
	pemCosign   = "ENCRYPTED COSIGN PRIVATE KEY"
	pemSigstore = "ENCRYPTED SIGSTORE PRIVATE KEY"
	pemPKCS8    = "PRIVATE KEY"
)

// Signer signs statements with a private key. It implements sigstore-go's
// sign.Keypair.
type Signer struct {
	key  crypto.Signer
	alg  signature.AlgorithmDetails
	hint []byte
	// logs are the Rekor logs every signature is logged in; none: the
	// bundles carry no transparency-log entry.
	logs []Log
}

var _ sign.Keypair = (*Signer)(nil)

// LoadSigner reads a signing key: a cosign key file (encrypted with
// password, as `cosign generate-key-pair` writes it) or an unencrypted
// PKCS#8 PEM, whose password must be empty.
func LoadSigner(path string, password []byte) (*Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if fi.Size() > maxKeyFile {
		return nil, fmt.Errorf("signing key %s: larger than %d bytes", path, maxKeyFile)
	}
	data, err := os.ReadFile(path) // #nosec G304 -- the key file the user named
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	s, err := ParseSigner(data, password)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return s, nil
}

// ParseSigner parses a signing key as LoadSigner reads it.
func ParseSigner(data, password []byte) (*Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM file")
	}
	der := block.Bytes
	switch block.Type {
	case pemCosign, pemSigstore:
		var err error
		if der, err = encrypted.Decrypt(block.Bytes, password); err != nil {
			return nil, fmt.Errorf("decrypting (is COSIGN_PASSWORD right?): %w", err)
		}
	case pemPKCS8:
	default:
		return nil, fmt.Errorf("PEM type %q: want a cosign key or an unencrypted PKCS#8 %q", block.Type, pemPKCS8)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parsing PKCS#8: %w", err)
	}
	return NewSigner(k)
}

// NewSigner returns the Signer of a private key: ECDSA P-256, P-384 or
// P-521, RSA (2048 bits or more) or Ed25519.
func NewSigner(k any) (*Signer, error) {
	var details protocommon.PublicKeyDetails
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			details = protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
		case elliptic.P384():
			details = protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384
		case elliptic.P521():
			details = protocommon.PublicKeyDetails_PKIX_ECDSA_P521_SHA_512
		default:
			return nil, errors.New("unsupported ECDSA curve")
		}
	case *rsa.PrivateKey:
		switch bits := k.N.BitLen(); {
		case bits >= 4096:
			details = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_4096_SHA256
		case bits >= 3072:
			details = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_3072_SHA256
		case bits >= 2048:
			details = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_2048_SHA256
		default:
			return nil, fmt.Errorf("RSA key of %d bits: want 2048 or more", bits)
		}
	case ed25519.PrivateKey:
		details = protocommon.PublicKeyDetails_PKIX_ED25519
	default:
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	alg, err := signature.GetAlgorithmDetails(details)
	if err != nil {
		return nil, err
	}
	cs, _ := k.(crypto.Signer) // every type above is one
	der, err := x509.MarshalPKIXPublicKey(cs.Public())
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return &Signer{key: cs, alg: alg, hint: []byte(base64.StdEncoding.EncodeToString(sum[:]))}, nil
}

// KeyID is "sha256:" and the hex SHA-256 of the public key's PKIX DER
// encoding, as buildguard verify names a key.
func (s *Signer) KeyID() string {
	raw, _ := base64.StdEncoding.DecodeString(string(s.hint))
	return fmt.Sprintf("sha256:%x", raw)
}

// WithLogs returns a Signer that logs every signature it makes in the
// logs of sc. An Ed25519 key cannot be logged in a Rekor v2, which takes
// prehashed signatures only (hashedrekord), so that is refused here.
func (s *Signer) WithLogs(sc *SigningConfig) (*Signer, error) {
	for _, l := range sc.Logs {
		if l.APIVersion == 2 && s.alg.GetKeyType() == signature.ED25519 {
			return nil, fmt.Errorf("%w %s: an Ed25519 key cannot be logged in the Rekor v2 log %s, which takes prehashed signatures only: sign with an ECDSA key (as `cosign generate-key-pair` makes) or RSA", ErrSigningConfig, sc.Path, l.URL)
		}
	}
	c := *s
	c.logs = slices.Clone(sc.Logs)
	return &c, nil
}

// Logs are the Rekor logs every signature is logged in; none means the
// bundles carry no transparency-log entry.
func (s *Signer) Logs() []Log { return slices.Clone(s.logs) }

// LogError is a signature that could not be logged in a transparency log
// (the log is down, or refused the entry). The statement is then not
// signed at all: a signing config promises logged bundles, and an
// unlogged one is never written in its place.
type LogError struct {
	Log Log
	Err error
}

func (e *LogError) Error() string {
	return fmt.Sprintf("logging the signature in the Rekor v%d log %s: %v (the signing config names it: is it up and does it accept entries?)", e.Log.APIVersion, e.Log.URL, e.Err)
}

// Unwrap returns the cause.
func (e *LogError) Unwrap() error { return e.Err }

// GetHashAlgorithm is the hash the signature is made over.
func (s *Signer) GetHashAlgorithm() protocommon.HashAlgorithm { return s.alg.GetProtoHashType() }

// GetSigningAlgorithm is the key's algorithm details.
func (s *Signer) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return s.alg.GetSignatureAlgorithm()
}

// GetHint is the base64 SHA-256 of the public key's PKIX DER encoding.
func (s *Signer) GetHint() []byte { return s.hint }

// GetKeyAlgorithm is ECDSA, RSA or ED25519.
func (s *Signer) GetKeyAlgorithm() string {
	switch s.alg.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.RSA:
		return "RSA"
	case signature.ED25519:
		return "ED25519"
	}
	return ""
}

// GetPublicKey is the public key.
func (s *Signer) GetPublicKey() crypto.PublicKey { return s.key.Public() }

// GetPublicKeyPem is the public key in PEM.
func (s *Signer) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(s.key.Public())
	return string(b), err
}

// SignData signs data, hashing it first unless the algorithm signs the
// message itself (Ed25519); it returns the signature and what was signed.
func (s *Signer) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := s.alg.GetHashType()
	msg := data
	if hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		msg = h.Sum(nil)
	}
	sig, err := s.key.Sign(rand.Reader, msg, hf)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: %w", err)
	}
	return sig, msg, nil
}

// Sign wraps an encoded statement in a DSSE envelope signed by s and
// returns the Sigstore bundle (v0.3, JSON). The bundle carries the public
// key's hint and no certificate; with logs (WithLogs), the entry of each
// log with its inclusion proof, else no transparency-log entry. A
// signature that could not be logged is a *LogError, and no bundle.
func Sign(ctx context.Context, s *Signer, statement []byte) ([]byte, error) {
	var logs []sign.Transparency
	for _, l := range s.logs {
		// A Rekor of its own per bundle: sign.Rekor keeps its client
		// in its options once made.
		logs = append(logs, &loggedIn{log: l, rekor: sign.NewRekor(&sign.RekorOptions{BaseURL: l.URL, Version: l.APIVersion})})
	}
	b, err := sign.Bundle(&sign.DSSEData{Data: statement, PayloadType: PayloadType}, s, sign.BundleOptions{Context: ctx, TransparencyLogs: logs})
	if le := (*LogError)(nil); errors.As(err, &le) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("signing the statement: %w", err)
	}
	data, err := protojson.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encoding the bundle: %w", err)
	}
	return append(data, '\n'), nil
}

// loggedIn is a sign.Transparency that says which log failed.
type loggedIn struct {
	log   Log
	rekor *sign.Rekor
}

func (l *loggedIn) GetTransparencyLogEntry(ctx context.Context, keyPEM []byte, b *protobundle.Bundle) error {
	if err := l.rekor.GetTransparencyLogEntry(ctx, keyPEM, b); err != nil {
		return &LogError{Log: l.log, Err: err}
	}
	return nil
}

// SignAll signs each statement as Sign does, all at once: with logs, each
// signature waits for its entry to be integrated (a Rekor v2 publishes a
// checkpoint about every second), and these waits overlap. The bundles
// are in the statements' order; the error is the first statement's that
// failed, in that order, wrapped with its index.
func SignAll(ctx context.Context, s *Signer, statements ...[]byte) ([][]byte, error) {
	bundles := make([][]byte, len(statements))
	errs := make([]error, len(statements))
	var wg sync.WaitGroup
	for i, st := range statements {
		wg.Go(func() { bundles[i], errs[i] = Sign(ctx, s, st) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, &SignAllError{Index: i, Err: err}
		}
	}
	return bundles, nil
}

// SignAllError is the first statement SignAll could not sign.
type SignAllError struct {
	Index int
	Err   error
}

func (e *SignAllError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *SignAllError) Unwrap() error { return e.Err }
