package sbom

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// craneOnce builds go-containerregistry's crane, a real Go binary with a
// dozen modules, once for the whole package, from the module cache.
var craneOnce struct {
	sync.Once
	path string
	err  error
	out  []byte
}

var sharedDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sbom-test-")
	if err != nil {
		panic(err)
	}
	sharedDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goBinary returns the path of a Go binary built for the tests.
func goBinary(t testing.TB) string {
	t.Helper()
	craneOnce.Do(func() {
		craneOnce.path = filepath.Join(sharedDir, "crane")
		cmd := exec.Command("go", "build", "-o", craneOnce.path, "github.com/google/go-containerregistry/cmd/crane")
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOPROXY=off", "CGO_ENABLED=0")
		craneOnce.out, craneOnce.err = cmd.CombinedOutput()
	})
	if craneOnce.err != nil {
		t.Fatalf("building crane: %v\n%s", craneOnce.err, craneOnce.out)
	}
	return craneOnce.path
}

// copyFile copies src to dst with mode 0755 (a fresh modification time).
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes content to dir/rel.
func writeFile(t testing.TB, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixtureTree makes a build output in a new directory under parent: a Go
// binary, a Python requirements file and a license.
func fixtureTree(t testing.TB, parent, name string) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	copyFile(t, goBinary(t), filepath.Join(dir, "bin", "crane"))
	writeFile(t, dir, "requirements.txt", "requests==2.31.0\nidna==3.7\n")
	writeFile(t, dir, "share/doc/LICENSE", mitLicense)
	return dir
}

// copyTree copies the regular files of src into dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		copyFile(t, p, filepath.Join(dst, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// field returns the string at a dotted path of a JSON document.
func field(t testing.TB, doc []byte, path string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: no object at %q", path, k)
		}
		v = m[k]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%s: not a string: %v", path, v)
	}
	return s
}

const mitLicense = `MIT License

Copyright (c) 2026 The Buildguard Authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`
