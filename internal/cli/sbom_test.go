package cli

import (
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// sbomTree writes a small build output with two npm packages under a
// directory named dist.
func sbomTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dist")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock := `{"name":"app","version":"1.0.0","lockfileVersion":3,"packages":{"":{"name":"app","version":"1.0.0"},
"node_modules/left-pad":{"version":"1.3.0","license":"WTFPL"}}}`
	if err := os.WriteFile(filepath.Join(dir, "package-lock.json"), []byte(lock), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSBOMUsageErrors(t *testing.T) {
	dir := sbomTree(t)
	hex := strings.Repeat("0", 64)
	tests := []struct {
		args []string
		env  string
		msg  string
	}{
		{[]string{"sbom"}, "", "name one directory or IMAGE@DIGEST, got 0"},
		{[]string{"sbom", dir, dir}, "", "got 2 argument(s)"},
		{[]string{"sbom", "--format", "spdx-tag-value", dir}, "", `--format "spdx-tag-value"`},
		{[]string{"sbom", "--source-date-epoch", "-5", dir}, "", `--source-date-epoch "-5"`},
		{[]string{"sbom", "--source-date-epoch", "yesterday", dir}, "", "want whole seconds"},
		{[]string{"sbom", dir}, "soon", `$SOURCE_DATE_EPOCH "soon"`},
		{[]string{"sbom", "registry.example/app:1.0"}, "", "has no digest"},
		{[]string{"sbom", filepath.Join(dir, "nope")}, "", "no such directory"},
		{[]string{"sbom", filepath.Join(dir, "package-lock.json")}, "", "is not a directory"},
		{[]string{"sbom", "--platform", "linux/arm64", dir}, "", "is a directory"},
		{[]string{"sbom", "--platform", "arm64", "registry.example/app@sha256:" + hex}, "", "want OS/ARCH"},
		{[]string{"sbom", "--no-such-flag", dir}, "", "unknown flag"},
		{[]string{"sbom", "-o", os.DevNull, dir}, "", "not a regular file"},
		{[]string{"sbom", "-o", dir, dir}, "", "not a regular file"},
	}
	for _, tt := range tests {
		t.Setenv("SOURCE_DATE_EPOCH", tt.env)
		out, errOut, code := run(t, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.msg) || out != "" {
			t.Errorf("%q (SOURCE_DATE_EPOCH=%q): exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, tt.env, code, out, errOut, tt.msg)
		}
	}
}

func TestSBOMStdoutAndFile(t *testing.T) {
	dir := sbomTree(t)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	out, errOut, code := run(t, "sbom", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		SPDXVersion  string `json:"spdxVersion"`
		Name         string `json:"name"`
		CreationInfo struct {
			Created string `json:"created"`
		} `json:"creationInfo"`
		Packages []struct {
			Name string `json:"name"`
		} `json:"packages"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.Name != "dist" || doc.CreationInfo.Created != "2023-11-14T22:13:20Z" || !strings.Contains(out, `"left-pad"`) {
		t.Errorf("document: %+v", doc)
	}
	if errOut != "" {
		t.Errorf("stderr without -o: %q", errOut)
	}

	// -o writes the same bytes; the flag beats the environment.
	file := filepath.Join(t.TempDir(), "sbom.spdx.json")
	_, errOut, code = run(t, "sbom", dir, "-o", file, "--source-date-epoch", "1700000000")
	got, err := os.ReadFile(file)
	if code != 0 || err != nil || string(got) != out {
		t.Errorf("-o: exit %d, %v, same bytes as stdout: %v", code, err, string(got) == out)
	}
	if !strings.Contains(errOut, "wrote "+file+" (spdx-json, 2 packages)") {
		t.Errorf("stderr %q", errOut)
	}
	_, _, code = run(t, "sbom", dir, "-o", file, "--source-date-epoch", "0", "-q")
	if again, _ := os.ReadFile(file); code != 0 || string(again) == out || !strings.Contains(string(again), `"created":"1970-01-01T00:00:00Z"`) {
		t.Errorf("--source-date-epoch 0 did not replace the file's date (exit %d)", code)
	}

	out, _, code = run(t, "sbom", "--format", "cyclonedx-json", "--name", "app-release", dir)
	if code != 0 || !strings.Contains(out, `"specVersion":"1.6"`) || !strings.Contains(out, `"name":"app-release"`) || !strings.Contains(out, `"serialNumber":"urn:uuid:`) {
		t.Errorf("cyclonedx-json: exit %d\n%.400s", code, out)
	}
}

func TestSBOMWriteFailureIsIncomplete(t *testing.T) {
	dir := sbomTree(t)
	_, errOut, code := run(t, "sbom", dir, "-o", filepath.Join(dir, "missing", "sbom.json"))
	if code != 3 || !strings.Contains(errOut, "writing") {
		t.Errorf("exit %d, %q; want 3", code, errOut)
	}
}

// TestSBOMImageLimitFlag: --max-sbom-image-bytes bounds the image's
// compressed layers before any is fetched, and raising it lets the same
// image through.
func TestSBOMImageLimitFlag(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	m, _ := img.Manifest()
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}
	target := ref.Context().Digest(digest.String()).String()
	_, errOut, code := run(t, "sbom", "--max-sbom-image-bytes", strconv.FormatInt(size-1, 10), "-q", "-o", filepath.Join(t.TempDir(), "x.json"), target)
	if code == 0 || !strings.Contains(errOut, "raise with --max-sbom-image-bytes") {
		t.Fatalf("one byte under the image: exit %d, %s", code, errOut)
	}
	_, errOut, code = run(t, "sbom", "--max-sbom-image-bytes", strconv.FormatInt(size, 10), "-q", "-o", filepath.Join(t.TempDir(), "x.json"), target)
	if code != 0 {
		t.Fatalf("at the limit: exit %d, %s", code, errOut)
	}
}
