package sbom

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestParseTarget(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "app", "binary")
	hex := strings.Repeat("ab", 32)
	tests := []struct {
		in      string
		dir     bool
		image   string
		wantErr string
	}{
		{in: dir, dir: true},
		{in: "reg.example/app@sha256:" + hex, image: "reg.example/app@sha256:" + hex},
		{in: "reg.example:5000/team/app:1.0@sha256:" + hex, image: "reg.example:5000/team/app:1.0@sha256:" + hex},
		{in: "", wantErr: "name a directory"},
		{in: filepath.Join(dir, "app"), wantErr: "is not a directory"},
		{in: "reg.example/app:1.0", wantErr: "has no digest"},
		{in: "golang:1.26", wantErr: "has no digest"},
		{in: "no-such-dir", wantErr: "no such directory"},
		{in: "reg.example/app@sha256:abc", wantErr: "want REGISTRY/REPO@sha256:HEX"},
		{in: "app@sha256:" + hex, wantErr: "want REGISTRY/REPO@sha256:HEX"}, // strict: no docker.io filled in
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if tt.wantErr != "" {
			var ue *UsageError
			if !errors.As(err, &ue) || ue.ExitCode() != 2 || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseTarget(%q): %v, want a usage error containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tt.in, err)
			continue
		}
		if tt.dir && got.Dir != tt.in || tt.image != "" && (got.Image == nil || got.Image.String() != tt.image) {
			t.Errorf("ParseTarget(%q) = %+v", tt.in, got)
		}
	}
}

// testRegistry starts go-containerregistry's registry on loopback and
// returns its host:port.
func testRegistry(t *testing.T) string {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no host credentials
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// pushGoImage pushes an image for platform whose one layer holds the test
// Go binary at /usr/local/bin/crane, and returns its digest reference.
func pushGoImage(t *testing.T, repo name.Repository, platform string) name.Digest {
	t.Helper()
	bin, err := os.ReadFile(goBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	layer, err := crane.Layer(map[string][]byte{"usr/local/bin/crane": bin, "etc/motd": []byte(platform)})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v1.ParsePlatform(platform)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Architecture
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref := repo.Digest(d.String())
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestImageByDigest proves an image named by digest is fetched and
// described like a directory: its Go modules are found, and two runs are
// byte-identical.
func TestImageByDigest(t *testing.T) {
	reg := testRegistry(t)
	repo, err := name.NewRepository(reg + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	ref := pushGoImage(t, repo, "linux/amd64")
	a, err := Generate(t.Context(), ref.String(), Options{SourceDateEpoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(t.Context(), ref.String(), Options{SourceDateEpoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Formats {
		if !bytes.Equal(a.Documents[f], b.Documents[f]) {
			t.Errorf("%s: two runs differ:\n%s", f, firstDiff(a.Documents[f], b.Documents[f]))
		}
		if !bytes.Contains(a.Documents[f], []byte(ref.DigestStr())) {
			t.Errorf("%s: the image digest is not in the document", f)
		}
		if bytes.Contains(a.Documents[f], []byte(os.TempDir()+"/")) {
			t.Errorf("%s: a temporary path leaked", f)
		}
	}
	if !hasPackage(a.Packages, "github.com/google/go-containerregistry", "v0.22.1") || len(a.Packages) < 5 {
		t.Errorf("the image's Go modules were not found: %v", a.Packages)
	}
	if a.Target != ref.String() {
		t.Errorf("target %q", a.Target)
	}
}

// TestImageIndexNeedsPlatform proves an index of several images is
// described only for a chosen platform, and that a tag is refused.
func TestImageIndexNeedsPlatform(t *testing.T) {
	reg := testRegistry(t)
	repo, err := name.NewRepository(reg + "/team/multi")
	if err != nil {
		t.Fatal(err)
	}
	var adds []mutate.IndexAddendum
	var arm64 name.Digest
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		ref := pushGoImage(t, repo, p)
		arm64 = ref
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		plat, _ := v1.ParsePlatform(p)
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(repo.Tag("v1"), idx); err != nil {
		t.Fatal(err)
	}
	ref := repo.Digest(d.String()).String()

	_, err = Generate(t.Context(), ref, Options{})
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "linux/amd64") || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("an index without --platform: %v, want a usage error naming the platforms", err)
	}
	res, err := Generate(t.Context(), ref, Options{Platform: "linux/arm64", Formats: []Format{SPDXJSON}})
	if err != nil {
		t.Fatal(err)
	}
	// the root package: the repository, the index digest as its version,
	// the chosen image's digest as its checksum and in its purl
	doc := res.Documents[SPDXJSON]
	for _, want := range []string{`"name":"` + repo.Name() + `"`, `"versionInfo":"` + ref[strings.Index(ref, "@")+1:] + `"`, strings.TrimPrefix(arm64.DigestStr(), "sha256:"), "arch=arm64"} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("the document lacks %s", want)
		}
	}
	if _, err := Generate(t.Context(), repo.Tag("v1").String(), Options{}); !errors.As(err, &ue) || !strings.Contains(err.Error(), "no digest") {
		t.Errorf("a tag: %v, want a usage error", err)
	}
}

// TestImageLimits proves an image is refused before its layers are fetched
// when its manifest declares more than MaxImageBytes, or when it is not
// for the platform asked for.
func TestImageLimits(t *testing.T) {
	reg := testRegistry(t)
	repo, err := name.NewRepository(reg + "/team/big")
	if err != nil {
		t.Fatal(err)
	}
	ref := pushGoImage(t, repo, "linux/amd64")
	var ue *UsageError
	if _, err := Generate(t.Context(), ref.String(), Options{Platform: "linux/arm64"}); !errors.As(err, &ue) || !strings.Contains(err.Error(), "image for linux/amd64") {
		t.Errorf("a platform the image is not for: %v", err)
	}
	_, err = Generate(t.Context(), ref.String(), Options{MaxImageBytes: 1024})
	if err == nil || !strings.Contains(err.Error(), "larger than 1024 bytes") {
		t.Errorf("got %v, want the size limit", err)
	}
}
