//go:build e2e

package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

// TestCompareRebuilders: three "runners" run the real binary's
// `build --attest-only --signing-key`, each with its own key, evidence
// directory and rootfs cache, on a busybox builder in a real registry
// through crun. Nothing is pushed. a and b write byte-identical build
// results, and `compare` finds 2-of-2 agreement on their output. Runner
// c's machine is compromised: its cached builder root is altered, so its
// output differs while its own runs all agree (its local decision is
// pass). Under --threshold 2, a and b outvote it; n-of-n fails and names
// c's digest; --expect c's digest fails.
func TestCompareRebuilders(t *testing.T) {
	harness.Require(t, "docker-registry")
	harness.Require(t, "crun")
	bbPath := harness.Require(t, "busybox")
	harness.RequireRoot(t, "buildguard build needs root for crun")
	reg, err := harness.StartRegistry(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)

	builder := reg.Addr + "/rebuilders/busybox:1"
	dig, err := testimage.PushBusybox(t.Context(), builder, bbPath, []string{"sh", "cat", "mkdir"}, testimage.Entry{Name: "etc/greeting", Body: []byte("greetings from the builder\n")})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	compareWrite(t, filepath.Join(dir, "src", "hello.txt"), "hello\n")
	compareWrite(t, filepath.Join(dir, "buildguard.yaml"), `apiVersion: buildguard/v1
source: src
sourceDateEpoch: "1700000000"
builder:
  image: `+builder+`@`+dig+`
  runtime: crun
  command: ["sh", "-c", "mkdir /out/app && cat hello.txt /etc/greeting > /out/app/copy"]
publish:
  image: `+reg.Addr+`/rebuilders/app:latest
policy:
  waive: [verified]   # no trust material in this test
`)
	env := append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, ".docker"), "XDG_CACHE_HOME="+filepath.Join(dir, ".cache"), "COSIGN_PASSWORD=")
	bg := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bgBin, args...)
		cmd.Dir, cmd.Env = dir, env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out.String(), errb.String(), 0
		case errors.As(err, &ee):
			return out.String(), errb.String(), ee.ExitCode()
		}
		t.Fatalf("buildguard %s: %v", strings.Join(args, " "), err)
		return "", "", -1
	}
	build := func(runner string, signed bool) string {
		t.Helper()
		args := []string{"build", "--attest-only", "--out", "ev-" + runner, "--cache", "cache-" + runner}
		if signed {
			args = append(args, "--signing-key", compareKey(t, dir, runner))
		}
		_, stderr, code := bg(args...)
		if code != 0 {
			t.Fatalf("runner %s: exit %d\n%s", runner, code, stderr)
		}
		if !strings.Contains(stderr, "not pushed (--attest-only)") {
			t.Errorf("runner %s: stderr does not say why nothing was pushed:\n%s", runner, stderr)
		}
		return compareOutputDigest(t, filepath.Join(dir, "ev-"+runner))
	}

	// Runner c's first build, unsigned, fills its cache: the statement is
	// written, no bundle, and the note says compare needs one.
	build("c", false)
	if _, err := os.Stat(filepath.Join(dir, "ev-c", "build-result.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ev-c", "build-result.sigstore.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an unsigned build left a bundle: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "ev-c", "report.json")); err != nil || !bytes.Contains(data, []byte("compare accepts only signed build results")) {
		t.Errorf("report.json does not note the unsigned build result: %v", err)
	}
	// Then c's machine is compromised: its cached builder root is altered.
	greetings, err := filepath.Glob(filepath.Join(dir, "cache-c", "sha256-*", "etc", "greeting"))
	if err != nil || len(greetings) != 1 {
		t.Fatalf("the cached builder root of runner c: %v %v", greetings, err)
	}
	compareWrite(t, greetings[0], "greetings from the attacker\n")

	good := build("a", true)
	if b := build("b", true); b != good {
		t.Fatalf("runners a and b built %s and %s", good, b)
	}
	evil := build("c", true)
	if evil == good {
		t.Fatal("the compromised runner built the same output: the test proves nothing")
	}
	a, err := os.ReadFile(filepath.Join(dir, "ev-a", "build-result.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ev-b", "build-result.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ev-a/build-result.json:\n%s", a)
	if !bytes.Equal(a, b) {
		t.Errorf("two runners' build-result.json differ for the same inputs:\n%s\n%s", a, b)
	}
	if _, err := remote.Head(compareRef(t, reg.Addr+"/rebuilders/app:latest")); err == nil {
		t.Error("--attest-only pushed the output")
	}

	keys := []string{"--key", "a.pub", "--key", "b.pub", "--key", "c.pub"}
	bundle := func(r string) string { return "ev-" + r + "/build-result.sigstore.json" }

	out, stderr, code := bg(append(append([]string{"compare"}, keys...), bundle("a"), bundle("b"))...)
	if code != 0 || strings.TrimSpace(out) != good || !strings.Contains(stderr, "AGREED: 2 distinct signer(s)") {
		t.Fatalf("2-of-2: exit %d, stdout %q\n%s", code, out, stderr)
	}
	all := append(append([]string{}, keys...), bundle("a"), bundle("b"), bundle("c"))
	out, stderr, code = bg(append([]string{"compare", "--threshold", "2", "--expect", good}, all...)...)
	if code != 0 || strings.TrimSpace(out) != good {
		t.Fatalf("2-of-3: exit %d, stdout %q\n%s", code, out, stderr)
	}
	out, stderr, code = bg(append([]string{"compare"}, all...)...)
	if code != 1 || out != "" || !strings.Contains(stderr, bundle("c")+": "+evil) || !strings.Contains(stderr, bundle("a")+": "+good) {
		t.Fatalf("3-of-3 with a compromised runner: exit %d, stdout %q\n%s", code, out, stderr)
	}
	t.Logf("compare, 3-of-3 with a compromised runner:\n%s", stderr)
	if _, stderr, code = bg(append([]string{"compare", "--threshold", "1", "--expect", good}, "--key", "a.pub", bundle("a"), bundle("b"))...); code != 0 || !strings.Contains(stderr, "untrusted-key") {
		t.Errorf("an untrusted runner beside a trusted one: exit %d\n%s", code, stderr)
	}

	// The publishing job: its own guarded build, gated on the rebuilders.
	// Every one of the three must agree by default: c does not, so the
	// decision is fail and nothing is pushed; with 2 of 3 it is pushed.
	gate := []string{"build", "--out", "ev-publish", "--cache", "cache-a", "--rebuilders", "ev-*/build-result.sigstore.json",
		"--rebuilder-key", "a.pub", "--rebuilder-key", "b.pub", "--rebuilder-key", "c.pub"}
	_, stderr, code = bg(gate...)
	if code != 1 || !strings.Contains(stderr, "rebuilders: fewer than 3 independent rebuilder(s) attest the control output "+good) {
		t.Fatalf("publish gated 3-of-3: exit %d\n%s", code, stderr)
	}
	if _, err := remote.Head(compareRef(t, reg.Addr+"/rebuilders/app:latest")); err == nil {
		t.Fatal("a build the rebuilders did not all agree with was pushed")
	}
	out, stderr, code = bg(append(gate, "--rebuilders-threshold", "2")...)
	if code != 0 || !strings.Contains(out, reg.Addr+"/rebuilders/app:latest@sha256:") || !strings.Contains(stderr, "rebuilders: 2 distinct signer(s) attest the control output "+good) {
		t.Fatalf("publish gated 2-of-3: exit %d, stdout %q\n%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "ev-publish", "rebuilders.json")); err != nil {
		t.Error(err)
	}
}

// compareKey writes an unencrypted PKCS#8 signing key DIR/RUNNER.key and
// its public key DIR/RUNNER.pub, and returns the signing key's path.
func compareKey(t *testing.T, dir, runner string) string {
	t.Helper()
	p := filepath.Join(dir, runner+".key")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	compareWrite(t, p, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	compareWrite(t, filepath.Join(dir, runner+".pub"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	return p
}

// compareOutputDigest is the control run's output digest in report.json.
func compareOutputDigest(t *testing.T, ev string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(ev, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Decision string `json:"decision"`
		Runs     []struct {
			OutputDigest string `json:"outputDigest"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &r); err != nil || r.Decision != "pass" || len(r.Runs) == 0 || r.Runs[0].OutputDigest == "" {
		t.Fatalf("%s/report.json: %v\n%s", ev, err, data)
	}
	return r.Runs[0].OutputDigest
}

func compareWrite(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func compareRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
