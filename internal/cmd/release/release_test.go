package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/buildguard/buildguard/config"
)

func TestOptionsValidate(t *testing.T) {
	ok := Options{Target: DefaultTarget, Dist: "dist", Buildguard: "bin/buildguard"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("default options: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no ./", func(o *Options) { o.Target = "cmd/buildguard" }, "--target"},
		{"pattern", func(o *Options) { o.Target = "./cmd/..." }, "--target"},
		{"outside", func(o *Options) { o.Target = "./../x" }, "--target"},
		{"unclean", func(o *Options) { o.Target = "./cmd//buildguard" }, "--target"},
		{"root", func(o *Options) { o.Target = "./" }, "--target"},
		{"dist dot", func(o *Options) { o.Dist = "." }, "--dist"},
		{"dist slash", func(o *Options) { o.Dist = "/" }, "--dist"},
		{"dist empty", func(o *Options) { o.Dist = "" }, "--dist"},
		{"no buildguard", func(o *Options) { o.Buildguard = "" }, "--buildguard"},
		{"timeout", func(o *Options) { o.Timeout = -time.Second }, "--build-timeout"},
	} {
		o := ok
		c.edit(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate() = %v, want an error naming %s", c.name, err, c.want)
		}
	}
}

func TestVendoredModules(t *testing.T) {
	txt := `# example.com/a v1.0.0
## explicit; go 1.22
example.com/a
example.com/a/sub
# example.com/nopkgs v0.1.0
## explicit
# example.com/old v1.2.0 => example.com/new v1.3.0
## explicit
example.com/old
`
	got := vendoredModules([]byte(txt))
	want := []string{"example.com/a@v1.0.0", "example.com/old@v1.2.0"}
	if !slices.Equal(got, want) {
		t.Errorf("vendoredModules = %q, want %q", got, want)
	}
}

// TestConfigIsValid checks that the configuration a release writes is one
// buildguard reads as meant: pinned builders, the commit time, the vendored
// build without network.
func TestConfigIsValid(t *testing.T) {
	r := &release{
		o:        Options{Target: "./internal/cmd/benchdiff"},
		src:      &source{commit: "0123456789abcdef0123456789abcdef01234567", epoch: 1764000000},
		builders: builderRefs{clean: "127.0.0.1:5000/release/go-builder:1.26.8@sha256:" + strings.Repeat("a", 64), independent: "127.0.0.1:5000/release/go-builder-independent:1.26.8@sha256:" + strings.Repeat("b", 64)},
	}
	tr := &tree{modulesTxt: "sha256:" + strings.Repeat("c", 64)}
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(r.config(tr)), filepath.Join(dir, "buildguard.yaml"))
	if err != nil {
		t.Fatalf("the release's buildguard.yaml:\n%s\n%v", r.config(tr), err)
	}
	if cfg.SourceDateEpoch != "1764000000" {
		t.Errorf("sourceDateEpoch = %q", cfg.SourceDateEpoch)
	}
	if cfg.Builder.Image != r.builders.clean || len(cfg.Reproduce.Diverse) != 1 || cfg.Reproduce.Diverse[0].Image != r.builders.independent {
		t.Errorf("images: builder %q, diverse %v", cfg.Builder.Image, cfg.Reproduce.Diverse)
	}
	if cfg.Reproduce.Runs != 2 {
		t.Errorf("runs = %d, want 2", cfg.Reproduce.Runs)
	}
	wantCmd := []string{"go", "build", "-mod=vendor", "-trimpath", "-ldflags=-buildid=", "-o", "/out/benchdiff", "./internal/cmd/benchdiff"}
	if !slices.Equal(cfg.Builder.Command, wantCmd) {
		t.Errorf("command = %q, want %q", cfg.Builder.Command, wantCmd)
	}
	for k, v := range map[string]string{"CGO_ENABLED": "0", "GOPROXY": "off", "GOFLAGS": "-mod=vendor", envModulesTxt: tr.modulesTxt, envCommit: r.src.commit} {
		if cfg.Builder.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, cfg.Builder.Env[k], v)
		}
	}
	if time.Duration(cfg.Builder.Timeout) != smallTimeout {
		t.Errorf("timeout = %s, want %s", time.Duration(cfg.Builder.Timeout), smallTimeout)
	}
}

// TestRefusesDirtyTree checks that a release with uncommitted changes is
// refused before anything starts, unless --allow-dirty.
func TestRefusesDirtyTree(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not found")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		c := exec.CommandContext(t.Context(), git, args...)
		c.Dir = dir
		c.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run("init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run("add", "go.mod")
	run("commit", "-q", "-m", "x")
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bg := filepath.Join(dir, "buildguard")
	if err := os.WriteFile(bg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_, err = Release(t.Context(), &out, Options{Repo: dir, Target: DefaultTarget, Dist: filepath.Join(dir, "dist"), Buildguard: bg})
	if !errors.Is(err, ErrDirty) || !strings.Contains(err.Error(), "--allow-dirty") || !strings.Contains(err.Error(), "go.mod") {
		t.Fatalf("Release of a dirty tree: %v, want ErrDirty naming go.mod and --allow-dirty", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dist")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused release wrote dist/: %v", err)
	}
}
