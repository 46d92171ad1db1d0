package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/compare"
	"github.com/buildguard/buildguard/internal/exitcode"
)

const (
	compareGood = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	compareEvil = "sha256:6666666666666666666666666666666666666666666666666666666666666666"
)

// compareRunner writes a runner's public key to DIR/NAME.pub and returns
// a function that writes a signed build result of an output to
// DIR/NAME/build-result.sigstore.json, returning its path.
func compareRunner(t *testing.T, dir, name string) (pub string, attestFn func(output string) string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub = filepath.Join(dir, name+".pub")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := attest.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return pub, func(output string) string {
		st, err := attest.BuildResultStatement(attest.BuildResult{
			Recipe:       attest.Recipe{SourceDigest: compareGood, Builder: compareGood, Command: []string{"make"}, Workdir: "/src", SourceDateEpoch: 1},
			OutputDigest: output, Decision: "pass", Reproducible: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		data, err := attest.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		b, err := attest.Sign(t.Context(), s, data)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name, "build-result.sigstore.json")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// TestCompareCLI: agreement prints the digest on standard output and the
// signers on standard error (exit 0); a dissenting runner is outvoted at
// --threshold 2 but fails n-of-n (exit 1), with each runner's digest
// listed; --expect of another digest fails; --json is the result,
// byte-identical on a second run.
func TestCompareCLI(t *testing.T) {
	dir := t.TempDir()
	aPub, a := compareRunner(t, dir, "a")
	bPub, b := compareRunner(t, dir, "b")
	cPub, c := compareRunner(t, dir, "c")
	aAtt, bAtt, cAtt := a(compareGood), b(compareGood), c(compareEvil)
	keys := []string{"--key", aPub, "--key", bPub, "--key", cPub}

	out, stderr, code := run(t, append(append([]string{"compare"}, keys...), aAtt, bAtt)...)
	if code != 0 || out != compareGood+"\n" {
		t.Fatalf("2-of-2: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
	for _, want := range []string{"AGREED: 2 distinct signer(s)", "agreed: " + aPub, "agreed: " + bPub} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	all := append(append([]string{"compare"}, keys...), aAtt, bAtt, cAtt)
	out, stderr, code = run(t, all...)
	if code != exitcode.Fail || out != "" {
		t.Fatalf("3-of-3 with a dissent: exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"DISAGREED", aAtt + ": " + compareGood, cAtt + ": " + compareEvil} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	out, stderr, code = run(t, append([]string{"compare", "--threshold", "2"}, all[1:]...)...)
	if code != 0 || out != compareGood+"\n" {
		t.Fatalf("2-of-3: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
	if _, _, code = run(t, append([]string{"compare", "--threshold", "2", "--expect", compareEvil}, all[1:]...)...); code != exitcode.Fail {
		t.Errorf("2-of-3 expecting the dissent's digest: exit %d", code)
	}

	// The same signer twice does not make two.
	if _, stderr, code = run(t, append(append([]string{"compare"}, keys...), aAtt, a(compareGood))...); code != exitcode.Fail || !strings.Contains(stderr, "duplicate-signer") {
		t.Errorf("one signer twice: exit %d\n%s", code, stderr)
	}
	// A runner whose key is not given is refused as untrusted.
	if _, stderr, code = run(t, "compare", "--key", aPub, aAtt, bAtt); code != exitcode.Fail || !strings.Contains(stderr, "untrusted-key") {
		t.Errorf("an untrusted runner: exit %d\n%s", code, stderr)
	}

	j1, _, code := run(t, append([]string{"compare", "--json", "--threshold", "2"}, all[1:]...)...)
	j2, _, _ := run(t, append([]string{"compare", "--json", "--threshold", "2"}, all[1:]...)...)
	var res compare.Result
	if code != 0 || json.Unmarshal([]byte(j1), &res) != nil || !res.Agreed || res.OutputDigest != compareGood || len(res.Runners) != 3 {
		t.Fatalf("--json: exit %d\n%s", code, j1)
	}
	if j1 != j2 {
		t.Errorf("--json is not byte-stable:\n%s\n%s", j1, j2)
	}
}

// TestCompareUsage: what cannot be attempted is exit 2, with a message
// that says what to give.
func TestCompareUsage(t *testing.T) {
	dir := t.TempDir()
	aPub, a := compareRunner(t, dir, "a")
	att := a(compareGood)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"compare", "--key", aPub}, "no attestation given"},
		{[]string{"compare", att}, "no --key given"},
		{[]string{"compare", "--key", aPub, "--threshold", "2", att}, "want 1 to 1"},
		{[]string{"compare", "--key", aPub, "--expect", "sha256:nope", att}, "expected output"},
		{[]string{"compare", "--key", filepath.Join(dir, "missing.pub"), att}, "missing.pub"},
		{[]string{"compare", "--key", aPub, filepath.Join(dir, "missing.json")}, "missing.json"},
	} {
		_, stderr, code := run(t, tc.args...)
		if code != exitcode.Usage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, want 2 and %q in:\n%s", tc.args, code, tc.want, stderr)
		}
	}
}

// TestBuildRebuildersUsage: the rebuilders gate's flags are checked before
// anything runs (exit 2): a gate without keys, a gate on a rebuilder
// (--attest-only), a threshold without a gate, a pattern that matches no
// file, and a threshold above the attestations found.
func TestBuildRebuildersUsage(t *testing.T) {
	dir := t.TempDir()
	aPub, a := compareRunner(t, dir, "a")
	att := a(compareGood)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--rebuilders", att}, "--rebuilder-key"},
		{[]string{"build", "--attest-only", "--rebuilders", att, "--rebuilder-key", aPub}, "--attest-only never publishes"},
		{[]string{"build", "--rebuilders-threshold", "2"}, "need --rebuilders"},
		{[]string{"build", "--rebuilders", filepath.Join(dir, "nobody", "*.json"), "--rebuilder-key", aPub}, "no such file"},
		{[]string{"build", "--rebuilders", filepath.Join(dir, "*", "build-result.sigstore.json"), "--rebuilder-key", aPub, "--rebuilders-threshold", "2"}, "want 1 to 1"},
	} {
		_, stderr, code := run(t, tc.args...)
		if code != exitcode.Usage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, want 2 and %q in:\n%s", tc.args, code, tc.want, stderr)
		}
	}
}
