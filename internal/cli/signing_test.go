package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/internal/exitcode"
)

// signingFiles writes an unencrypted PKCS#8 key, a signing config naming
// a Rekor v2 and a Fulcio CA, and one naming only a Rekor v3.
func signingFiles(t *testing.T) (key, sc, v3 string) {
	t.Helper()
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	key = filepath.Join(dir, "signing.key")
	sc = filepath.Join(dir, "signing_config.json")
	v3 = filepath.Join(dir, "v3.json")
	for p, data := range map[string]string{
		key: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		sc: `{"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
  "caUrls": [{"url": "https://fulcio.example", "majorApiVersion": 1, "validFor": {"start": "2024-01-01T00:00:00Z"}}],
  "rekorTlogUrls": [{"url": "https://rekor.example", "majorApiVersion": 2, "validFor": {"start": "2024-01-01T00:00:00Z"}, "operator": "e2e"}],
  "rekorTlogConfig": {"selector": "ANY"}}`,
		v3: `{"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
  "rekorTlogUrls": [{"url": "https://rekor.example", "majorApiVersion": 3, "validFor": {"start": "2024-01-01T00:00:00Z"}}]}`,
	} {
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return key, sc, v3
}

// TestSigningOptions: the flags replace the signing section's fields one
// by one; the old way (--signing-key alone) signs unlogged; a Fulcio CA in
// the config is said to be unused; each unusable combination is a usage
// error (exit 2) that says what to give.
func TestSigningOptions(t *testing.T) {
	key, sc, v3 := signingFiles(t)
	section := config.Signing{Key: config.Path{Text: "k", Resolved: key}, Config: config.Path{Text: "c", Resolved: sc}}
	for _, tc := range []struct {
		name    string
		section config.Signing
		flags   map[string]string
		logs    int // -1: no signer
		warn    string
		err     string
	}{
		{"nothing", config.Signing{}, nil, -1, "", ""},
		{"the old way: --signing-key alone", config.Signing{}, map[string]string{"signing-key": key}, 0, "", ""},
		{"the section", section, nil, 1, "certificate authority (Fulcio) https://fulcio.example not used", ""},
		{"--signing-config replaces signing.config", config.Signing{Key: section.Key, Config: config.Path{Text: "x", Resolved: "/nonexistent"}}, map[string]string{"signing-config": sc}, 1, "Fulcio", ""},
		{"--signing-key replaces signing.key", config.Signing{Key: config.Path{Text: "x", Resolved: "/nonexistent"}}, map[string]string{"signing-key": key}, 0, "", ""},
		{"an empty --signing-config drops signing.config", section, map[string]string{"signing-config": ""}, 0, "", ""},
		{"a config without a key", config.Signing{}, map[string]string{"signing-config": sc}, -1, "", "needs a signing key (--signing-key FILE or signing.key)"},
		{"a missing config", section, map[string]string{"signing-config": filepath.Join(t.TempDir(), "nope.json")}, -1, "", "no such file"},
		{"only Rekor v3", section, map[string]string{"signing-config": v3}, -1, "", "no Rekor log of an API version buildguard writes to (v1, v2)"},
		{"a missing key", section, map[string]string{"signing-key": filepath.Join(t.TempDir(), "nope.key")}, -1, "", "signing key: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := SigningOptions{Key: tc.flags["signing-key"], Config: tc.flags["signing-config"]}
			changed := func(f string) bool { _, ok := tc.flags[f]; return ok }
			var warnings []string
			s, err := o.Signer(tc.section, changed, func(m string) { warnings = append(warnings, m) })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || exitcode.Of(err) != exitcode.Usage {
					t.Fatalf("got %v (exit %d), want a usage error with %q", err, exitcode.Of(err), tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.logs < 0 {
				if s != nil {
					t.Fatal("a signer without a key")
				}
				return
			}
			if s == nil || len(s.Logs()) != tc.logs {
				t.Fatalf("signer %v", s)
			}
			if got := strings.Join(warnings, "\n"); (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
				t.Errorf("warnings %q, want %q", got, tc.warn)
			}
		})
	}
}

// TestBuildHelpSigning: build --help documents both signing flags and
// what a signing config changes.
func TestBuildHelpSigning(t *testing.T) {
	out, _, code := run(t, "build", "--help")
	for _, want := range []string{"--signing-config FILE", "--signing-key FILE", "replaces signing.config", "fails the build (exit 3) and nothing is published", `"tlog": "none"`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, help lacks %q", code, want)
		}
	}
}
