package ddc

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/config"
)

// The shipped chain is sound: every release gets a bootstrap at least as
// new as its make.bash asks, starting from what gccgo-12 implements.
func TestChainBootstrapsAreNewEnough(t *testing.T) {
	if err := CheckChain(Chain, GccgoImplements); err != nil {
		t.Fatal(err)
	}
	if last := Chain[len(Chain)-1].Version; last != "go1.26.8" {
		t.Errorf("the chain ends at %s, want go1.26.8, the release of the builder images", last)
	}
}

// A chain with a gap is refused, naming the release and what it needs.
func TestCheckChainRefusesAGap(t *testing.T) {
	gap := []Release{Chain[0], Chain[2]} // go1.24.6 from go1.20.14
	err := CheckChain(gap, GccgoImplements)
	if err == nil || !strings.Contains(err.Error(), "go1.24.6 needs a bootstrap Go of at least go1.22.6") {
		t.Fatalf("CheckChain = %v, want go1.24.6 refused for want of go1.22.6", err)
	}
	if err := CheckChain(Chain[1:], GccgoImplements); err == nil {
		t.Error("go1.22.12 straight from gccgo (go1.18) was accepted; it needs go1.20.6")
	}
	bad := []Release{{Version: "go1.20.14", SHA256: "abc", MinBootstrap: "go1.17.13"}}
	if err := CheckChain(bad, GccgoImplements); err == nil {
		t.Error("a release without a 64-digit sha256 was accepted")
	}
}

func TestAtLeast(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"go1.18", "go1.17.13", true},
		{"go1.20.14", "go1.20.6", true},
		{"go1.20.5", "go1.20.6", false},
		{"go1.24.6", "go1.24.6", true},
		{"go1.9", "go1.17.13", false},
	} {
		got, err := atLeast(c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("atLeast(%s, %s) = %t, %v; want %t", c.a, c.b, got, err, c.want)
		}
	}
	if _, err := atLeast("1.20", "go1.20"); err == nil {
		t.Error(`"1.20" was read as a Go release`)
	}
}

// Each stage is bootstrapped by the one before, the first by gccgo.
func TestPlan(t *testing.T) {
	p := Plan(Chain)
	if len(p) != len(Chain) {
		t.Fatalf("%d stages for %d releases", len(p), len(Chain))
	}
	if p[0].Bootstrap != Gccgo || p[0].GoRootBootstrap() != "gccgo" {
		t.Errorf("stage 1 is bootstrapped by %s (%s), want gccgo-12", p[0].Bootstrap, p[0].GoRootBootstrap())
	}
	for i := 1; i < len(p); i++ {
		if p[i].Bootstrap != Chain[i-1].Version || p[i].GoRootBootstrap() != "/usr/local/go" {
			t.Errorf("stage %d is bootstrapped by %s at %s, want %s at /usr/local/go", p[i].Index, p[i].Bootstrap, p[i].GoRootBootstrap(), Chain[i-1].Version)
		}
	}
}

// The cache key changes with every input of a stage (its builder image,
// its source zip, what it builds) and not with the registry the image
// happens to be served from.
func TestKey(t *testing.T) {
	s := Plan(Chain)[1]
	s.BuilderDigest = "sha256:" + strings.Repeat("a", 64)
	k := s.Key()
	if len(k) != 64 {
		t.Fatalf("key %q is not a sha256", k)
	}
	if s.Key() != k {
		t.Error("the same stage gave two keys")
	}
	if !bytes.Equal(s.Config("127.0.0.1:5000"), bytes.ReplaceAll(s.Config(keyRegistry), []byte(keyRegistry), []byte("127.0.0.1:5000"))) {
		t.Error("the registry changes more of the configuration than the image's name")
	}
	other := s
	other.BuilderDigest = "sha256:" + strings.Repeat("b", 64)
	zip := s
	zip.Release.SHA256 = strings.Repeat("c", 64)
	ver := s
	ver.Release.Version = "go1.22.11"
	boot := s
	boot.Bootstrap = Gccgo
	for name, o := range map[string]Stage{"builder digest": other, "zip sha256": zip, "version": ver, "bootstrap": boot} {
		if o.Key() == k {
			t.Errorf("changing the %s kept the key", name)
		}
	}
}

// The configuration a stage writes is one buildguard accepts, pinning its
// builder by digest and its source by sha256.
func TestConfigLoads(t *testing.T) {
	s := Plan(Chain)[0]
	s.BuilderDigest = "sha256:" + strings.Repeat("a", 64)
	dir := t.TempDir()
	p := filepath.Join(dir, "buildguard.yaml")
	if err := os.WriteFile(p, s.Config("127.0.0.1:5000"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatalf("buildguard does not accept the stage's configuration: %v", err)
	}
	if !strings.HasSuffix(cfg.Builder.Image, "@"+s.BuilderDigest) {
		t.Errorf("builder image %s is not pinned to %s", cfg.Builder.Image, s.BuilderDigest)
	}
	if len(cfg.Dependencies) != 1 || cfg.Dependencies[0].SHA256 != s.Release.SHA256 || cfg.Dependencies[0].URL != ZipURL(s.Release.Version) {
		t.Errorf("dependencies = %+v, want the toolchain zip pinned by its sha256", cfg.Dependencies)
	}
}

func TestDebianKey(t *testing.T) {
	if GccgoDebian.Key() == BaseDebian.Key() {
		t.Error("the root file systems with and without gccgo share a cache key")
	}
	args := strings.Join(GccgoDebian.Args("x.tar"), " ")
	if !strings.Contains(args, "--include=gccgo-12,unzip") || !strings.Contains(args, "--format=tar") {
		t.Errorf("mmdebstrap %s: want gccgo-12 and unzip installed, written as a tar", args)
	}
}

// Compare finds the identical, the different and the missing files.
func TestCompare(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	write := func(root, p, body string) {
		t.Helper()
		p = filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, root := range []string{a, b} {
		write(root, "bin/go", "go")
		write(root, "pkg/tool/linux_amd64/compile", "compile")
	}
	files, extra, same, err := Compare(a, b, CompareDirs)
	if err != nil || !same || len(files) != 2 || len(extra) != 0 {
		t.Fatalf("identical trees: %v, same %t, %d files, extra %v; want same, 2 files", err, same, len(files), extra)
	}
	// make.bash installs tools the distribution does not ship: reported
	// apart, not a difference.
	write(a, "pkg/tool/linux_amd64/nm", "nm")
	files, extra, same, err = Compare(a, b, CompareDirs)
	if err != nil || !same || len(files) != 2 || !slices.Equal(extra, []string{"pkg/tool/linux_amd64/nm"}) {
		t.Fatalf("a tool only the bootstrapped tree has: %v, same %t, %d files, extra %v; want same, 2 files, nm extra", err, same, len(files), extra)
	}
	write(b, "pkg/tool/linux_amd64/link", "link")
	write(a, "bin/go", "go with a payload")
	files, _, same, err = Compare(a, b, CompareDirs)
	if err != nil || same {
		t.Fatalf("differing trees: %v, same %t", err, same)
	}
	got := map[string]File{}
	for _, f := range files {
		got[f.Path] = f
	}
	if got["bin/go"].Identical || got["bin/go"].Bootstrapped == got["bin/go"].Official {
		t.Errorf("bin/go differs but is reported %+v", got["bin/go"])
	}
	if f := got["pkg/tool/linux_amd64/link"]; f.Identical || f.Bootstrapped != "" || f.Official == "" {
		t.Errorf("link is only in the official tree but is reported %+v", f)
	}
	if !got["pkg/tool/linux_amd64/compile"].Identical {
		t.Error("compile is the same in both but reported different")
	}
	if _, _, _, err := Compare(a, t.TempDir(), CompareDirs); err == nil || !strings.Contains(err.Error(), "not a Go toolchain") {
		t.Errorf("a tree without bin/ compared: %v", err)
	}
}
