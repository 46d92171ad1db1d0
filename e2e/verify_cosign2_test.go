//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// cosign2Builder is the builder the provenance of these tests names.
const cosign2Builder = "https://github.com/actions/runner/github-hosted"

// cosign2Bin finds the real cosign v2 CLI, installed as cosign2: in CI
// (CI=true) a missing cosign2 fails the test, elsewhere it skips, with the
// install command either way.
func cosign2Bin(t *testing.T) string {
	t.Helper()
	return harness.Require(t, "cosign2")
}

// cosign2Push pushes a random image to repo in reg and returns its
// reference by digest.
func cosign2Push(t *testing.T, reg *harness.Registry, repo string) string {
	t.Helper()
	rp, err := name.NewRepository(reg.Addr + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := trusttest.PushImage(t, rp)
	return ref
}

// cosign2Sign signs ref with the key pair in dir and attests SLSA v1
// provenance for it, both in the format cosign v2 writes by default (the
// sha256-<hex>.sig and sha256-<hex>.att tags), without a transparency log:
// cosign v2 logs legacy signatures only to a Rekor v1, which needs Trillian
// and MySQL, and logs to a Rekor v2 only in the new bundle format.
func cosign2Sign(t *testing.T, bin, dir, ref string) {
	t.Helper()
	cosign(t, bin, dir, "sign", "--yes", "--allow-http-registry", "--key", "cosign.key", "--tlog-upload=false", ref)
	cosign(t, bin, dir, "attest", "--yes", "--allow-http-registry", "--key", "cosign.key", "--tlog-upload=false",
		"--type", "slsaprovenance1", "--predicate", "provenance.json", ref)
}

// cosign2CopyTag copies the manifest of tag sha256-<hex of from><suffix> to
// the same tag of the image to, as an attacker who can push to the
// repository could.
func cosign2CopyTag(t *testing.T, from, to, suffix string) {
	t.Helper()
	tagOf := func(ref string) name.Tag {
		d, err := name.NewDigest(ref)
		if err != nil {
			t.Fatal(err)
		}
		return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + suffix)
	}
	desc, err := remote.Get(tagOf(from), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(tagOf(to), desc, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyCosign2 signs and attests images with the real cosign v2 CLI
// (the sha256-<hex>.sig and .att tags in the real distribution registry)
// and verifies them with the real buildguard binary: the signature and the
// SLSA provenance are accepted, and another key, another builder and a
// signature moved from another image are refused.
func TestVerifyCosign2(t *testing.T) {
	bin := cosign2Bin(t)
	harness.Require(t, "docker-registry")
	dir := t.TempDir()
	reg, err := harness.StartRegistry(t.Context(), filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	cosign(t, bin, dir, "generate-key-pair")
	key := filepath.Join(dir, "cosign.pub")
	predicate := `{"buildDefinition": {"buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
		"externalParameters": {"workflow": {"repository": "https://github.com/org/tool", "ref": "refs/tags/v1.0.0", "path": ".github/workflows/release.yml"}}},
		"runDetails": {"builder": {"id": "` + cosign2Builder + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "provenance.json"), []byte(predicate), 0o600); err != nil {
		t.Fatal(err)
	}

	signed := cosign2Push(t, reg, "cosign2/signed")
	began := time.Now()
	cosign2Sign(t, bin, dir, signed)
	t.Logf("cosign2 sign and attest: %v", time.Since(began).Round(time.Millisecond))
	// A good signature and attestation of another image, moved to this one.
	moved := cosign2Push(t, reg, "cosign2/signed")
	cosign2CopyTag(t, signed, moved, ".sig")
	cosign2CopyTag(t, signed, moved, ".att")

	began = time.Now()
	out, errOut, code := runBG(t, "verify", "--insecure-ignore-tlog", "--key", key,
		"--builder-id", cosign2Builder, "--source-uri", "github.com/org/tool", signed)
	ours := time.Since(began)
	if code != 0 || !strings.HasPrefix(out, "verified  "+signed+": signed by key sha256:") ||
		!strings.Contains(out, "built by "+cosign2Builder+" from https://github.com/org/tool") ||
		!strings.Contains(out, "transparency log NOT checked") {
		t.Fatalf("cosign2-signed image: exit %d\n%s%s", code, out, errOut)
	}
	// cosign v2 itself accepts the same signature and attestation.
	began = time.Now()
	cosign(t, bin, dir, "verify", "--allow-http-registry", "--insecure-ignore-tlog", "--key", "cosign.pub", signed)
	cosign(t, bin, dir, "verify-attestation", "--allow-http-registry", "--insecure-ignore-tlog", "--key", "cosign.pub", "--type", "slsaprovenance1", signed)
	t.Logf("%s(buildguard verify %v; cosign2 verify and verify-attestation %v)", out, ours.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	// The log is not waived silently: against a trusted root (any will do)
	// the missing log entries are a refusal.
	out, errOut, code = runBG(t, "verify", "--trusted-root", trusttest.New(t).RootPath, "--key", key, signed)
	if code != 1 || !strings.Contains(out, "tlog-missing") {
		t.Errorf("unlogged, log required: exit %d, want 1 with tlog-missing\n%s%s", code, out, errOut)
	}

	out, errOut, code = runBG(t, "verify", "--insecure-ignore-tlog", "--key", key, "--builder-id", "https://ci.other.example", signed)
	if code != 1 || !strings.Contains(out, "provenance-mismatch: verified provenance says builder \""+cosign2Builder+"\"") {
		t.Errorf("another builder: exit %d, want 1 with provenance-mismatch\n%s%s", code, out, errOut)
	}

	other := t.TempDir()
	cosign(t, bin, other, "generate-key-pair")
	out, errOut, code = runBG(t, "verify", "--insecure-ignore-tlog", "--key", filepath.Join(other, "cosign.pub"), "--builder-id", cosign2Builder, signed)
	if code != 1 || strings.Count(out, "untrusted-key") != 2 || !strings.Contains(out, "no-provenance") {
		t.Errorf("another key: exit %d, want 1 with untrusted-key for the signature and the attestation\n%s%s", code, out, errOut)
	}

	out, errOut, code = runBG(t, "verify", "--insecure-ignore-tlog", "--key", key, "--builder-id", cosign2Builder, moved)
	if code != 1 || !strings.Contains(out, "digest-mismatch: signs "+signed[strings.LastIndexByte(signed, '@')+1:]) ||
		!strings.Contains(out, "digest-mismatch: statement is about ") || !strings.Contains(out, "no-signature") {
		t.Errorf("signature of another image: exit %d, want 1 with digest-mismatch\n%s%s", code, out, errOut)
	}
}
