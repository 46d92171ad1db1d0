package guard

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/internal/testimage"
	"github.com/buildguard/buildguard/publish"
)

// gitSource makes a git checkout with one commit and the given origin.
func gitSource(t *testing.T, origin string) (string, string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	src := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org",
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "main.go")
	git("commit", "-q", "-m", "one")
	git("remote", "add", "origin", origin)
	return src, git("rev-parse", "HEAD")
}

// TestSourceFromGit: a git checkout's repository (without the token of
// its origin URL) and commit reach report.json and the provenance; the
// evidence directory inside the checkout is neither dirt nor digest; a
// changed file is a note.
func TestSourceFromGit(t *testing.T) {
	src, commit := gitSource(t, "https://oauth2:glpat-TOKEN@gitlab.example/group/app.git")
	out := filepath.Join(src, ".buildguard")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "report.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	newRun := func() *run {
		cfg := &config.Config{Source: config.Path{Text: ".", Resolved: src}}
		r := evidence.New()
		r.Source = &evidence.Source{Path: "."}
		return &run{opts: Options{Out: out}, cfg: cfg, report: r, timings: &evidence.Timings{}}
	}
	g := newRun()
	b := g.attestBuild(t.Context())
	s := g.report.Source
	if s.GitCommit != commit || s.Repository != "git+https://gitlab.example/group/app.git" || s.Uncommitted || len(g.report.Notes) != 0 {
		t.Fatalf("source %+v, notes %q", s, g.report.Notes)
	}
	if b.Git == nil || b.Git.Commit != commit || b.Git.URI != s.Repository || b.SourceDigest != s.Digest {
		t.Fatalf("attest.Build git %+v, digest %s", b.Git, b.SourceDigest)
	}
	data, err := os.ReadFile(filepath.Join(src, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), append(data, "// more\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	g2 := newRun()
	g2.attestBuild(t.Context())
	if !g2.report.Source.Uncommitted || len(g2.report.Notes) != 1 || !strings.Contains(g2.report.Notes[0], `"main.go"`) {
		t.Errorf("a changed checkout: %+v, notes %q", g2.report.Source, g2.report.Notes)
	}
	if g2.report.Source.Digest == s.Digest {
		t.Error("a changed file left the digest unchanged")
	}
}

// TestPublishNamesSourceAndRunsProgram: a passing build of a git checkout
// publishes onto the (OCI) base with publish's image config and with the
// checkout's repository (no token) and commit as the manifest's
// org.opencontainers.image.source and .revision.
func TestPublishNamesSourceAndRunsProgram(t *testing.T) {
	reg := startCountingRegistry(t)
	baseImg, err := testimage.Files(map[string]string{"etc/os-release": "ID=test\n"})
	if err != nil {
		t.Fatal(err)
	}
	baseImg = mutate.ConfigMediaType(mutate.MediaType(baseImg, types.OCIManifestSchema1), types.OCIConfigJSON)
	base, err := testimage.Push(t.Context(), reg.host+"/base:1", baseImg)
	if err != nil {
		t.Fatal(err)
	}
	src, commit := gitSource(t, "https://ci:TOKEN@github.com/org/app.git")
	g := decided(t, reg.host+"/app:v1", evidence.Pass, nil)
	g.cfg.Source.Resolved = src
	g.cfg.Base = reg.host + "/base@" + base
	g.cfg.Publish.Entrypoint = []string{"/app"}
	g.report.Source = &evidence.Source{Path: ".", SourceDateEpoch: 1700000000}
	if _, err := g.readSource(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := g.finish(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(mustRef(t, reg.host+"/app@"+g.report.Published.Digest))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if mf.Annotations[publish.AnnotationSource] != "https://github.com/org/app.git" || mf.Annotations[publish.AnnotationRevision] != commit {
		t.Errorf("annotations %v", mf.Annotations)
	}
	cf, err := img.ConfigFile()
	if err != nil || strings.Join(cf.Config.Entrypoint, " ") != "/app" {
		t.Errorf("config %+v %v", cf, err)
	}
	prov := readFile(t, g.opts.Out, attest.ProvenanceFile)
	if !strings.Contains(string(prov), `"gitCommit": "`+commit+`"`) || !strings.Contains(string(prov), "git+https://github.com/org/app.git") || strings.Contains(string(prov), "TOKEN") {
		t.Errorf("provenance does not name the git source:\n%s", prov)
	}
	// The image provenance records how the image was made, so that a
	// rebuild can make the same digest.
	var st struct {
		Predicate struct {
			BuildDefinition struct {
				ExternalParameters struct {
					Publish struct {
						Image      string   `json:"image"`
						Entrypoint []string `json:"entrypoint"`
					} `json:"publish"`
				} `json:"externalParameters"`
			} `json:"buildDefinition"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal([]byte(readFile(t, g.opts.Out, attest.ImageProvenanceFile)), &st); err != nil {
		t.Fatal(err)
	}
	if p := st.Predicate.BuildDefinition.ExternalParameters.Publish; p.Image != reg.host+"/app:v1" || strings.Join(p.Entrypoint, " ") != "/app" {
		t.Errorf("image provenance's publish parameters %+v, want the image and its entrypoint", p)
	}
}
