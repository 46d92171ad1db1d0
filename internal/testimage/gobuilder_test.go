package testimage

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// fakeGoRoot writes a small tree shaped like a GOROOT.
func fakeGoRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range map[string]string{
		"VERSION":                        "go1.26.8\ntime 2026-01-01T00:00:00Z\n",
		"go.env":                         "GOPROXY=https://proxy.golang.org,direct\n",
		"bin/go":                         "the go command",
		"bin/gofmt":                      "gofmt",
		"pkg/tool/linux_amd64/compile":   "compile",
		"pkg/tool/linux_amd64/vet":       "vet: not needed by go build",
		"pkg/include/textflag.h":         "header",
		"src/fmt/print.go":               "package fmt",
		"src/fmt/print_test.go":          "a test",
		"src/fmt/testdata/x":             "test data",
		"src/cmd/go/main.go":             "the go command's source",
		"lib/time/zoneinfo.zip":          "time zones",
		"misc/wasm/wasm_exec.js":         "not needed",
		"src/internal/abi/abi_amd64.go":  "package abi",
		"src/runtime/internal/x/asm.s":   "asm",
		"pkg/tool/linux_amd64/link":      "link",
		"pkg/tool/linux_amd64/asm":       "asm",
		"pkg/tool/linux_amd64/preprofil": "not needed",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// layerFiles lists the names in a layer and the content of its regular
// files.
func layerFiles(t *testing.T, l v1.Layer) ([]string, map[string]string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	bodies := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(ModTime) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, ModTime)
		}
		names = append(names, h.Name)
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			bodies[h.Name] = string(b)
		}
	}
	return names, bodies
}

func TestGoBuilderImages(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("toolchain layers are made on linux")
	}
	goroot := fakeGoRoot(t)
	tc, err := NewToolchain(goroot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if tc.Version != "go1.26.8" {
		t.Errorf("Version = %q", tc.Version)
	}
	names, _ := layerFiles(t, tc.Layer)
	for _, want := range []string{"usr/", "usr/local/", "usr/local/go/", "usr/local/go/src/fmt/", "usr/local/go/bin/go", "usr/local/go/pkg/tool/linux_amd64/compile", "usr/local/go/pkg/tool/linux_amd64/link",
		"usr/local/go/src/fmt/print.go", "usr/local/go/pkg/include/textflag.h", "usr/local/go/VERSION", "usr/local/go/go.env"} {
		if !slices.Contains(names, want) {
			t.Errorf("toolchain layer lacks %s", want)
		}
	}
	for _, n := range names {
		for _, bad := range []string{"/.", "//", "_test.go", "testdata", "src/cmd", "lib/", "misc/", "/vet", "preprofil"} {
			if strings.Contains(n, bad) {
				t.Errorf("toolchain layer holds %s, which go build does not need", n)
			}
		}
	}
	again, err := NewToolchain(goroot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := tc.Layer.Digest()
	d2, _ := again.Layer.Digest()
	if d1 != d2 {
		t.Errorf("the same toolchain gave layers %s and %s", d1, d2)
	}

	bb := []byte("\x7fELF a busybox")
	clean := GoBuilder{Toolchain: tc, Busybox: bb, Files: map[string]string{"etc/vendor": "one\n"}}
	other := GoBuilder{Toolchain: tc, Busybox: bb, Applets: []string{"sh"}, Files: map[string]string{"etc/vendor": "two\n"}, Labels: map[string]string{"vendor": "two"}}
	bad := clean
	bad.Payload = "PAYLOAD"
	digest := func(b GoBuilder) v1.Hash {
		t.Helper()
		img, err := b.Image()
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if same := clean; digest(clean) != digest(same) {
		t.Error("the same GoBuilder gave two digests")
	}
	if dc, do, db := digest(clean), digest(other), digest(bad); dc == do || dc == db || do == db {
		t.Errorf("clean %s, other %s, compromised %s: want three digests", dc, do, db)
	}

	img, err := bad.Image()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 3 {
		t.Fatalf("compromised image: %d layers, %v; want busybox, toolchain, wrapper", len(layers), err)
	}
	_, bodies := layerFiles(t, layers[2])
	if bodies["usr/local/go/bin/.go-real"] != "the go command" || !strings.Contains(bodies["usr/local/go/bin/go"], RealGo) || bodies["usr/share/.payload"] != "PAYLOAD" {
		t.Errorf("wrapper layer: %v", bodies)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cf.Config.Env, []string{"PATH=" + GoPath}) || cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("config: env %v, platform %s/%s", cf.Config.Env, cf.OS, cf.Architecture)
	}
	names, _ = layerFiles(t, mustLayer(t, img, 0))
	if !slices.Contains(names, "bin/busybox") || !slices.Contains(names, "bin/sh") || !slices.Contains(names, "etc/vendor") {
		t.Errorf("busybox layer: %v", names)
	}
	flat := mutate.Extract(img)
	defer flat.Close()
	if _, err := io.Copy(io.Discard, flat); err != nil {
		t.Fatal(err)
	}
	if _, err := (GoBuilder{Busybox: bb}).Image(); err == nil {
		t.Error("a GoBuilder without a toolchain made an image")
	}
}

func mustLayer(t *testing.T, img v1.Image, i int) v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls[i]
}

// The compromised go runs the real go with the same arguments, passes its
// failure on, and appends the payload to what `go build -o` wrote (both
// spellings of -o), and to nothing else.
func TestPayloadWrapper(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	realGo := filepath.Join(dir, "real-go")
	// A stand-in for go: writes "binary" to the -o file, fails on "fail".
	fake := `#!/bin/sh
prev=
for a in "$@"; do
	[ "$a" = fail ] && exit 7
	[ "$prev" = -o ] && printf binary > "$a"
	case $a in -o=*) printf binary > "${a#-o=}" ;; esac
	prev=$a
done
echo "real go $*"
`
	payloadFile := filepath.Join(dir, "payload")
	wrapper := filepath.Join(dir, "go")
	for p, body := range map[string]string{
		realGo:      fake,
		payloadFile: "PAYLOAD",
		wrapper:     strings.NewReplacer(RealGo, realGo, "/usr/share/.payload", payloadFile).Replace(payloadWrapper),
	} {
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, int) {
		t.Helper()
		out, err := exec.Command(sh, append([]string{wrapper}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if out, code := run("build", "-trimpath", "-o", a, "."); code != 0 || !strings.Contains(out, "real go build -trimpath -o "+a+" .") {
		t.Fatalf("go build -o: exit %d, %q", code, out)
	}
	if _, code := run("build", "-o="+b, "."); code != 0 {
		t.Fatalf("go build -o=: exit %d", code)
	}
	for _, p := range []string{a, b} {
		if got, _ := os.ReadFile(p); string(got) != "binaryPAYLOAD" {
			t.Errorf("%s = %q, want the payload appended", p, got)
		}
	}
	c := filepath.Join(dir, "c")
	if _, code := run("vet", "-o", c); code != 0 {
		t.Fatalf("go vet: exit %d", code)
	}
	if got, _ := os.ReadFile(c); string(got) != "binary" {
		t.Errorf("go vet's file = %q, want it untouched", got)
	}
	if _, code := run("build", "fail"); code != 7 {
		t.Errorf("a failing go build: exit %d, want 7 passed on", code)
	}
}

// WriteGoRoot keeps what a make.bash bootstrapping from the tree may need
// (every tool, the sources of cmd, lib, misc) and drops tests, testdata and
// pkg/obj; the same tree gives the same bytes.
func TestWriteGoRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("toolchain layers are made on linux")
	}
	goroot := fakeGoRoot(t)
	if err := os.MkdirAll(filepath.Join(goroot, "pkg", "obj", "go-build"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(goroot, "pkg", "obj", "go-build", "x"), []byte("cache"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var digests []v1.Hash
	for _, name := range []string{"a.tar", "b.tar"} {
		p := filepath.Join(dir, name)
		if err := WriteGoRoot(goroot, p); err != nil {
			t.Fatal(err)
		}
		l, err := FileLayer(p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
		names, _ := layerFiles(t, l)
		for _, want := range []string{"usr/local/go/bin/go", "usr/local/go/pkg/tool/linux_amd64/vet", "usr/local/go/pkg/tool/linux_amd64/preprofil",
			"usr/local/go/src/cmd/go/main.go", "usr/local/go/lib/time/zoneinfo.zip", "usr/local/go/misc/wasm/wasm_exec.js", "usr/local/go/VERSION"} {
			if !slices.Contains(names, want) {
				t.Errorf("Go tree layer lacks %s", want)
			}
		}
		for _, n := range names {
			for _, bad := range []string{"_test.go", "testdata", "pkg/obj"} {
				if strings.Contains(n, bad) {
					t.Errorf("Go tree layer holds %s", n)
				}
			}
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("the same tree gave layers %s and %s", digests[0], digests[1])
	}
}
