package attest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/rekor-tiles/v2/pkg/note"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

var scNow = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)

// signingConfig is a signing config as `cosign signing-config create`
// writes it, with the Rekor logs given as "URL vN [start]" and extra
// top-level members.
func signingConfig(t *testing.T, selector string, logs []map[string]any, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{"mediaType": attest.SigningConfigMediaType, "rekorTlogUrls": logs}
	if selector != "" {
		m["rekorTlogConfig"] = map[string]any{"selector": selector}
	}
	for k, v := range extra {
		m[k] = v
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func rekorService(url string, version int, start string) map[string]any {
	return map[string]any{"url": url, "majorApiVersion": version, "validFor": map[string]any{"start": start}, "operator": url}
}

// TestParseSigningConfig: the Rekor logs are selected by API version,
// validity and the config's selector, the same every time; the Fulcio CA
// and TSA a config names are listed as ignored.
func TestParseSigningConfig(t *testing.T) {
	old, newer := "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"
	for _, tc := range []struct {
		name     string
		selector string
		logs     []map[string]any
		want     []attest.Log
	}{
		{"v2 preferred over v1", "ANY", []map[string]any{rekorService("https://v1.example", 1, old), rekorService("https://v2.example", 2, old)},
			[]attest.Log{{URL: "https://v2.example", APIVersion: 2}}},
		{"only v1", "ANY", []map[string]any{rekorService("https://v1.example", 1, old)},
			[]attest.Log{{URL: "https://v1.example", APIVersion: 1}}},
		{"ANY is the newest", "ANY", []map[string]any{rekorService("https://a.example", 2, old), rekorService("https://b.example", 2, newer)},
			[]attest.Log{{URL: "https://b.example", APIVersion: 2}}},
		{"no selector is ANY", "", []map[string]any{rekorService("https://a.example", 2, old), rekorService("https://b.example", 2, newer)},
			[]attest.Log{{URL: "https://b.example", APIVersion: 2}}},
		{"ALL", "ALL", []map[string]any{rekorService("https://a.example", 2, old), rekorService("https://b.example", 2, newer)},
			[]attest.Log{{URL: "https://b.example", APIVersion: 2}, {URL: "https://a.example", APIVersion: 2}}},
		{"not yet valid is skipped", "ANY", []map[string]any{rekorService("https://a.example", 2, old), rekorService("https://future.example", 2, "2030-01-01T00:00:00Z")},
			[]attest.Log{{URL: "https://a.example", APIVersion: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]any{
				"caUrls":  []any{map[string]any{"url": "https://fulcio.example", "majorApiVersion": 1, "validFor": map[string]any{"start": old}}},
				"tsaUrls": []any{map[string]any{"url": "https://tsa.example/api/v1/timestamp", "majorApiVersion": 1, "validFor": map[string]any{"start": old}}},
			}
			sc, err := attest.ParseSigningConfig(signingConfig(t, tc.selector, tc.logs, extra), scNow)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(sc.Logs)
			want, _ := json.Marshal(tc.want)
			if string(got) != string(want) {
				t.Errorf("logs %s, want %s", got, want)
			}
			if len(sc.Ignored) != 2 || !strings.Contains(sc.Ignored[0], "Fulcio") || !strings.Contains(sc.Ignored[1], "timestamp authority https://tsa.example") {
				t.Errorf("ignored: %q", sc.Ignored)
			}
		})
	}
}

// TestSigningConfigErrors: each unusable signing config is refused with
// a message that says what is wrong and what is wanted, as
// ErrSigningConfig.
func TestSigningConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := "2024-01-01T00:00:00Z"
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing file", filepath.Join(dir, "nope.json"), "no such file"},
		{"not JSON", write("x.json", []byte("rekor: x")), "not a JSON signing config"},
		{"wrong media type", write("old.json", []byte(`{"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.1+json"}`)),
			`media type "application/vnd.dev.sigstore.signingconfig.v0.1+json": want "application/vnd.dev.sigstore.signingconfig.v0.2+json"`},
		{"a trusted root", write("root.json", []byte(`{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": []}`)),
			"is a trusted root (what --trusted-root takes), not a signing config"},
		{"unknown member", write("typo.json", signingConfig(t, "ANY", []map[string]any{rekorService("https://a.example", 2, old)}, map[string]any{"rekorUrls": 1})),
			"parsing: "},
		{"no Rekor URL", write("none.json", signingConfig(t, "ANY", nil, nil)), "names no Rekor log (rekorTlogUrls)"},
		{"only unsupported versions", write("v3.json", signingConfig(t, "ANY", []map[string]any{rekorService("https://a.example", 3, old)}, nil)),
			"no Rekor log of an API version buildguard writes to (v1, v2) is valid at 2026-12-06T00:00:00Z; it names https://a.example (API v3)"},
		{"not a URL", write("url.json", signingConfig(t, "ANY", []map[string]any{rekorService("file:///tmp/log", 2, old)}, nil)), `rekorTlogUrls: "file:///tmp/log" is not an http(s) URL`},
		{"EXACT more than named", write("exact.json", []byte(strings.Replace(string(signingConfig(t, "EXACT", []map[string]any{rekorService("https://a.example", 2, old)}, nil)), `"selector":"EXACT"`, `"selector":"EXACT","count":2`, 1))),
			"asks for EXACT 2 logs; 1 usable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := attest.LoadSigningConfig(tc.path, scNow)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, attest.ErrSigningConfig) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("the error does not name the file: %v", err)
			}
		})
	}
}

// TestWithLogsRefusesEd25519OnRekorV2: Rekor v2 takes prehashed
// signatures only, so an Ed25519 key is refused before anything is
// signed; with a Rekor v1 it is accepted.
func TestWithLogsRefusesEd25519OnRekorV2(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	s, err := attest.NewSigner(ed)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.WithLogs(&attest.SigningConfig{Path: "sc.json", Logs: []attest.Log{{URL: "https://a.example", APIVersion: 2}}})
	if err == nil || !strings.Contains(err.Error(), "an Ed25519 key cannot be logged in the Rekor v2 log https://a.example") {
		t.Errorf("got %v", err)
	}
	if _, err := s.WithLogs(&attest.SigningConfig{Logs: []attest.Log{{URL: "https://a.example", APIVersion: 1}}}); err != nil {
		t.Errorf("v1: %v", err)
	}
}

// TestSignUnloggedFailsClosed: a log that is down or refuses the entry
// gives a *LogError naming the log, and no bundle.
func TestSignUnloggedFailsClosed(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "entry refused", http.StatusBadRequest)
	}))
	t.Cleanup(refusing.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := attest.NewSigner(ec)
	if err != nil {
		t.Fatal(err)
	}
	prov, _ := statements(t, sampleBuild(), true)
	for _, l := range []attest.Log{{URL: refusing.URL, APIVersion: 2}, {URL: down.URL, APIVersion: 2}, {URL: down.URL, APIVersion: 1}} {
		logged, err := s.WithLogs(&attest.SigningConfig{Logs: []attest.Log{l}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := attest.Sign(t.Context(), logged, prov)
		var le *attest.LogError
		if !errors.As(err, &le) || le.Log != l || b != nil {
			t.Fatalf("%+v: got %v, a bundle of %d bytes", l, err, len(b))
		}
		if !strings.Contains(err.Error(), "logging the signature in the Rekor v") || !strings.Contains(err.Error(), l.URL) || !strings.Contains(err.Error(), "is it up") {
			t.Errorf("%+v: %v", l, err)
		}
	}
}

// TestSignLoggedInRekorV2: with a signing config naming a real Rekor v2
// (rekor-tiles, POSIX storage), the bundle carries the log entry with its
// inclusion proof and verifies with the transparency log required, given
// a trusted root that holds the log's key; without the config it carries
// none and is refused unless the log is waived.
func TestSignLoggedInRekorV2(t *testing.T) {
	harness.Require(t, "posix")
	rekor, err := harness.StartRekor(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rekor.Stop)
	sc, err := attest.ParseSigningConfig(signingConfig(t, "ANY", []map[string]any{rekorService(rekor.URL, 2, "2024-01-01T00:00:00Z")}, nil), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := attest.NewSigner(ec)
	if err != nil {
		t.Fatal(err)
	}
	logged, err := s.WithLogs(sc)
	if err != nil {
		t.Fatal(err)
	}
	if got := logged.Logs(); len(got) != 1 || got[0].URL != rekor.URL || len(s.Logs()) != 0 {
		t.Fatalf("logs %+v, unlogged signer's %+v", got, s.Logs())
	}
	prov, _ := statements(t, sampleBuild(), true)
	b, err := attest.Sign(t.Context(), logged, prov)
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		VerificationMaterial struct {
			TlogEntries []struct {
				InclusionProof struct {
					Checkpoint struct{ Envelope string }
				}
				KindVersion struct{ Kind, Version string }
			}
		}
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	if e := bundle.VerificationMaterial.TlogEntries; len(e) != 1 || e[0].InclusionProof.Checkpoint.Envelope == "" || e[0].KindVersion.Version != "0.0.2" {
		t.Fatalf("tlog entries: %+v", e)
	}

	_, id, err := note.KeyHash(rekor.Origin, rekor.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, nil, nil, nil, map[string]*root.TransparencyLog{
		hex.EncodeToString(id): {BaseURL: rekor.URL, ID: id, HashFunc: crypto.SHA256, PublicKey: rekor.PublicKey, SignatureHashFunc: crypto.SHA256, ValidityPeriodStart: time.Now().Add(-time.Hour)},
	})
	if err != nil {
		t.Fatal(err)
	}
	key, err := trust.NewKey(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	v := trusttest.Verifier(t, trust.Policy{Keys: []trust.Key{key}, TrustedRoot: tr})
	if c, err := v.VerifyBundle(b, "sha256:"+hexB); err != nil || !c.Verified || len(c.LogEntries) != 1 {
		t.Fatalf("the logged bundle does not verify with the log required: %v %+v", err, c.Refusal)
	}
	// A verifier that waives the log (buildguard compare's, for build
	// results) accepts a logged bundle too.
	waived := trusttest.Verifier(t, trust.Policy{Keys: []trust.Key{key}, InsecureIgnoreTlog: true})
	if c, err := waived.VerifyBundle(b, "sha256:"+hexB); err != nil || !c.Verified {
		t.Fatalf("the logged bundle does not verify with the log waived: %v %+v", err, c.Refusal)
	}
	unlogged, err := attest.Sign(t.Context(), s, prov)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := v.VerifyBundle(unlogged, "sha256:"+hexB); c.Verified {
		t.Error("a bundle without a log entry verified with the log required")
	}
}

// TestSignAll: the bundles are in the statements' order (each verifies
// for its own statement's subject only), and a log that is down fails the
// first statement, by index.
func TestSignAll(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := attest.NewSigner(ec)
	if err != nil {
		t.Fatal(err)
	}
	prov, vsa := statements(t, sampleBuild(), true)
	bundles, err := attest.SignAll(t.Context(), s, prov, vsa)
	if err != nil || len(bundles) != 2 {
		t.Fatalf("%v, %d bundles", err, len(bundles))
	}
	for i, st := range [][]byte{prov, vsa} {
		var b struct{ DsseEnvelope struct{ Payload []byte } }
		if err := json.Unmarshal(bundles[i], &b); err != nil || string(b.DsseEnvelope.Payload) != string(st) {
			t.Errorf("bundle %d is not of statement %d: %v", i, i, err)
		}
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	logged, err := s.WithLogs(&attest.SigningConfig{Logs: []attest.Log{{URL: down.URL, APIVersion: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = attest.SignAll(t.Context(), logged, prov, vsa)
	var se *attest.SignAllError
	var le *attest.LogError
	if !errors.As(err, &se) || se.Index != 0 || !errors.As(err, &le) {
		t.Errorf("got %v", err)
	}
}
