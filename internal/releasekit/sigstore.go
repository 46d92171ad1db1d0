package releasekit

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	"github.com/buildguard/buildguard/internal/harness"
)

// Sigstore signs images with a cosign key pair, each signature logged in a
// Rekor v2 log, with the real cosign CLI. Its directory holds the trusted
// root and signing config for the log and the key pair.
type Sigstore struct {
	dir    string
	cosign string
	run    *Runner
}

// NewSigstore makes, in dir, a trusted root and a signing config for the
// Rekor v2 log and a cosign key pair (without a password: run's Env must
// set COSIGN_PASSWORD=), with the cosign at the path cosign. operator
// names the log's operator in the signing config.
func NewSigstore(ctx context.Context, run *Runner, cosign, dir, operator string, rekor *harness.Rekor) (*Sigstore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "rekor.pub"), rekor.PublicKeyPEM, 0o600); err != nil {
		return nil, err
	}
	start := "start-time=2024-01-01T00:00:00Z"
	for _, args := range [][]string{
		{"trusted-root", "create", "--rekor=url=" + rekor.URL + ",public-key=rekor.pub," + start + ",origin=" + rekor.Origin, "--out", "trusted_root.json"},
		{"signing-config", "create", "--rekor=url=" + rekor.URL + ",api-version=2," + start + ",operator=" + operator, "--rekor-config=ANY", "--out", "signing_config.json"},
		{"generate-key-pair"},
	} {
		if _, err := run.Run(ctx, dir, 0, cosign, args...); err != nil {
			return nil, err
		}
	}
	return &Sigstore{dir: dir, cosign: cosign, run: run}, nil
}

// Sign signs refs (each name@digest) with the key pair, logging each
// signature in the log.
func (s *Sigstore) Sign(ctx context.Context, refs ...string) error {
	args := append([]string{"sign", "--yes", "--allow-http-registry", "--key", "cosign.key",
		"--signing-config", "signing_config.json", "--trusted-root", "trusted_root.json"}, refs...)
	_, err := s.run.Run(ctx, s.dir, 0, s.cosign, args...)
	return err
}

// Attest attests ref (name@digest) with predicate, of cosign's
// predicateType (e.g. slsaprovenance1), signed with the key pair and
// logged in the log.
func (s *Sigstore) Attest(ctx context.Context, ref, predicateType string, predicate any) error {
	data, err := json.MarshalIndent(predicate, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, "predicate-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, err = s.run.Run(ctx, s.dir, 0, s.cosign, "attest", "--yes", "--allow-http-registry", "--key", "cosign.key",
		"--signing-config", "signing_config.json", "--trusted-root", "trusted_root.json",
		"--type", predicateType, "--predicate", f.Name(), ref)
	return err
}

// TrustedRoot is the path of the trusted root for the log.
func (s *Sigstore) TrustedRoot() string { return filepath.Join(s.dir, "trusted_root.json") }

// PublicKey is the path of the key pair's public key.
func (s *Sigstore) PublicKey() string { return filepath.Join(s.dir, "cosign.pub") }
