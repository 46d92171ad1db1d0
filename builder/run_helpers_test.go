package builder

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/buildguard/buildguard/internal/harness"
)

// sharedCache is one rootfs cache for every runtime test of this package, so
// that each builder image is unpacked once per `go test` run.
var sharedCache struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedCache.dir != "" {
		_ = removeTree(sharedCache.dir)
	}
	os.Exit(code)
}

func testCache(t testing.TB) *Cache {
	t.Helper()
	sharedCache.once.Do(func() { sharedCache.dir, sharedCache.err = os.MkdirTemp("", "buildguard-test-cache-") })
	if sharedCache.err != nil {
		t.Fatal(sharedCache.err)
	}
	return &Cache{Dir: sharedCache.dir, SkipSync: true}
}

// requireRoot skips a test that needs root (crun and runc as used here),
// or fails it in CI, where every runtime test must run.
func requireRoot(t testing.TB) {
	t.Helper()
	harness.RequireRoot(t, "runtime tests need root (crun and runc start containers as root)")
}

// testRuntimes returns the runtimes each runtime test runs with.
var testRuntimes = []string{RuntimeCrun, RuntimeRunc, RuntimeRunsc}

// staticBusybox returns the bytes of Debian's static busybox.
func staticBusybox(t testing.TB) []byte {
	t.Helper()
	p := harness.Require(t, "busybox")
	f, err := elf.Open(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked: the static one is needed in a bare image (%s)", p, harness.InstallHint("busybox"))
		}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// busyboxApplets are linked to busybox in the test image.
var busyboxApplets = []string{"sh", "cat", "echo", "env", "id", "ls", "mkdir", "mkfifo", "nc", "sleep",
	"test", "touch", "true", "false", "yes", "head", "grep", "chmod", "ln", "seq", "dd", "rm", "cp", "sha256sum"}

// imageMarker is in /etc/buildguard-marker of the busybox image, and nowhere
// on the host.
const imageMarker = "only-in-the-image-3b1f"

// busyboxLayer is /bin/busybox with its applets and the marker file.
func busyboxLayer(t testing.TB) v1.Layer {
	t.Helper()
	ents := []tent{dir("bin", 0o755), file("bin/busybox", string(staticBusybox(t)), 0o755),
		dir("etc", 0o755), file("etc/buildguard-marker", imageMarker+"\n", 0o644)}
	for _, a := range busyboxApplets {
		ents = append(ents, symlink("bin/"+a, "busybox"))
	}
	return layer(t, ents...)
}

// busyboxImage is a builder image with busybox, the marker, and PATH=/bin.
// It has no /proc, /dev, /tmp or /src: the runtime needs mount points for
// them, and must not create them in the cached rootfs.
func busyboxImage(t testing.TB) v1.Image {
	t.Helper()
	return withPath(t, image(t, busyboxLayer(t)), "/bin")
}

func withPath(t testing.TB, img v1.Image, path string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Env = []string{"PATH=" + path}
	img, err = mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// unpacked unpacks img into the shared cache for the host's id mapping and
// returns the root and PATH.
func unpacked(t testing.TB, img v1.Image) (string, string) {
	t.Helper()
	ids, err := HostIDMap()
	if err != nil {
		t.Fatal(err)
	}
	root, err := testCache(t).UnpackMapped(context.Background(), img, ids)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ImagePath(img)
	if err != nil {
		t.Fatal(err)
	}
	return root, p
}

// busyboxStep returns a step in the busybox image running argv with
// runtime rt, a fresh source directory (with one file, hello.txt) and
// output directory, and a log in a temporary directory.
func busyboxStep(t testing.TB, rt string, argv ...string) Step {
	t.Helper()
	root, path := unpacked(t, busyboxImage(t))
	tmp := t.TempDir()
	src, out := filepath.Join(tmp, "src"), filepath.Join(tmp, "out")
	for _, d := range []string{src, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello from the source\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Step{Rootfs: root, ImagePath: path, Command: argv, Source: src, Out: out,
		Runtime: rt, Log: filepath.Join(tmp, "build.log"), SourceDateEpoch: 1700000000}
}

// forEachRuntime runs f as a subtest per runtime, each skipped (or failed
// in CI) when the runtime is missing.
func forEachRuntime(t *testing.T, f func(t *testing.T, rt string)) {
	t.Helper()
	requireRoot(t)
	for _, rt := range testRuntimes {
		t.Run(rt, func(t *testing.T) {
			harness.Require(t, rt)
			f(t, rt)
			assertNoLeftovers(t)
		})
	}
}

// assertNoLeftovers fails when a run of this process left its state
// directory or a container's cgroup behind (another process's runs, such as
// a demo running on the same machine, are not this test's).
func assertNoLeftovers(t *testing.T) {
	t.Helper()
	own := fmt.Sprintf("buildguard-%d-*", os.Getpid())
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), fmt.Sprintf("buildguard-run-%d-*", os.Getpid())))
	for _, pattern := range []string{own, "*/" + own, "*/*/" + own} {
		cg, _ := filepath.Glob(filepath.Join(cgroupRoot, pattern))
		left = append(left, cg...)
	}
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// logText returns the build log of res.
func logText(t testing.TB, res *Result) string {
	t.Helper()
	if res == nil {
		t.Fatal("no result")
	}
	b, err := os.ReadFile(res.Log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustRun runs s and fails the test unless the build succeeded.
func mustRun(t testing.TB, s Step) *Result {
	t.Helper()
	res, err := Run(context.Background(), s)
	if err != nil {
		var log string
		if res != nil {
			b, _ := os.ReadFile(res.Log)
			log = string(b)
		}
		t.Fatalf("Run: %v\nlog:\n%s", err, log)
	}
	return res
}

// mustFail runs s and returns its result and error, failing the test when
// the error does not match target.
func mustFail(t testing.TB, s Step, target error) (*Result, error) {
	t.Helper()
	res, err := Run(context.Background(), s)
	if !errors.Is(err, target) {
		var log string
		if res != nil {
			b, _ := os.ReadFile(res.Log)
			log = string(b)
		}
		t.Fatalf("Run: got error %v, want %v\nlog:\n%s", err, target, log)
	}
	return res, err
}

// sh returns the argv that runs script with the image's sh.
func sh(script string, args ...any) []string {
	return []string{"sh", "-c", fmt.Sprintf(script, args...)}
}

// lines splits text into its non-empty lines.
func lines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
