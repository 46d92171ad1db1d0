package trust_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// TestNewRefuses proves the zero value trusts nothing and contradictory
// policies fail at construction, as usage errors.
func TestNewRefuses(t *testing.T) {
	f := trusttest.New(t)
	noLogs, err := root.NewTrustedRoot(root.TrustedRootMediaType01, f.VS.FulcioCertificateAuthorities(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := trust.Identity{Issuer: trusttest.Issuer, Subject: trusttest.Subject}
	tests := []struct {
		name string
		p    trust.Policy
		want string
	}{
		{"zero value", trust.Policy{}, "trusts nothing"},
		{"root only", trust.Policy{TrustedRoot: f.Root}, "trusts nothing"},
		{"identity without a root", trust.Policy{Identities: []trust.Identity{id}, InsecureIgnoreTlog: true}, "need a trusted root"},
		{"key without a root for the log", trust.Policy{Keys: []trust.Key{f.Key}}, "needs a trusted root"},
		{"root without logs", trust.Policy{TrustedRoot: noLogs, Keys: []trust.Key{f.Key}}, "names no transparency log"},
		{"threshold and ignored log", trust.Policy{Keys: []trust.Key{f.Key}, InsecureIgnoreTlog: true, TlogThreshold: 2}, "contradicts"},
		{"negative threshold", trust.Policy{TrustedRoot: f.Root, Keys: []trust.Key{f.Key}, TlogThreshold: -1}, "negative"},
		{"issuer and issuer regexp", trust.Policy{TrustedRoot: f.Root, Identities: []trust.Identity{{Issuer: trusttest.Issuer, IssuerRegExp: ".*", Subject: trusttest.Subject}}}, "exactly one of issuer"},
		{"no subject", trust.Policy{TrustedRoot: f.Root, Identities: []trust.Identity{{Issuer: trusttest.Issuer}}}, "exactly one of subject"},
		{"bad regexp", trust.Policy{TrustedRoot: f.Root, Identities: []trust.Identity{{Issuer: trusttest.Issuer, SubjectRegExp: "("}}}, "missing closing )"},
		{"key without key material", trust.Policy{TrustedRoot: f.Root, Keys: []trust.Key{{ID: "sha256:00"}}}, "no public key"},
		{"negative limit", trust.Policy{TrustedRoot: f.Root, Keys: []trust.Key{f.Key}, Limits: trust.Limits{MaxBundleBytes: -1}}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := trust.New(tt.p)
			var perr *trust.PolicyError
			if !errors.As(err, &perr) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a policy error containing %q", err, tt.want)
			}
			if exitcode.Of(err) != exitcode.Usage {
				t.Errorf("exit code %d, want %d", exitcode.Of(err), exitcode.Usage)
			}
		})
	}
	// And the smallest useful policies are accepted.
	for _, p := range []trust.Policy{
		{TrustedRoot: f.Root, Keys: []trust.Key{f.Key}},
		{TrustedRoot: f.Root, Identities: []trust.Identity{id}},
		{Keys: []trust.Key{f.Key}, InsecureIgnoreTlog: true},
	} {
		if _, err := trust.New(p); err != nil {
			t.Errorf("New(%+v): %v", p, err)
		}
	}
}

func TestKeys(t *testing.T) {
	_, k1 := trusttest.NewKey(t)
	_, k2 := trusttest.NewKey(t)
	var pemData []byte
	for _, k := range []trust.Key{k1, k2} {
		der, err := x509.MarshalPKIXPublicKey(k.Public)
		if err != nil {
			t.Fatal(err)
		}
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	path := filepath.Join(t.TempDir(), "keys.pub")
	if err := os.WriteFile(path, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := trust.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != k1.ID || keys[1].ID != k2.ID || !strings.HasPrefix(k1.ID, "sha256:") || len(k1.ID) != 71 {
		t.Errorf("keys = %v, want %s and %s", keys, k1.ID, k2.ID)
	}
	for _, bad := range []string{"", "not pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"} {
		if _, err := trust.ParsePublicKeys([]byte(bad)); err == nil {
			t.Errorf("ParsePublicKeys(%q) succeeded", bad)
		}
	}
}

func TestParseDigest(t *testing.T) {
	good := "sha256:" + strings.Repeat("ab", 32)
	if d, err := trust.ParseDigest(good); err != nil || d.String() != good {
		t.Errorf("ParseDigest(%q) = %v, %v", good, d, err)
	}
	for _, bad := range []string{"", "sha256", "sha256:", "md5:" + strings.Repeat("a", 32), "sha256:" + strings.Repeat("AB", 32), "sha256:" + strings.Repeat("ab", 31), "sha512:" + strings.Repeat("ab", 32), "sha256:" + strings.Repeat("zz", 32)} {
		_, err := trust.ParseDigest(bad)
		if err == nil || exitcode.Of(err) != exitcode.Usage {
			t.Errorf("ParseDigest(%q) = %v, want a usage error", bad, err)
		}
	}
}
