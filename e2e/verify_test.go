//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/trust"
	"github.com/buildguard/buildguard/trust/trusttest"
)

// runBG runs the real buildguard binary and returns its output and exit
// code.
func runBG(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bgBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// A fresh cache for each run: no run takes another's results.
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir(), "XDG_CACHE_HOME="+t.TempDir())
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running buildguard: %v", err)
	}
	return out.String(), errb.String(), code
}

// TestVerifyDistributionRegistry verifies, with the real binary, images in
// the real distribution registry (no referrers API: attachments go through
// the sha256-<hex> tag) signed by a virtual Sigstore deployment: keyed and
// keyless bundles, SLSA provenance, and legacy cosign v2 signatures.
func TestVerifyDistributionRegistry(t *testing.T) {
	harness.Require(t, "docker-registry")
	reg, err := harness.StartRegistry(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	sig := trusttest.New(t)
	keyFile := sig.KeyFile(t)
	// push pushes an image and attaches what attach makes for it.
	push := func(repo string, attach func(rp name.Repository, ref string, desc v1.Descriptor, d trust.Digest)) string {
		rp, err := name.NewRepository(reg.Addr + "/" + repo)
		if err != nil {
			t.Fatal(err)
		}
		ref, desc := trusttest.PushImage(t, rp)
		d, err := trust.ParseDigest(desc.Digest.String())
		if err != nil {
			t.Fatal(err)
		}
		if attach != nil {
			attach(rp, ref, desc, d)
		}
		return ref
	}
	keyed := push("e2e/keyed", func(rp name.Repository, ref string, desc v1.Descriptor, d trust.Digest) {
		trusttest.AttachBundle(t, rp, desc, trusttest.JSON(t, sig.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, d))))
		trusttest.AttachBundle(t, rp, desc, trusttest.JSON(t, sig.Keyed(t, trusttest.ProvenanceV1(t, "https://github.com/actions/runner/github-hosted", "https://github.com/org/tool", d))))
	})
	keyless := push("e2e/keyless", func(rp name.Repository, ref string, desc v1.Descriptor, d trust.Digest) {
		trusttest.AttachBundle(t, rp, desc, trusttest.JSON(t, sig.Keyless(t, trusttest.Statement(t, trust.CosignSignPredicate, d))))
	})
	legacy := push("e2e/legacy", func(rp name.Repository, ref string, desc v1.Descriptor, d trust.Digest) {
		trusttest.AttachLegacy(t, rp, desc.Digest, []trusttest.LegacySignature{
			sig.LegacySign(t, trusttest.SimpleSigning(t, ref, d), trusttest.SignOpts{Key: sig.SignKey, Logs: []*trusttest.Log{sig.Log}}),
		})
	})
	forged := push("e2e/forged", func(rp name.Repository, ref string, desc v1.Descriptor, d trust.Digest) {
		// A good signature of another image, attached to this one.
		trusttest.AttachBundle(t, rp, desc, trusttest.JSON(t, sig.Keyed(t, trusttest.Statement(t, trust.CosignSignPredicate, trusttest.RandomDigest(t)))))
	})
	unsigned := push("e2e/unsigned", nil)

	out, errOut, code := runBG(t, "verify", "--trusted-root", sig.RootPath, "--key", keyFile,
		"--certificate-identity", trusttest.Subject, "--certificate-oidc-issuer", trusttest.Issuer,
		"--builder-id", "https://github.com/actions/runner/github-hosted", keyed)
	if code != 0 || !strings.Contains(out, "verified  "+keyed+": signed by key "+sig.Key.ID) || !strings.Contains(out, "built by https://github.com/actions/runner/github-hosted") {
		t.Errorf("keyed with provenance: exit %d\n%s%s", code, out, errOut)
	}

	out, errOut, code = runBG(t, "verify", "--trusted-root", sig.RootPath, "--key", keyFile,
		"--certificate-identity", trusttest.Subject, "--certificate-oidc-issuer", trusttest.Issuer,
		keyless, legacy, forged, unsigned)
	if code != 1 {
		t.Errorf("exit %d, want 1 (two refused)\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"verified  " + keyless + ": signed by " + trusttest.Subject,
		"verified  " + legacy + ": signed by key " + sig.Key.ID,
		"refused   " + forged + "\n  no-signature: none of the 1 bundle(s)",
		"digest-mismatch: statement is about ",
		"refused   " + unsigned + "\n  no-signature: no Sigstore bundle is attached",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if i, j := strings.Index(out, keyless), strings.Index(out, unsigned); i < 0 || j < i {
		t.Errorf("results are not in input order:\n%s", out)
	}
}

// cosignBin finds the real cosign CLI: in CI (CI=true) a missing cosign
// fails the test, elsewhere it skips, with the install command either way.
func cosignBin(t *testing.T) string {
	t.Helper()
	return harness.Require(t, "cosign")
}

// cosign runs the real cosign CLI in dir and fails the test on error.
func cosign(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "DOCKER_CONFIG="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"), "SIGSTORE_NO_CACHE=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cosignSigstore starts a Rekor v2 log for the test in rekorDir and makes
// in dir, with the real cosign CLI at bin, a trusted root
// (trusted_root.json) and a signing config (signing_config.json) naming
// the log, and a cosign key pair without a password (cosign.key,
// cosign.pub). It returns the log.
func cosignSigstore(t *testing.T, bin, rekorDir, dir string) *harness.Rekor {
	t.Helper()
	rekor, err := harness.StartRekor(t.Context(), rekorDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rekor.Stop)
	if err := os.WriteFile(filepath.Join(dir, "rekor.pub"), rekor.PublicKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	start := "start-time=2024-01-01T00:00:00Z"
	cosign(t, bin, dir, "trusted-root", "create", "--rekor=url="+rekor.URL+",public-key=rekor.pub,"+start+",origin="+rekor.Origin, "--out", "trusted_root.json")
	cosign(t, bin, dir, "signing-config", "create", "--rekor=url="+rekor.URL+",api-version=2,"+start+",operator=e2e", "--rekor-config=ANY", "--out", "signing_config.json")
	cosign(t, bin, dir, "generate-key-pair")
	return rekor
}

// TestVerifyCosign signs images with the real cosign v3 CLI, which writes
// its bundle to a real Rekor v2 log on loopback and attaches it in the real
// distribution registry through the referrers tag, and verifies them with
// the real buildguard binary.
func TestVerifyCosign(t *testing.T) {
	bin := cosignBin(t)
	harness.Require(t, "docker-registry")
	harness.Require(t, "posix")
	dir := t.TempDir()
	reg, err := harness.StartRegistry(t.Context(), filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	cosignSigstore(t, bin, filepath.Join(dir, "rekor"), dir)
	root, key := filepath.Join(dir, "trusted_root.json"), filepath.Join(dir, "cosign.pub")

	image := func(repo string) string {
		rp, err := name.NewRepository(reg.Addr + "/" + repo)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := trusttest.PushImage(t, rp)
		return ref
	}
	signed := image("cosign/signed")
	cosign(t, bin, dir, "sign", "--yes", "--allow-http-registry", "--key", "cosign.key", "--signing-config", "signing_config.json", "--trusted-root", "trusted_root.json", signed)
	unsigned := image("cosign/unsigned")
	// SLSA provenance attested by cosign, beside its signature.
	attested := image("cosign/attested")
	cosign(t, bin, dir, "sign", "--yes", "--allow-http-registry", "--key", "cosign.key", "--signing-config", "signing_config.json", "--trusted-root", "trusted_root.json", attested)
	predicate := `{"buildDefinition": {"buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
		"externalParameters": {"workflow": {"repository": "https://github.com/org/tool", "ref": "refs/tags/v1.0.0", "path": ".github/workflows/release.yml"}}},
		"runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}}}`
	if err := os.WriteFile(filepath.Join(dir, "provenance.json"), []byte(predicate), 0o600); err != nil {
		t.Fatal(err)
	}
	cosign(t, bin, dir, "attest", "--yes", "--allow-http-registry", "--key", "cosign.key", "--signing-config", "signing_config.json", "--trusted-root", "trusted_root.json",
		"--type", "slsaprovenance1", "--predicate", "provenance.json", attested)

	// Signed without a transparency log: a signing config with no log.
	cosign(t, bin, dir, "signing-config", "create", "--out", "no_log.json")
	unlogged := image("cosign/unlogged")
	cosign(t, bin, dir, "sign", "--yes", "--allow-http-registry", "--key", "cosign.key", "--signing-config", "no_log.json", unlogged)
	// The legacy format cosign v2 writes: the sha256-<hex>.sig tag.
	legacy := image("cosign/legacy")
	cosign(t, bin, dir, "sign", "--yes", "--allow-http-registry", "--key", "cosign.key", "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false", legacy)

	began := time.Now()
	out, errOut, code := runBG(t, "verify", "--trusted-root", root, "--key", key, signed)
	ours := time.Since(began)
	if code != 0 || !strings.HasPrefix(out, "verified  "+signed+": signed by key sha256:") || !strings.Contains(out, "; logged at index ") {
		t.Fatalf("cosign-signed image: exit %d\n%s%s", code, out, errOut)
	}
	// cosign itself accepts the same image against the same trusted root.
	began = time.Now()
	cosign(t, bin, dir, "verify", "--allow-http-registry", "--key", "cosign.pub", "--trusted-root", "trusted_root.json", signed)
	t.Logf("%s(buildguard verify %v, cosign verify %v)", out, ours.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	out, errOut, code = runBG(t, "verify", "--trusted-root", root, "--key", key, unlogged, legacy)
	if code != 1 || strings.Count(out, "tlog-missing: no transparency-log entry") != 2 {
		t.Errorf("unlogged signatures: exit %d, want 1 with tlog-missing twice\n%s%s", code, out, errOut)
	}
	out, errOut, code = runBG(t, "verify", "--insecure-ignore-tlog", "--key", key, unlogged, legacy)
	if code != 0 || strings.Count(out, "transparency log NOT checked") != 2 {
		t.Errorf("unlogged signatures, log waived: exit %d, want 0\n%s%s", code, out, errOut)
	}
	out, errOut, code = runBG(t, "verify", "--trusted-root", root, "--key", key,
		"--builder-id", "https://github.com/actions/runner/github-hosted", "--source-uri", "github.com/org/tool", attested)
	if code != 0 || !strings.Contains(out, "; built by https://github.com/actions/runner/github-hosted from https://github.com/org/tool") {
		t.Errorf("cosign-attested provenance: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runBG(t, "verify", "--trusted-root", root, "--key", key, "--builder-id", "https://ci.other.example", attested, signed)
	if code != 1 || !strings.Contains(out, "provenance-mismatch") || !strings.Contains(out, "no-provenance") {
		t.Errorf("provenance from another builder: exit %d, want 1\n%s%s", code, out, errOut)
	}
	out, errOut, code = runBG(t, "verify", "--trusted-root", root, "--key", key, unsigned)
	if code != 1 || !strings.Contains(out, "no-signature") {
		t.Errorf("unsigned image: exit %d, want 1\n%s%s", code, out, errOut)
	}
	// Another key pair: cosign's signature is not by it.
	other := t.TempDir()
	cosign(t, bin, other, "generate-key-pair")
	out, errOut, code = runBG(t, "verify", "--trusted-root", root, "--key", filepath.Join(other, "cosign.pub"), signed)
	if code != 1 || !strings.Contains(out, "untrusted-key") {
		t.Errorf("other key: exit %d, want 1 with untrusted-key\n%s%s", code, out, errOut)
	}
}
