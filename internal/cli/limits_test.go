package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/pflag"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/guard"
	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/reproduce"
	"github.com/buildguard/buildguard/trust"
)

const limitsHead = "apiVersion: buildguard/v1\nbuilder: {image: golang:1.26, command: [go, build]}\n"

// loadLimits parses a buildguard.yaml with the given limits section lines.
func loadLimits(t *testing.T, lines ...string) *config.Config {
	t.Helper()
	yml := limitsHead
	if len(lines) > 0 {
		yml += "limits:\n  " + strings.Join(lines, "\n  ") + "\n"
	}
	c, err := config.Parse([]byte(yml), "buildguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// parseLimitFlags registers the limit flags of which on a fresh flag set
// and parses args.
func parseLimitFlags(t *testing.T, which LimitSet, args ...string) (*LimitOptions, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &LimitOptions{}
	o.AddFlags(fs, which)
	return o, fs.Parse(args)
}

// TestLimitFlagsHelp: every limit of build and verify has a flag whose help
// names the buildguard.yaml field and the default.
func TestLimitFlagsHelp(t *testing.T) {
	fs := pflag.NewFlagSet("build", pflag.ContinueOnError)
	(&LimitOptions{}).AddFlags(fs, BuildCommandLimits)
	usage := fs.FlagUsages()
	for _, want := range []string{
		"--max-image-bytes SIZE", "(buildguard.yaml: limits.imageBytes) (default 8Gi)",
		"--max-layers N", "(buildguard.yaml: limits.layers) (default 256)",
		"--max-tar-entries N", "(default 1000000)",
		"--max-path-length N", "(default 4096)",
		"--max-path-depth N", "(buildguard.yaml: limits.pathDepth) (default 256)",
		"--max-build-log-bytes SIZE", "(default 16Mi)",
		"--max-output-entries N", "(buildguard.yaml: limits.outputEntries) (default 1000000)",
		"--max-referrers N", "(default 128)",
		"--max-signature-manifest-bytes SIZE", "(default 64Ki)",
		"--max-bundle-bytes SIZE", "(default 4Mi)",
		"--max-bundle-log-entries N", "(default 16)",
		"--max-diff-files N", "(default 50)",
		"--max-diff-lines N", "(default 200)",
		"--max-diff-file-bytes SIZE", "(buildguard.yaml: limits.diffFileBytes) (default 256Mi)",
	} {
		if !strings.Contains(usage, want) {
			t.Errorf("build's limit flags lack %q:\n%s", want, usage)
		}
	}
	if strings.Contains(usage, "sbom") {
		t.Errorf("build registers the SBOM limit, which it does not use:\n%s", usage)
	}
	out, _, code := run(t, "verify", "--help")
	if code != 0 {
		t.Fatalf("verify --help: exit %d", code)
	}
	for _, f := range []string{"--max-referrers N", "--max-signature-manifest-bytes SIZE", "--max-bundle-bytes SIZE", "--max-bundle-log-entries N"} {
		if !strings.Contains(out, f) {
			t.Errorf("verify --help lacks %s", f)
		}
	}
	if strings.Contains(out, "--max-tar-entries") {
		t.Error("verify registers image limits, which it does not use")
	}
}

// TestLimitFlagValues: a flag takes at least 1; sizes take the quantity
// syntax of buildguard.yaml; a bad value is a usage error naming the flag.
func TestLimitFlagValues(t *testing.T) {
	o, err := parseLimitFlags(t, BuildCommandLimits, "--max-image-bytes", "16Gi", "--max-tar-entries", "1", "--max-bundle-bytes", "1.5Mi", "--max-layers=2147483647")
	if err != nil {
		t.Fatal(err)
	}
	got := o.Values()
	if got.ImageBytes != 16<<30 || got.TarEntries != 1 || got.BundleBytes != 3<<19 || got.Layers != 1<<31-1 || got.Referrers != 0 {
		t.Errorf("Values() = %+v", got)
	}
	for _, tc := range []struct{ args, want string }{
		{"--max-tar-entries 0", `invalid argument "0" for "--max-tar-entries" flag: must be at least 1 (the default is 1000000)`},
		{"--max-image-bytes -1Gi", `must be at least 1 (the default is 8Gi)`},
		{"--max-image-bytes 8GB", `want a size such as 512Mi, 8Gi or a number of bytes: units take no B`},
		{"--max-layers 2Ki", `"--max-layers" flag: want a whole number`},
		{"--max-layers 2147483648", `must be at most 2147483647`},
	} {
		if _, err := parseLimitFlags(t, BuildCommandLimits, strings.Fields(tc.args)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	_, stderr, code := run(t, "verify", "--max-referrers", "0", "--key", "k.pub", "--insecure-ignore-tlog", "registry.example/a@sha256:"+strings.Repeat("a", 64))
	if code != exitcode.Usage || !strings.Contains(stderr, `"--max-referrers" flag: must be at least 1`) {
		t.Errorf("verify --max-referrers 0: exit %d, want 2\n%s", code, stderr)
	}
}

// TestLimitFlagReplacesConfig: a flag that is given replaces its field of
// the limits section; the others keep what the file says.
func TestLimitFlagReplacesConfig(t *testing.T) {
	c := loadLimits(t, "tarEntries: 10", "diffLines: 30", "bundleBytes: 1Mi")
	o, err := parseLimitFlags(t, BuildCommandLimits, "--max-tar-entries", "20", "--max-referrers", "5")
	if err != nil {
		t.Fatal(err)
	}
	o.Apply(&c.Limits)
	want := config.InputLimits{TarEntries: 20, DiffLines: 30, BundleBytes: 1 << 20, Referrers: 5}
	if c.Limits != want {
		t.Errorf("after the flags: %+v, want %+v", c.Limits, want)
	}
	// verify registers only the trust flags: the others are not its to set.
	v, err := parseLimitFlags(t, VerifyCommandLimits, "--max-bundle-log-entries", "3")
	if err != nil {
		t.Fatal(err)
	}
	if got := TrustLimitsOf(v.Values()); got != (trust.Limits{MaxLogEntries: 3}) {
		t.Errorf("TrustLimitsOf = %+v", got)
	}
	if _, err := parseLimitFlags(t, VerifyCommandLimits, "--max-tar-entries", "3"); err == nil {
		t.Error("verify accepted --max-tar-entries")
	}
}

// TestLimitSectionReachesEveryPackage: each field of the limits section
// arrives in the field of the package that applies it.
func TestLimitSectionReachesEveryPackage(t *testing.T) {
	c := loadLimits(t, "imageBytes: 1Gi", "layers: 2", "tarEntries: 3", "pathLength: 4", "pathDepth: 5",
		"referrers: 6", "signatureManifestBytes: 7Ki", "bundleBytes: 8Ki", "bundleLogEntries: 9",
		"diffFiles: 10", "diffLines: 11", "diffFileBytes: 12Ki")
	if got, want := guard.BuilderLimits(c.Limits), (builder.Limits{MaxBytes: 1 << 30, MaxLayers: 2, MaxEntries: 3, MaxPathLen: 4, MaxDepth: 5}); got != want {
		t.Errorf("BuilderLimits = %+v, want %+v", got, want)
	}
	if got, want := TrustLimitsOf(c.Limits), (trust.Limits{MaxReferrers: 6, MaxManifestBytes: 7 << 10, MaxBundleBytes: 8 << 10, MaxLogEntries: 9}); got != want {
		t.Errorf("TrustLimitsOf = %+v, want %+v", got, want)
	}
	if got, want := guard.ExplainLimits(c.Limits), (reproduce.Limits{MaxItems: 10, MaxDiffLines: 11, MaxFileBytes: 12 << 10}); got != want {
		t.Errorf("ExplainLimits = %+v, want %+v", got, want)
	}
	// Zero is the default of each package, never "no limit".
	if got := guard.BuilderLimits(config.InputLimits{}); got != (builder.Limits{}) {
		t.Errorf("BuilderLimits of an empty section = %+v", got)
	}
	// The trust limits reach the verifier's policy.
	p, err := (&TrustOptions{Limits: TrustLimitsOf(c.Limits), InsecureIgnoreTlog: true}).Policy()
	if err != nil {
		t.Fatal(err)
	}
	if p.Limits.MaxReferrers != 6 || p.Limits.MaxLogEntries != 9 {
		t.Errorf("Policy().Limits = %+v", p.Limits)
	}
}

// tarEntriesImage is an image of one layer with n empty files.
func tarEntriesImage(t *testing.T, n int) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range n {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestLimitTarEntriesRaisedByConfigAndFlag: a builder image of 30 entries
// is refused under limits.tarEntries 29, with a message naming the field
// and the flag; limits.tarEntries 30, or --max-tar-entries 30 over the
// file's 29, lets it unpack. The same path (config, flags, guard) carries
// every image limit.
func TestLimitTarEntriesRaisedByConfigAndFlag(t *testing.T) {
	img := tarEntriesImage(t, 30)
	unpack := func(c *config.Config) error {
		cache := &builder.Cache{Dir: t.TempDir(), SkipSync: true, Limits: guard.BuilderLimits(c.Limits)}
		_, err := cache.Unpack(context.Background(), img)
		return err
	}
	over := loadLimits(t, "tarEntries: 29")
	err := unpack(over)
	var le *builder.LimitError
	if !errors.As(err, &le) || le.Setting() != "limits.tarEntries, --max-tar-entries" {
		t.Fatalf("30 entries under limits.tarEntries 29: err = %v, want a LimitError naming limits.tarEntries and --max-tar-entries", err)
	}
	if err := unpack(loadLimits(t, "tarEntries: 30")); err != nil {
		t.Errorf("30 entries under limits.tarEntries 30: %v", err)
	}
	o, err := parseLimitFlags(t, BuildCommandLimits, "--max-tar-entries", "30")
	if err != nil {
		t.Fatal(err)
	}
	o.Apply(&over.Limits)
	if err := unpack(over); err != nil {
		t.Errorf("30 entries under --max-tar-entries 30 over limits.tarEntries 29: %v", err)
	}
}

// TestLimitOutputEntriesRaisedByConfigAndFlag: the source or output tree
// limit comes from limits.outputEntries, or --max-output-entries.
func TestLimitOutputEntriesRaisedByConfigAndFlag(t *testing.T) {
	dir := t.TempDir()
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := loadLimits(t, "outputEntries: 4")
	_, err := builder.HashTreeMax(context.Background(), dir, c.Limits.OutputEntries)
	if err == nil || !strings.Contains(err.Error(), "more than 4 entries (raise with limits.outputEntries, --max-output-entries)") {
		t.Errorf("5 entries under limits.outputEntries 4: err = %v", err)
	}
	o, err := parseLimitFlags(t, BuildCommandLimits, "--max-output-entries", "5")
	if err != nil {
		t.Fatal(err)
	}
	o.Apply(&c.Limits)
	if _, err := builder.HashTreeMax(context.Background(), dir, c.Limits.OutputEntries); err != nil {
		t.Errorf("5 entries under --max-output-entries 5: %v", err)
	}
}

// TestLimitDiffRaisedByConfig: limits.diffFiles bounds the files explained
// per mismatch, and limits.diffFileBytes what is read of each.
func TestLimitDiffRaisedByConfig(t *testing.T) {
	da, db := t.TempDir(), t.TempDir()
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(da, fmt.Sprint(i)), bytes.Repeat([]byte("a"), 100), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(db, fmt.Sprint(i)), append(bytes.Repeat([]byte("a"), 99), 'b'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		lines     []string
		explained int
		cut       bool
	}{
		{[]string{"diffFiles: 2", "diffFileBytes: 99"}, 2, true},
		{[]string{"diffFiles: 3", "diffFileBytes: 100"}, 3, false},
	} {
		c := loadLimits(t, tc.lines...)
		d, err := reproduce.Diff(context.Background(), da, db, guard.ExplainLimits(c.Limits))
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Explanations) != tc.explained {
			t.Errorf("%v: %d explained, want %d", tc.lines, len(d.Explanations), tc.explained)
		}
		summary := fmt.Sprint(d.Explanations[0].Summary)
		if cut := strings.Contains(summary, "(raise with limits.diffFileBytes, --max-diff-file-bytes)"); cut != tc.cut {
			t.Errorf("%v: summary %s; want a cut note: %v", tc.lines, summary, tc.cut)
		}
	}
}

// TestLimitVerifyFlags verifies a signed image with SLSA provenance (two
// referrers) under trust limits exactly at its sizes, which passes, and one
// below each, which refuses it with the limit in the reason.
func TestLimitVerifyFlags(t *testing.T) {
	e := newVerifyEnv(t, true)
	ref, err := name.NewDigest(e.provenance)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(ref)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 2 {
		t.Fatalf("referrers of the fixture: %v, %v; want 2", im, err)
	}
	var manifestBytes, bundleBytes int64
	for _, d := range im.Manifests {
		manifestBytes = max(manifestBytes, d.Size)
		m, err := remote.Image(ref.Context().Digest(d.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		mf, err := m.Manifest()
		if err != nil || len(mf.Layers) != 1 {
			t.Fatalf("referrer %s: %v", d.Digest, err)
		}
		bundleBytes = max(bundleBytes, mf.Layers[0].Size)
	}
	base := e.keyed("--no-verify-cache", "--builder-id", testBuilder)
	args := func(extra ...string) []string {
		return append(append(append([]string{}, base...), extra...), e.provenance)
	}
	at := args("--max-referrers", "2", "--max-signature-manifest-bytes", fmt.Sprint(manifestBytes),
		"--max-bundle-bytes", fmt.Sprint(bundleBytes), "--max-bundle-log-entries", "1")
	if out, errOut, code := run(t, at...); code != exitcode.Pass {
		t.Fatalf("every limit at the fixture's size: exit %d\n%s%s", code, out, errOut)
	}
	for _, tc := range []struct {
		flag  string
		value int64
		want  string
	}{
		{"--max-referrers", 1, "more than the limit of 1"},
		{"--max-signature-manifest-bytes", manifestBytes - 1, fmt.Sprintf("larger than the limit of %d", manifestBytes-1)},
		{"--max-bundle-bytes", bundleBytes - 1, fmt.Sprintf("larger than the limit of %d", bundleBytes-1)},
	} {
		out, errOut, code := run(t, args(tc.flag, fmt.Sprint(tc.value))...)
		if code != exitcode.Fail || !strings.Contains(out, tc.want) {
			t.Errorf("%s %d: exit %d, want 1 with %q\n%s%s", tc.flag, tc.value, code, tc.want, out, errOut)
		}
	}
}

// TestLimitBuildFromConfig runs `buildguard build` with a limits section:
// limits.buildLogBytes cuts the log of a build that prints 21 bytes at 16,
// and the report says how to raise it; limits.tarEntries below the builder
// image's entries refuses the image, naming the limit.
func TestLimitBuildFromConfig(t *testing.T) {
	harness.RequireRoot(t, "buildguard build needs root for crun and runc")
	harness.Require(t, builder.RuntimeCrun)
	ref := busyboxBuilder(t)
	cache := t.TempDir()

	f := buildProject(t, ref, "echo 0123456789abcdef0123", waiveUnbuilt+"limits:\n  buildLogBytes: 16\n")
	out := filepath.Join(t.TempDir(), "evidence")
	_, stderr, code := run(t, "build", "-f", f, "--out", out, "--runtime", builder.RuntimeCrun, "--cache", cache)
	if code != exitcode.Pass {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	note := "runs 1, 2: the build log was cut at 16 bytes (raise with limits.buildLogBytes, --max-build-log-bytes)"
	if r := readReport(t, out); strings.Count(strings.Join(r.Notes, "\n"), "log was cut") != 1 || !strings.Contains(strings.Join(r.Notes, "\n"), note) {
		t.Errorf("report notes %q, want %q once", r.Notes, note)
	}
	if log, err := os.ReadFile(filepath.Join(out, "logs", "run-1.log")); err != nil || !strings.HasPrefix(string(log), "0123456789abcdef\n[buildguard: log truncated: 5 more bytes") {
		t.Errorf("run-1.log = %q, %v", log, err)
	}

	f = buildProject(t, ref, "true", waiveUnbuilt+"limits:\n  tarEntries: 2\n")
	_, stderr, code = run(t, "build", "-f", f, "--out", filepath.Join(t.TempDir(), "evidence"), "--runtime", builder.RuntimeCrun, "--cache", t.TempDir())
	if code == exitcode.Pass || !strings.Contains(stderr, "number of layer entries exceeds the limit of 2") {
		t.Errorf("a builder image over limits.tarEntries: exit %d, want a refusal naming the limit\n%s", code, stderr)
	}
}
