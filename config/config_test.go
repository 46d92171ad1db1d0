package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/buildguard/buildguard/config"
	yaml "go.yaml.in/yaml/v3"
)

// doc joins lines into a YAML file, so that a case reads with its line
// numbers in mind.
func doc(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

func mustLoad(t *testing.T, path string) *config.Config {
	t.Helper()
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return c
}

func TestLoadFull(t *testing.T) {
	c := mustLoad(t, "testdata/full.yaml")
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}

	if c.APIVersion != config.APIVersion {
		t.Errorf("APIVersion = %q", c.APIVersion)
	}
	wantCmd := []string{"go", "build", "-trimpath", "-o", "/out/app", "./cmd/app"}
	if !reflect.DeepEqual(c.Builder.Command, wantCmd) {
		t.Errorf("Command = %q, want %q", c.Builder.Command, wantCmd)
	}
	if got := time.Duration(c.Builder.Timeout); got != 10*time.Minute {
		t.Errorf("Timeout = %v, want 10m", got)
	}
	if c.Builder.Limits.Memory != 4<<30 || c.Builder.Limits.Pids != 4096 {
		t.Errorf("Limits = %+v, want 4Gi and 4096", c.Builder.Limits)
	}
	if c.Builder.Env["CGO_ENABLED"] != "0" {
		t.Errorf("Env = %v", c.Builder.Env)
	}
	if !reflect.DeepEqual(c.Reproduce.Variations, config.Variations()) {
		t.Errorf("Variations = %v", c.Reproduce.Variations)
	}
	// Relative paths are resolved against the file's directory; the text
	// is kept as written.
	if c.Source.Resolved != dir || c.Source.Text != "." {
		t.Errorf("Source = %+v, want resolved %s", c.Source, dir)
	}
	if want := filepath.Join(dir, "trusted_root.json"); c.Trust.TrustedRoot.Resolved != want {
		t.Errorf("TrustedRoot = %+v, want %s", c.Trust.TrustedRoot, want)
	}
	if want := filepath.Join(dir, "cosign.pub"); len(c.Trust.Keys) != 1 || c.Trust.Keys[0].Resolved != want || c.Trust.Keys[0].Text != "cosign.pub" {
		t.Errorf("Keys = %+v, want [%s]", c.Trust.Keys, want)
	}
	if c.Trust.Checkpoints != (config.Path{}) {
		t.Errorf("Checkpoints = %+v, want empty (the cache directory)", c.Trust.Checkpoints)
	}
	if c.Policy.Rules[0].Name != "no-gpl-in-output" {
		t.Errorf("Rules = %+v", c.Policy.Rules)
	}
	if c.File() != "testdata/full.yaml" {
		t.Errorf("File() = %q", c.File())
	}
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, "testdata/minimal.yaml")
	b := c.Builder
	if b.Workdir != "/src" || b.Timeout != config.Duration(30*time.Minute) || b.Runtime != config.RuntimeAuto {
		t.Errorf("builder defaults = workdir %q timeout %v runtime %q", b.Workdir, b.Timeout, b.Runtime)
	}
	if c.Reproduce.Runs != 2 {
		t.Errorf("Runs = %d, want 2", c.Reproduce.Runs)
	}
	if !reflect.DeepEqual(c.Reproduce.Variations, config.Variations()) {
		t.Errorf("Variations = %v, want all", c.Reproduce.Variations)
	}
	if c.Source.Text != "." {
		t.Errorf("Source = %+v, want .", c.Source)
	}
	// Plain scalars in a list of strings are taken as written.
	if want := []string{"make", "-j", "4", "build"}; !reflect.DeepEqual(b.Command, want) {
		t.Errorf("Command = %q, want %q", b.Command, want)
	}
	// Absent lists and maps are empty, not null, in JSON.
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("null")) {
		t.Errorf("JSON has null: %s", out)
	}
}

func TestExplicitValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  []byte
		check func(*config.Config) bool
	}{
		{"empty variations mean none", doc(head, "reproduce: {variations: []}"),
			func(c *config.Config) bool { return c.Reproduce.Variations != nil && len(c.Reproduce.Variations) == 0 }},
		{"null variations mean all", doc(head, "reproduce: {variations: }"),
			func(c *config.Config) bool { return len(c.Reproduce.Variations) == 10 }},
		{"epoch as a number", doc(head, "sourceDateEpoch: 1700000000"),
			func(c *config.Config) bool { return c.SourceDateEpoch == "1700000000" }},
		{"env value as a number", doc(head, "  env: {CGO_ENABLED: 0, GOAMD64: v3}"),
			func(c *config.Config) bool { return c.Builder.Env["CGO_ENABLED"] == "0" }},
		{"memory in bytes", doc(head, "  limits: {memory: 1048576}"),
			func(c *config.Config) bool { return c.Builder.Limits.Memory == 1<<20 }},
		{"memory decimal", doc(head, "  limits: {memory: 1G}"),
			func(c *config.Config) bool { return c.Builder.Limits.Memory == 1e9 }},
		{"runs 1", doc(head, "reproduce: {runs: 1}"),
			func(c *config.Config) bool { return c.Reproduce.Runs == 1 }},
		{"absolute key path", doc(head, "trust: {keys: [/etc/keys/cosign.pub]}"),
			func(c *config.Config) bool { return c.Trust.Keys[0].Resolved == "/etc/keys/cosign.pub" }},
		{"short name without digest", doc(head, "base: debian"),
			func(c *config.Config) bool { return c.Base == "debian" }},
		{"http rekor", doc(head, "trust: {rekor: {url: 'http://127.0.0.1:3000'}}"),
			func(c *config.Config) bool { return c.Trust.Rekor.URL == "http://127.0.0.1:3000" }},
		{"both issuer forms", doc(head, "trust: {identities: [{issuer: a, issuerRegExp: '^a$', subjectRegExp: '.'}]}"),
			func(c *config.Config) bool { return len(c.Trust.Identities) == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse(tc.yaml, "buildguard.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tc.check(c) {
				t.Errorf("unexpected config: %+v", c)
			}
		})
	}
}

func TestResolveRelativeToFile(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "ci")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(sub, "buildguard.yaml")
	data := doc(head, "source: ../src", "trust:", "  trustedRoot: root.json", "  keys: [keys/a.pub, /abs/b.pub]", "  checkpoints: state",
		"signing:", "  key: keys/signing.key", "  config: signing_config.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, file)
	for _, tc := range []struct {
		got  config.Path
		text string
		want string
	}{
		{c.Source, "../src", filepath.Join(dir, "src")},
		{c.Trust.TrustedRoot, "root.json", filepath.Join(sub, "root.json")},
		{c.Trust.Keys[0], "keys/a.pub", filepath.Join(sub, "keys/a.pub")},
		{c.Trust.Keys[1], "/abs/b.pub", "/abs/b.pub"},
		{c.Trust.Checkpoints, "state", filepath.Join(sub, "state")},
		{c.Signing.Key, "keys/signing.key", filepath.Join(sub, "keys/signing.key")},
		{c.Signing.Config, "signing_config.json", filepath.Join(sub, "signing_config.json")},
	} {
		if tc.got.Text != tc.text || tc.got.Resolved != tc.want || tc.got.String() != tc.want {
			t.Errorf("path = %+v, want text %q resolved %q", tc.got, tc.text, tc.want)
		}
	}
	// JSON carries the text as written, so that a report does not depend
	// on where the project is checked out.
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(dir)) {
		t.Errorf("JSON contains the checkout directory: %s", out)
	}
}

// TestGoldenJSON pins the JSON form of the full example: field names and
// order are what evidence reports embed. UPDATE_GOLDEN=1 rewrites it.
func TestGoldenJSON(t *testing.T) {
	c := mustLoad(t, "testdata/full.yaml")
	got, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/full.json"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("JSON differs from %s (UPDATE_GOLDEN=1 to update):\n%s", golden, got)
	}
	again, err := json.MarshalIndent(mustLoad(t, "testdata/full.yaml"), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(again, '\n'), got) {
		t.Error("JSON of the same file differs between loads")
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	for _, f := range []string{"testdata/full.yaml", "testdata/minimal.yaml"} {
		c := mustLoad(t, f)
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := config.Parse(out, f)
		if err != nil {
			t.Fatalf("%s: re-parsing marshalled config: %v\n%s", f, err, out)
		}
		j1, _ := json.Marshal(c)
		j2, _ := json.Marshal(c2)
		if !bytes.Equal(j1, j2) {
			t.Errorf("%s: round trip changed the config:\n%s\n%s", f, j1, j2)
		}
	}
}

func TestLineAndImages(t *testing.T) {
	c := mustLoad(t, "testdata/full.yaml")
	for path, want := range map[string]int{
		"apiVersion":                        1,
		"builder":                           3,
		"builder.image":                     4,
		"builder.env.CGO_ENABLED":           7,
		"builder.limits.pids":               10,
		"reproduce.diverse[0].image":        16,
		"trust.keys[0]":                     22,
		"trust.identities[0].subjectRegExp": 24,
		"policy.rules[0].expr":              38,
		"signing.config":                    30,
		"publish.image":                     19,
		"reproduce.diverse[1].image":        0,
		"nonsense":                          0,
	} {
		if got := c.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
	want := []config.ImageRef{
		{Role: config.RoleBuilder, Ref: c.Builder.Image, Field: "builder.image", Line: 4},
		{Role: config.RoleDiverse, Ref: c.Reproduce.Diverse[0].Image, Field: "reproduce.diverse[0].image", Line: 16},
		{Role: config.RoleBase, Ref: c.Base, Field: "base", Line: 17},
	}
	if got := c.Images(); !reflect.DeepEqual(got, want) {
		t.Errorf("Images() = %+v\nwant %+v", got, want)
	}
	for _, im := range c.Images() {
		if im.Ref == c.Publish.Image {
			t.Errorf("Images() includes publish.image %q", im.Ref)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, config.ErrInvalid) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v; want ErrInvalid and fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "missing.yaml: reading configuration: ") {
		t.Errorf("missing file message: %v", err)
	}
	assertConfigError(t, err)

	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, append(doc(head), bytes.Repeat([]byte("#"), config.MaxSize)...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = config.Load(big)
	if err == nil || !strings.HasSuffix(err.Error(), "big.yaml: file is larger than the 1 MiB limit") {
		t.Errorf("oversize file: %v", err)
	}
	assertConfigError(t, err)
}

func TestSizeLimit(t *testing.T) {
	base := doc(head)
	atLimit := append(bytes.Clone(base), '#')
	atLimit = append(atLimit, bytes.Repeat([]byte("x"), config.MaxSize-len(atLimit))...)
	if _, err := config.Parse(atLimit, "buildguard.yaml"); err != nil {
		t.Errorf("file of exactly MaxSize bytes: %v", err)
	}
	_, err := config.Parse(append(atLimit, 'x'), "buildguard.yaml")
	if err == nil || err.Error() != "buildguard.yaml: file is larger than the 1 MiB limit" {
		t.Errorf("file of MaxSize+1 bytes: %v", err)
	}
}

// assertConfigError checks what the CLI relies on: errors.Is ErrInvalid and
// an ExitCode of 2, on the whole error and on each problem in it.
func assertConfigError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var coder interface{ ExitCode() int }
	if !errors.As(err, &coder) || coder.ExitCode() != 2 {
		t.Errorf("ExitCode of %v: want 2", err)
	}
	var es config.Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("%T is not a non-empty config.Errors", err)
	}
	for _, e := range es {
		if e.ExitCode() != 2 || !errors.Is(e, config.ErrInvalid) {
			t.Errorf("problem %v: ExitCode %d, errors.Is ErrInvalid %v", e, e.ExitCode(), errors.Is(e, config.ErrInvalid))
		}
	}
	var one *config.Error
	if !errors.As(err, &one) || one != es[0] {
		t.Errorf("errors.As(*Error) does not give the first problem")
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		err  config.Error
		want string
	}{
		{config.Error{File: "b.yaml", Line: 7, Field: "builder.command", Msg: "bad"}, "b.yaml:7: builder.command: bad"},
		{config.Error{File: "b.yaml", Field: "apiVersion", Msg: "required"}, "b.yaml: apiVersion: required"},
		{config.Error{File: "b.yaml", Line: 3, Msg: "invalid YAML"}, "b.yaml:3: invalid YAML"},
		{config.Error{Line: 3, Field: "base", Msg: "bad"}, "line 3: base: bad"},
		{config.Error{Field: "base", Msg: "bad"}, "base: bad"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	es := config.Errors{{Line: 1, Msg: "a"}, {Line: 2, Msg: "b"}}
	if got := es.Error(); got != "line 1: a\nline 2: b" {
		t.Errorf("Errors.Error() = %q", got)
	}
}

func TestValidateProgrammatic(t *testing.T) {
	c := &config.Config{
		APIVersion: config.APIVersion,
		Builder:    config.Builder{Image: "golang:1.26", Command: []string{"go", "build"}},
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.Reproduce.Runs != 2 || c.Builder.Timeout != config.DefaultTimeout || c.Builder.Workdir != "/src" {
		t.Errorf("SetDefaults: %+v", c)
	}
	c.Builder.Image = ""
	c.Trust.Keys = []config.Path{config.ResolvePath("cosign.pub", "/work")}
	c.Trust.InsecureIgnoreTlog = true
	c.Trust.Rekor.URL = "https://rekor.example"
	err := c.Validate()
	assertConfigError(t, err)
	want := "builder.image: required: the builder image, pinned by digest (name:tag@sha256:...)\n" +
		"trust.insecureIgnoreTlog: conflicts with trust.rekor.url: the log cannot be both ignored and consulted"
	if err.Error() != want {
		t.Errorf("Validate() = %q\nwant %q", err, want)
	}
	var nilConfig *config.Config
	assertConfigError(t, nilConfig.Validate())
}
