package builder

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/buildguard/buildguard/internal/testimage"
)

// goImage is busybox plus the host's Go toolchain at /usr/local/go, as an
// uncompressed file-backed layer (testimage.NewToolchain) that is cheap to
// make.
func goImage(t testing.TB) v1.Image {
	t.Helper()
	goroot, err := testimage.HostGoRoot()
	if err != nil {
		t.Skipf("no Go toolchain: %v", err)
	}
	if goos, goarch := runtime.GOOS, runtime.GOARCH; goos != "linux" || goarch != "amd64" && goarch != "arm64" {
		t.Skipf("the toolchain layer is built for linux/amd64 and linux/arm64, not %s/%s", goos, goarch)
	}
	tc, err := testimage.NewToolchain(goroot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(image(t, busyboxLayer(t)), tc.Layer)
	if err != nil {
		t.Fatal(err)
	}
	return withPath(t, img, "/usr/local/go/bin:/bin")
}

const helloGo = `package main

import "fmt"

func main() { fmt.Println("hello from the sandbox") }
`

// A real compiler runs inside the sandbox, and two builds of the same
// source in the same image give bit-identical output (the same manifest
// digest), whichever runtime runs them; the program built runs and says
// hello.
func TestGoBuildReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the Go standard library twice per runtime")
	}
	requireRoot(t)
	root, path := unpacked(t, goImage(t))
	byRuntime := map[string]string{}
	forEachRuntime(t, func(t *testing.T, rt string) {
		src := t.TempDir()
		for name, body := range map[string]string{"go.mod": "module hello\n\ngo 1.26\n", "main.go": helloGo} {
			if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var digests []string
		var outs []string
		n := 2
		if rt == RuntimeRunsc {
			n = 1 // slow under gVisor: its one build must match the others'
		}
		for i := range n {
			out := t.TempDir()
			s := Step{Rootfs: root, ImagePath: path, Source: src, Out: out, Runtime: rt,
				Command: []string{"go", "build", "-trimpath", "-o", "/out/hello", "."},
				Env:     map[string]string{"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "-mod=mod"},
				Log:     filepath.Join(t.TempDir(), "build.log"), Timeout: 10 * time.Minute, SourceDateEpoch: 1700000000}
			res := mustRun(t, s)
			t.Logf("build %d with %s: %s, %s", i+1, res.Runtime, res.Duration.Round(time.Millisecond), res.Output.Digest())
			digests = append(digests, res.Output.Digest())
			outs = append(outs, out)
		}
		if n == 2 && digests[0] != digests[1] {
			a, _ := HashTree(context.Background(), outs[0])
			b, _ := HashTree(context.Background(), outs[1])
			t.Fatalf("two builds differ:\n%s\n%s", a.Canonical(), b.Canonical())
		}
		byRuntime[rt] = digests[0]
		for other, d := range byRuntime {
			if d != digests[0] {
				t.Errorf("%s built %s, %s built %s", rt, digests[0], other, d)
			}
		}
		got, err := exec.Command(filepath.Join(outs[0], "hello")).Output()
		if err != nil || string(got) != "hello from the sandbox\n" {
			t.Errorf("the built program: %q, %v", got, err)
		}
	})
}
