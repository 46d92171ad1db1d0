package reproduce

import (
	"context"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

// These tests run real builds through a real OCI runtime, in builder images
// made here from Debian's static busybox.

var applets = []string{"sh", "cat", "echo", "hostname", "date", "od", "head", "tr", "id", "env", "pwd", "printf"}

// busyboxImage returns an image with busybox, its applets and the given
// extra files (path -> content, mode 0755).
func busyboxImage(t *testing.T, extra map[string]string) v1.Image {
	t.Helper()
	bb, err := testimage.StaticBusybox("/bin/busybox")
	if err != nil {
		harness.Require(t, "busybox")
		t.Skipf("%v", err)
	}
	var files []testimage.Entry
	for _, p := range slices.Sorted(maps.Keys(extra)) {
		files = append(files, testimage.Entry{Name: p, Mode: 0o755, Body: []byte(extra[p])})
	}
	img, err := testimage.BusyboxImage(bb, applets, files...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type sandboxEnv struct {
	host  string
	cache *builder.Cache
	src   string
	// jobs is how many builds run at once; 0 means 2.
	jobs int
}

// newSandbox checks for root and a runtime, and starts a registry.
func newSandbox(t *testing.T) *sandboxEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("real builds need root (crun and runc run rootful containers)")
	}
	harness.Require(t, "crun")
	harness.Require(t, "runc")
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.txt"), []byte("the program\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &sandboxEnv{host: strings.TrimPrefix(srv.URL, "http://"), cache: &builder.Cache{Dir: t.TempDir(), SkipSync: true}, src: src}
}

func (e *sandboxEnv) push(t *testing.T, name string, img v1.Image) string {
	t.Helper()
	ref := e.host + "/" + name + ":1"
	d, err := testimage.Push(context.Background(), ref, img)
	if err != nil {
		t.Fatal(err)
	}
	return ref + "@" + d
}

func (e *sandboxEnv) reproduce(t *testing.T, image string, command []string, diverse ...string) *Outcome {
	t.Helper()
	b := BuilderFunc(func(ctx context.Context, image string, s builder.Step) (*builder.Result, error) {
		return builder.Build(ctx, image, e.cache, s)
	})
	base := builder.Step{Command: command, Source: e.src, SourceDateEpoch: 1700000000}
	jobs := e.jobs
	if jobs == 0 {
		jobs = 2
	}
	out, err := Reproduce(context.Background(), b, base, Options{Image: image, Diverse: diverse, Runs: 2, Variations: AllVariations(), Jobs: jobs, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRealDeterministicBuildPasses(t *testing.T) {
	e := newSandbox(t)
	main := e.push(t, "busybox", busyboxImage(t, nil))
	other := e.push(t, "busybox-other", busyboxImage(t, map[string]string{"etc/vendor": "another vendor\n"}))
	out := e.reproduce(t, main, []string{"sh", "-c", "cat main.txt > /out/app && mkdir -p /out/doc && printf 'v1\\n' > /out/doc/VERSION"}, other)
	if len(out.Mismatches) != 0 {
		t.Fatalf("mismatches: %+v", out.Mismatches)
	}
	if len(out.Runs) != 3 || out.Runs[2].Result.Image == out.Runs[0].Result.Image {
		t.Errorf("want 3 runs on two different builder digests: %+v", out.Runs)
	}
}

// A build that embeds what it must not depend on fails, naming the file
// and, by bisection, the variation.
func TestRealBuildsThatEmbedTheEnvironment(t *testing.T) {
	e := newSandbox(t)
	img := e.push(t, "busybox", busyboxImage(t, nil))
	for _, tt := range []struct {
		variation, script string
	}{
		{VarPath, "pwd > /out/app"},
		{VarHostname, "hostname > /out/app"},
		{VarTimezone, "date -d @0 +%H%M > /out/app"},
		{VarUmask, "umask > /out/app"},
		{VarUID, "id -u > /out/app"},
		{VarLocale, "echo $LANG > /out/app"},
	} {
		t.Run(tt.variation, func(t *testing.T) {
			out := e.reproduce(t, img, []string{"sh", "-c", tt.script})
			if len(out.Mismatches) != 1 {
				t.Fatalf("mismatches: %+v", out.Mismatches)
			}
			m := out.Mismatches[0]
			if m.Kind != KindVariation || m.Variation != tt.variation || strings.Join(m.Changed, ",") != "app" {
				t.Errorf("kind %s variation %q changed %v; want variation %q on app", m.Kind, m.Variation, m.Changed, tt.variation)
			}
		})
	}
}

func TestRealRandomOutputIsNondeterministic(t *testing.T) {
	e := newSandbox(t)
	img := e.push(t, "busybox", busyboxImage(t, nil))
	out := e.reproduce(t, img, []string{"sh", "-c", "od -An -N16 -tx1 /dev/urandom > /out/app"})
	if len(out.Mismatches) != 1 || out.Mismatches[0].Kind != KindNondeterministic || out.Mismatches[0].Variation != "" {
		t.Fatalf("mismatches: %+v", out.Mismatches)
	}
}

// The attack buildguard exists for: a compromised compiler that injects the
// same payload every time passes the same-builder check and is caught by
// the independent builder, with both digests named.
func TestRealCompromisedBuilderIsCaughtByTheDiverseBuilder(t *testing.T) {
	e := newSandbox(t)
	clean := "#!/bin/sh\ncat \"$1\" > \"$2\"\n"
	poisoned := "#!/bin/sh\ncat \"$1\" > \"$2\"\necho 'PAYLOAD: mine crypto' >> \"$2\"\n"
	bad := e.push(t, "compiler", busyboxImage(t, map[string]string{"bin/compile": poisoned}))
	good := e.push(t, "compiler-independent", busyboxImage(t, map[string]string{"bin/compile": clean, "etc/vendor": "independent\n"}))
	out := e.reproduce(t, bad, []string{"compile", "main.txt", "/out/app"}, good)
	if len(out.Mismatches) != 1 {
		t.Fatalf("mismatches: %+v", out.Mismatches)
	}
	m := out.Mismatches[0]
	if m.Kind != KindBuilderDisagreement || m.RunA != 1 || m.RunB != 3 {
		t.Fatalf("mismatch %+v", m)
	}
	if m.ImageA != out.Runs[0].Result.Image || m.ImageB != out.Runs[2].Result.Image || m.ImageA == m.ImageB {
		t.Errorf("digests: %s %s", m.ImageA, m.ImageB)
	}
	if len(m.Explanations) != 1 || !strings.Contains(m.Explanations[0].Diff, "-PAYLOAD: mine crypto") {
		t.Errorf("the payload is not shown: %+v", m.Explanations)
	}
}

func TestRealWallClockOutputIsNondeterministic(t *testing.T) {
	e := newSandbox(t)
	img := e.push(t, "busybox", busyboxImage(t, nil))
	// /proc/uptime ticks every 10 ms: a stand-in for a build that stamps
	// the time it ran. The runs go one after another: two started at once
	// can read the same tick.
	e.jobs = 1
	out := e.reproduce(t, img, []string{"sh", "-c", "cat /proc/uptime > /out/built-at"})
	if len(out.Mismatches) != 1 || out.Mismatches[0].Kind != KindNondeterministic || strings.Join(out.Mismatches[0].Changed, ",") != "built-at" {
		t.Fatalf("mismatches: %+v", out.Mismatches)
	}
}

// A Go program built by the same Go release in two different builder
// images (different digests) gives the same bits: what makes the diverse
// builder check usable for real Go projects.
func TestRealGoProgramAgreesAcrossBuilderImages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go program four times in the sandbox")
	}
	e := newSandbox(t)
	goroot, err := testimage.HostGoRoot()
	if err != nil {
		t.Skipf("no Go toolchain on this host to put in a builder image: %v", err)
	}
	tc, err := testimage.NewToolchain(goroot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bb, err := testimage.StaticBusybox("/bin/busybox")
	if err != nil {
		harness.Require(t, "busybox")
		t.Fatal(err)
	}
	mk := func(name string, files map[string]string) string {
		img, err := testimage.GoBuilder{Toolchain: tc, Busybox: bb, Files: files}.Image()
		if err != nil {
			t.Fatal(err)
		}
		return e.push(t, name, img)
	}
	main := mk("go-builder", nil)
	other := mk("go-builder-independent", map[string]string{"etc/vendor": "another vendor\n"})
	src := t.TempDir()
	for name, content := range map[string]string{
		"go.mod":  "module example.com/hello\n\ngo 1.26\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := BuilderFunc(func(ctx context.Context, image string, s builder.Step) (*builder.Result, error) {
		return builder.Build(ctx, image, e.cache, s)
	})
	base := builder.Step{
		Command: []string{"go", "build", "-trimpath", "-ldflags=-buildid=", "-o", "/out/hello", "."},
		Source:  src, SourceDateEpoch: 1700000000, Timeout: 5 * time.Minute,
		Env: map[string]string{"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "-mod=mod"},
	}
	out, err := Reproduce(context.Background(), b, base, Options{
		Image: main, Diverse: []string{other}, Runs: 2, Variations: []string{VarPath, VarTimezone, VarUmask, VarUID},
		Jobs: 2, Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Mismatches) != 0 {
		t.Fatalf("mismatches: %+v", out.Mismatches)
	}
	if out.Runs[0].Result.Image == out.Runs[2].Result.Image {
		t.Errorf("the two builder images have the same digest")
	}
}
