package rebuild_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/rebuild"
)

const (
	builderDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	baseDigest    = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	srcDigest     = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	outDigest     = "sha256:4444444444444444444444444444444444444444444444444444444444444444"
	commit        = "0123456789abcdef0123456789abcdef01234567"
)

// build is what a published guarded build records.
func build() *attest.Build {
	return &attest.Build{
		Source: "src", SourceDigest: srcDigest, SourceDateEpoch: 1700000000,
		Git:     &attest.GitSource{URI: "git+https://example.org/app.git", Commit: commit},
		Command: []string{"go", "build", "-o", "/out/app"}, Workdir: "/src", Env: map[string]string{"CGO_ENABLED": "0"},
		Images: []attest.Image{
			{Role: "builder", Ref: "reg.example/go:1@" + builderDigest, Digest: builderDigest},
			{Role: "base", Ref: "reg.example/static@" + baseDigest, Digest: baseDigest},
		},
		Runs:         []attest.Run{{Index: 1, Builder: builderDigest, OutputDigest: outDigest}},
		OutputDigest: outDigest, Files: []attest.File{{Path: "app", SHA256: strings.Repeat("5", 64)}},
		Publish: &config.Publish{Image: "reg.example/app:v1", Entrypoint: []string{"/app"}},
	}
}

// predicate is the provenance predicate of b as JSON, as the verifier
// hands it over.
func predicate(t testing.TB, b *attest.Build, edit func(map[string]any)) []byte {
	t.Helper()
	st, err := attest.Provenance(b)
	if err != nil {
		t.Fatal(err)
	}
	data, err := attest.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Predicate map[string]any `json:"predicate"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(doc.Predicate)
	}
	out, err := json.Marshal(doc.Predicate)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The recipe of a guarded build's provenance is what the build recorded.
func TestParseRecipe(t *testing.T) {
	r, err := rebuild.ParseRecipe(predicate(t, build(), nil))
	if err != nil {
		t.Fatal(err)
	}
	b := build()
	switch {
	case r.Source != "src" || r.SourceDigest != srcDigest:
		t.Errorf("source %q %q", r.Source, r.SourceDigest)
	case r.Git == nil || *r.Git != *b.Git:
		t.Errorf("git %+v", r.Git)
	case r.Builder != b.Images[0].Ref || r.BuilderDigest() != builderDigest || r.Base != b.Images[1].Ref:
		t.Errorf("images %q %q", r.Builder, r.Base)
	case strings.Join(r.Command, " ") != "go build -o /out/app" || r.Workdir != "/src" || r.Env["CGO_ENABLED"] != "0":
		t.Errorf("step %q %q %v", r.Command, r.Workdir, r.Env)
	case r.SourceDateEpoch != 1700000000 || r.OutputDigest != outDigest:
		t.Errorf("epoch %d output %s", r.SourceDateEpoch, r.OutputDigest)
	case r.Publish == nil || r.Publish.Image != "reg.example/app:v1" || r.Publish.Entrypoint[0] != "/app":
		t.Errorf("publish %+v", r.Publish)
	}
	// protojson, through which a verified predicate comes, writes numbers
	// as doubles.
	r, err = rebuild.ParseRecipe([]byte(strings.Replace(string(predicate(t, build(), nil)), "1700000000", "1.7e+09", 1)))
	if err != nil || r.SourceDateEpoch != 1700000000 {
		t.Errorf("1.7e+09: %v %v", r, err)
	}
}

// A provenance that holds no recipe buildguard can follow is refused with
// ErrNoRecipe and a reason that names what is wrong.
func TestParseRecipeRefuses(t *testing.T) {
	set := func(path string, v any) func(map[string]any) {
		return func(p map[string]any) {
			keys := strings.Split(path, ".")
			m := p
			for _, k := range keys[:len(keys)-1] {
				m = m[k].(map[string]any)
			}
			if v == nil {
				delete(m, keys[len(keys)-1])
			} else {
				m[keys[len(keys)-1]] = v
			}
		}
	}
	noBuilder := build()
	noBuilder.Images = noBuilder.Images[1:]
	unpinned := build()
	unpinned.Images[0].Ref = "reg.example/go:1"
	noEntry := build()
	noEntry.Dependencies = []attest.ResourceDescriptor{{Name: "golang.org/x/mod@v0.1.0", Digest: map[string]string{"sha256": strings.Repeat("6", 64)}, Annotations: map[string]any{"buildguard.dependencyType": "gomod"}}}
	unknownType := build()
	unknownType.Dependencies = []attest.ResourceDescriptor{{Name: "x", Digest: map[string]string{"sha256": strings.Repeat("6", 64)}, Annotations: map[string]any{"buildguard.dependencyType": "cargo", "buildguard.lockfile": "."}}}
	fileNoURL := build()
	fileNoURL.Dependencies = []attest.ResourceDescriptor{{Name: "x", Digest: map[string]string{"sha256": strings.Repeat("6", 64)}, Annotations: map[string]any{"buildguard.dependencyType": "file", "buildguard.lockfile": "third_party/x"}}}
	noOutput := build()
	noOutput.Runs = nil
	for _, c := range []struct {
		name string
		pred []byte
		want string
	}{
		{"malformed", []byte(`{"buildDefinition": [}`), "not SLSA provenance v1"},
		{"not an object", []byte(`"x"`), "not SLSA provenance v1"},
		{"other builder", predicate(t, build(), set("runDetails.builder.id", "https://github.com/actions/runner")), `builder id "https://github.com/actions/runner" is not buildguard's`},
		{"no builder id", predicate(t, build(), set("runDetails.builder.id", nil)), `builder id "" is not buildguard's`},
		{"other build type", predicate(t, build(), set("buildDefinition.buildType", "https://example.org/other")), "build type"},
		{"no command", predicate(t, build(), set("buildDefinition.externalParameters.command", nil)), "externalParameters.command is missing"},
		{"empty command", predicate(t, build(), set("buildDefinition.externalParameters.command", []any{})), "command is empty"},
		{"command not a list", predicate(t, build(), set("buildDefinition.externalParameters.command", "make")), "externalParameters.command"},
		{"negative epoch", predicate(t, build(), set("buildDefinition.externalParameters.sourceDateEpoch", -1)), "sourceDateEpoch"},
		{"fractional epoch", predicate(t, build(), set("buildDefinition.externalParameters.sourceDateEpoch", 1.5)), "sourceDateEpoch"},
		{"unknown parameter", predicate(t, build(), set("buildDefinition.externalParameters.steps", []any{})), "externalParameters.steps is unknown"},
		{"unknown publish field", predicate(t, build(), set("buildDefinition.externalParameters.publish.platforms", []any{})), "externalParameters.publish"},
		{"no source digest", predicate(t, build(), func(p map[string]any) {
			bd := p["buildDefinition"].(map[string]any)
			bd["resolvedDependencies"] = bd["resolvedDependencies"].([]any)[1:]
		}), "no source tree digest"},
		{"no builder image", predicate(t, noBuilder, nil), "no builder image"},
		{"unpinned builder", predicate(t, unpinned, nil), "is not pinned by its recorded digest"},
		{"dependency without its entry", predicate(t, noEntry, nil), "names no dependencies entry"},
		{"dependency of an unknown type", predicate(t, unknownType, nil), `type "cargo", unknown`},
		{"file dependency without a URL", predicate(t, fileNoURL, nil), "no URL or sha256"},
		{"no output", predicate(t, noOutput, nil), "no control run"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := rebuild.ParseRecipe(c.pred)
			if !errors.Is(err, rebuild.ErrNoRecipe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrNoRecipe with %q", err, c.want)
			}
		})
	}
}

// The configuration of a rebuild is the recorded recipe: one run of the
// recorded builder, nothing of the host in what the statements say.
func TestConfig(t *testing.T) {
	r, err := rebuild.ParseRecipe(predicate(t, build(), nil))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg, err := rebuild.Config(r, dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Text != "src" || cfg.Source.Resolved != dir || cfg.Builder.Image != r.Builder || cfg.Base != r.Base ||
		cfg.SourceDateEpoch != "1700000000" || cfg.Reproduce.Runs != 1 || len(cfg.Reproduce.Variations) != 0 ||
		cfg.Publish.Image != "reg.example/app:v1" || cfg.Publish.Entrypoint[0] != "/app" {
		t.Fatalf("config %+v", cfg)
	}
}

// A provenance records no timeout or limits: the rebuild has the
// configuration's defaults unless the user gives its own (rebuild's
// --timeout, --memory and --pids), which then apply, each on its own.
func TestConfigTimeoutAndLimits(t *testing.T) {
	r, err := rebuild.ParseRecipe(predicate(t, build(), nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rebuild.Config(r, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rebuild.Apply(rebuild.Options{}, cfg)
	if cfg.Builder.Timeout != config.DefaultTimeout || cfg.Builder.Limits.Memory != 0 || cfg.Builder.Limits.Pids != 0 {
		t.Fatalf("without options: timeout %s, limits %+v; want the defaults", cfg.Builder.Timeout, cfg.Builder.Limits)
	}
	rebuild.Apply(rebuild.Options{Timeout: 3 * time.Hour, Limits: config.Limits{Memory: 8 << 30}}, cfg)
	if time.Duration(cfg.Builder.Timeout) != 3*time.Hour || cfg.Builder.Limits.Memory != 8<<30 || cfg.Builder.Limits.Pids != 0 {
		t.Fatalf("with --timeout 3h --memory 8Gi: timeout %s, limits %+v", cfg.Builder.Timeout, cfg.Builder.Limits)
	}
	rebuild.Apply(rebuild.Options{Limits: config.Limits{Pids: 4096}}, cfg)
	if cfg.Builder.Limits.Pids != 4096 || cfg.Builder.Limits.Memory != 8<<30 {
		t.Fatalf("--pids 4096 on its own: limits %+v", cfg.Builder.Limits)
	}
}

// Prefetched dependencies come back as the dependencies entries they were
// fetched for, once each; an unpinned one says the build waived
// dependencies-pinned, and the rebuild's configuration does too.
func TestRecipeDependencies(t *testing.T) {
	b := build()
	sum := strings.Repeat("7", 64)
	b.Dependencies = []attest.ResourceDescriptor{
		{Name: "github.com/pkg/errors", URI: "pkg:golang/github.com/pkg/errors@v0.9.1", Digest: map[string]string{"sha256": sum}, Annotations: map[string]any{"buildguard.dependencyType": "gomod", "buildguard.lockfile": "."}},
		{Name: "github.com/google/uuid", URI: "pkg:golang/github.com/google/uuid@v1.6.0", Digest: map[string]string{"sha256": sum}, Annotations: map[string]any{"buildguard.dependencyType": "gomod", "buildguard.lockfile": "."}},
		{Name: "left-pad", URI: "pkg:npm/left-pad@1.3.0", Digest: map[string]string{"sha256": sum}, Annotations: map[string]any{"buildguard.dependencyType": "npm", "buildguard.lockfile": "web", "buildguard.pinned": false}},
		{Name: "third_party/foo.tar.gz", URI: "https://example.org/foo.tar.gz", Digest: map[string]string{"sha256": sum}, Annotations: map[string]any{"buildguard.dependencyType": "file", "buildguard.lockfile": "third_party/foo.tar.gz"}},
	}
	r, err := rebuild.ParseRecipe(predicate(t, b, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []config.Dependency{
		{Type: config.DependencyGoMod, Path: config.Path{Text: "."}},
		{Type: config.DependencyNPM, Path: config.Path{Text: "web"}},
		{Type: config.DependencyFile, URL: "https://example.org/foo.tar.gz", SHA256: sum, Dest: "third_party/foo.tar.gz"},
	}
	if len(r.Dependencies) != len(want) || !r.UnpinnedDependencies {
		t.Fatalf("dependencies %+v unpinned %v", r.Dependencies, r.UnpinnedDependencies)
	}
	for i := range want {
		if r.Dependencies[i] != want[i] {
			t.Errorf("dependency %d: %+v, want %+v", i, r.Dependencies[i], want[i])
		}
	}
	dir := t.TempDir()
	cfg, err := rebuild.Config(r, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Dependencies) != 3 || cfg.Dependencies[1].Path.Text != "web" || cfg.Dependencies[2].SHA256 != sum {
		t.Errorf("config dependencies %+v", cfg.Dependencies)
	}
	if strings.Join(cfg.Policy.Waive, ",") != "verified,dependencies-pinned" {
		t.Errorf("waived %v", cfg.Policy.Waive)
	}
}
