package builder

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fileLayer is an uncompressed layer backed by a tar file: a 100 MB
// toolchain layer is hashed once and never gzipped, which keeps the test's
// image cheap to make.
type fileLayer struct {
	path   string
	digest v1.Hash
	size   int64
}

func newFileLayer(t testing.TB, path string) *fileLayer {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return &fileLayer{path: path, size: n, digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}}
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }

// goTools are the parts of pkg/tool a CGO_ENABLED=0 build uses.
var goTools = map[string]bool{"asm": true, "compile": true, "link": true, "cgo": true}

// goToolchainTar writes the host's Go toolchain, trimmed to what `go build`
// of a program needs (no tests, testdata or cmd sources), as a tar of
// usr/local/go, and returns its path.
func goToolchainTar(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skipf("no Go toolchain: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	if goos, goarch := runtime.GOOS, runtime.GOARCH; goos != "linux" || goarch != "amd64" && goarch != "arm64" {
		t.Skipf("the toolchain layer is built for linux/amd64 and linux/arm64, not %s/%s", goos, goarch)
	}
	p := filepath.Join(t.TempDir(), "go.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, d := range []string{"usr/", "usr/local/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: testTime}); err != nil {
			t.Fatal(err)
		}
	}
	keep := func(rel string, d fs.DirEntry) (bool, bool) { // keep it, descend into it
		switch {
		case rel == ".":
			return true, true
		case d.IsDir() && (d.Name() == "testdata" || rel == "src/cmd" || rel == "pkg/obj"):
			return false, false
		case strings.HasSuffix(rel, "_test.go"):
			return false, false
		case strings.HasPrefix(rel, "pkg/tool/") && !d.IsDir():
			return goTools[d.Name()], false
		}
		for _, top := range []string{"bin", "pkg", "src", "go.env", "VERSION"} {
			if rel == top || strings.HasPrefix(rel, top+"/") {
				return true, true
			}
		}
		return false, false
	}
	err = filepath.WalkDir(goroot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(goroot, path)
		ok, descend := keep(filepath.ToSlash(rel), d)
		if !ok {
			if d.IsDir() && !descend {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = "usr/local/go/" + filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name = strings.TrimSuffix(h.Name, "./") + "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime = 0, 0, "", "", testTime
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			src, err := os.Open(path)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// goImage is busybox plus the Go toolchain at /usr/local/go.
func goImage(t testing.TB) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(image(t, busyboxLayer(t)), newFileLayer(t, goToolchainTar(t)))
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
		for i := range 2 {
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
		if digests[0] != digests[1] {
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
