//go:build e2e

package e2e

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildguard/buildguard/internal/harness"
)

// sbomCmd runs a program and returns its standard output and exit code;
// standard error goes to the test log on failure.
func sbomCmd(t *testing.T, prog string, args ...string) ([]byte, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), prog, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir(), "SYFT_CHECK_FOR_APP_UPDATE=false")
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		t.Logf("%s %v: exit %d\n%s", filepath.Base(prog), args, ee.ExitCode(), errb.String())
		return out.Bytes(), ee.ExitCode()
	case err != nil:
		t.Fatalf("running %s: %v", prog, err)
	}
	return out.Bytes(), 0
}

// sbomTree makes a build output named dist holding two real Go binaries:
// crane (a dozen modules) and buildguard itself (hundreds, syft's among
// them).
func sbomTree(t *testing.T, parent string) (dir string, bins []string) {
	t.Helper()
	dir = filepath.Join(parent, "dist")
	crane := filepath.Join(dir, "bin", "crane")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", crane, "github.com/google/go-containerregistry/cmd/crane")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building crane: %v\n%s", err, out)
	}
	bg := filepath.Join(dir, "bin", "buildguard")
	copyExecutable(t, bgBin, bg)
	return dir, []string{crane, bg}
}

func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// packagesOf lists "name version purl" of every package in an SPDX or
// CycloneDX JSON document, sorted; the described root and files are left
// out.
func packagesOf(t *testing.T, doc []byte) []string {
	t.Helper()
	var d struct {
		Packages []struct {
			SPDXID       string `json:"SPDXID"`
			Name         string `json:"name"`
			VersionInfo  string `json:"versionInfo"`
			ExternalRefs []struct {
				Type    string `json:"referenceType"`
				Locator string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
		Components []struct {
			Type    string `json:"type"`
			Name    string `json:"name"`
			Version string `json:"version"`
			PURL    string `json:"purl"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("not a JSON document: %v\n%.300s", err, doc)
	}
	var out []string
	for _, p := range d.Packages {
		if strings.HasPrefix(p.SPDXID, "SPDXRef-DocumentRoot") {
			continue
		}
		purl := ""
		for _, r := range p.ExternalRefs {
			if r.Type == "purl" {
				purl = r.Locator
			}
		}
		out = append(out, p.Name+" "+p.VersionInfo+" "+purl)
	}
	for _, c := range d.Components {
		if c.Type != "file" {
			out = append(out, c.Name+" "+c.Version+" "+c.PURL)
		}
	}
	slices.Sort(out)
	return out
}

// TestSBOMMatchesSyftCLI proves that buildguard sbom finds what the syft
// CLI finds on the same directory, in both formats, and that for each Go
// binary every module of its build information is there with its version.
// The CLI is go.mod's syft tool, built from the modules buildguard links.
func TestSBOMMatchesSyftCLI(t *testing.T) {
	syft := harness.GoTool(t, "syft")
	dir, bins := sbomTree(t, t.TempDir())
	for _, format := range []string{"spdx-json", "cyclonedx-json"} {
		ours, code := sbomCmd(t, bgBin, "sbom", dir, "--format", format)
		if code != 0 {
			t.Fatalf("buildguard sbom --format %s: exit %d", format, code)
		}
		theirs, code := sbomCmd(t, syft, "scan", "dir:"+dir, "-o", format, "-q")
		if code != 0 {
			t.Fatalf("syft scan -o %s: exit %d", format, code)
		}
		a, b := packagesOf(t, ours), packagesOf(t, theirs)
		if !slices.Equal(a, b) {
			t.Errorf("%s: buildguard found %d packages, syft %d\nonly buildguard: %v\nonly syft: %v", format, len(a), len(b), minus(a, b), minus(b, a))
		}
		for _, bin := range bins {
			bi, err := buildinfo.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range append([]*debugModule{{bi.Main.Path, bi.Main.Version}}, modules(bi)...) {
				want := m.path + " " + m.version + " pkg:golang/"
				if m.version == "(devel)" {
					// a main module built from a checkout: syft says UNKNOWN or
					// derives a pseudo-version from the VCS build settings
					want = m.path + " "
				}
				if !slices.ContainsFunc(a, func(p string) bool { return strings.HasPrefix(p, want) }) {
					t.Errorf("%s: %s: module %s %s missing", format, filepath.Base(bin), m.path, m.version)
				}
			}
		}
		t.Logf("%s: buildguard %d packages, syft %d", format, len(a), len(b))
	}
}

type debugModule struct{ path, version string }

func modules(bi *buildinfo.BuildInfo) []*debugModule {
	var out []*debugModule
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		out = append(out, &debugModule{d.Path, d.Version})
	}
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// TestSBOMReproducibleCLI proves, with the real binary, that the documents
// are byte-identical across runs and for a copy of the tree elsewhere, that
// -o writes the same bytes, and that a reference without digest is a usage
// error (exit 2).
func TestSBOMReproducibleCLI(t *testing.T) {
	dir, _ := sbomTree(t, t.TempDir())
	copyDir := filepath.Join(t.TempDir(), "somewhere", "else", "dist")
	for _, name := range []string{"crane", "buildguard"} {
		copyExecutable(t, filepath.Join(dir, "bin", name), filepath.Join(copyDir, "bin", name))
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	for _, format := range []string{"spdx-json", "cyclonedx-json"} {
		first, code1 := sbomCmd(t, bgBin, "sbom", dir, "--format", format)
		second, code2 := sbomCmd(t, bgBin, "sbom", dir, "--format", format)
		copied, code3 := sbomCmd(t, bgBin, "sbom", copyDir, "--format", format)
		file := filepath.Join(t.TempDir(), "sbom.json")
		_, code4 := sbomCmd(t, bgBin, "sbom", dir, "--format", format, "-o", file)
		written, err := os.ReadFile(file)
		if code1+code2+code3+code4 != 0 || err != nil {
			t.Fatalf("%s: exit codes %d %d %d %d, %v", format, code1, code2, code3, code4, err)
		}
		if !bytes.Equal(first, second) || !bytes.Equal(first, copied) || !bytes.Equal(first, written) {
			t.Errorf("%s: documents differ (run 2: %v, copy: %v, -o: %v)", format,
				bytes.Equal(first, second), bytes.Equal(first, copied), bytes.Equal(first, written))
		}
		if bytes.Contains(first, []byte(filepath.Dir(dir))) || !bytes.Contains(first, []byte("2023-11-14T22:13:20Z")) {
			t.Errorf("%s: the path leaked or the date is not SOURCE_DATE_EPOCH's", format)
		}
	}
	if _, code := sbomCmd(t, bgBin, "sbom", "registry.example/app:1.0"); code != 2 {
		t.Errorf("a tag: exit %d, want 2", code)
	}
}

// TestSBOMImageFromRegistry describes, with the real binary, an image by
// digest in the real distribution registry, and finds the Go modules of the
// binary in its layer; the same image by tag is refused.
func TestSBOMImageFromRegistry(t *testing.T) {
	harness.Require(t, "docker-registry")
	reg, err := harness.StartRegistry(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	_, bins := sbomTree(t, t.TempDir())
	bin, err := os.ReadFile(bins[0])
	if err != nil {
		t.Fatal(err)
	}
	layer, err := crane.Layer(map[string][]byte{"usr/local/bin/crane": bin})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(reg.Addr + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref := tag.Context().Digest(d.String()).String()
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	first, code := sbomCmd(t, bgBin, "sbom", ref, "--format", "cyclonedx-json")
	second, code2 := sbomCmd(t, bgBin, "sbom", ref, "--format", "cyclonedx-json")
	if code != 0 || code2 != 0 || !bytes.Equal(first, second) {
		t.Fatalf("exit %d %d, identical: %v", code, code2, bytes.Equal(first, second))
	}
	got := packagesOf(t, first)
	bi, err := buildinfo.ReadFile(bins[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range modules(bi) {
		if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, m.path+" "+m.version+" pkg:golang/") }) {
			t.Errorf("module %s %s missing from the image's SBOM", m.path, m.version)
		}
	}
	if !bytes.Contains(first, []byte(d.String())) {
		t.Errorf("the image digest is not in the document")
	}
	if _, code := sbomCmd(t, bgBin, "sbom", tag.String()); code != 2 {
		t.Errorf("by tag: exit %d, want 2", code)
	}
}
