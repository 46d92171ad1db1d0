package deps

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// testServer is an in-process registry or module proxy: it serves files by
// URL path, counts requests, and can be told to fail, hang or lie.
type testServer struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	files    map[string][]byte
	status   map[string]int // path -> status to answer instead
	hang     map[string]bool
	requests []string
	armed    bool // any request now fails the test
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	s := &testServer{t: t, files: map[string][]byte{}, status: map[string]int{}, hang: map[string]bool{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.Path)
	armed, hang, status := s.armed, s.hang[r.URL.Path], s.status[r.URL.Path]
	body, ok := s.files[r.URL.EscapedPath()]
	if !ok {
		body, ok = s.files[r.URL.Path]
	}
	s.mu.Unlock()
	if armed {
		s.t.Errorf("request to %s while the build must be offline", r.URL)
		http.Error(w, "offline", http.StatusForbidden)
		return
	}
	switch {
	case hang:
		<-r.Context().Done()
		return
	case status != 0:
		http.Error(w, http.StatusText(status), status)
		return
	case !ok:
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write(body)
}

func (s *testServer) set(path string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = body
}

func (s *testServer) fail(path string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[path] = status
}

func (s *testServer) hangOn(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang[path] = true
}

func (s *testServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

func (s *testServer) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = true
}

// testModule is a Go module version served by a test proxy.
type testModule struct {
	path, version string
	goMod         string
	files         map[string]string // name -> contents, go.mod added
	zip           []byte
	zipH1, modH1  string
}

type memFile struct {
	name string
	data []byte
}

func (f memFile) Path() string                 { return f.name }
func (f memFile) Lstat() (fs.FileInfo, error)  { return memInfo(f), nil }
func (f memFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(f.data)), nil }

type memInfo memFile

func (i memInfo) Name() string       { return filepath.Base(i.name) }
func (i memInfo) Size() int64        { return int64(len(i.data)) }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// newTestModule makes a module zip with modzip.Create and computes the
// hashes go.sum would hold, as the go command computes them.
func newTestModule(t *testing.T, path, version, goMod string, files map[string]string) *testModule {
	t.Helper()
	m := &testModule{path: path, version: version, goMod: goMod, files: files}
	var mf []modzip.File
	mf = append(mf, memFile{"go.mod", []byte(goMod)})
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mf = append(mf, memFile{n, []byte(files[n])})
	}
	var buf bytes.Buffer
	if err := modzip.Create(&buf, module.Version{Path: path, Version: version}, mf); err != nil {
		t.Fatal(err)
	}
	m.zip = buf.Bytes()
	m.zipH1 = hashZipBytes(t, m.zip)
	m.modH1 = hashGoMod(t, []byte(goMod))
	return m
}

func hashZipBytes(t *testing.T, zip []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "m.zip")
	if err := os.WriteFile(p, zip, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := dirhash.HashZip(p, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func hashGoMod(t *testing.T, data []byte) string {
	t.Helper()
	h, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (m *testModule) urlPath(t *testing.T, ext string) string {
	t.Helper()
	p, err := goProxyPath(module.Version{Path: m.path, Version: m.version}, ext)
	if err != nil {
		t.Fatal(err)
	}
	return "/" + p
}

// serve puts the module's .mod and .zip on s.
func (m *testModule) serve(t *testing.T, s *testServer) {
	s.set(m.urlPath(t, ".mod"), []byte(m.goMod))
	s.set(m.urlPath(t, ".zip"), m.zip)
}

func (m *testModule) sumLines() string {
	return m.path + " " + m.version + " " + m.zipH1 + "\n" + m.path + " " + m.version + "/go.mod " + m.modH1 + "\n"
}

func (m *testModule) modLine() string {
	return m.path + " " + m.version + "/go.mod " + m.modH1 + "\n"
}

// writeGoSpec writes a main module's go.mod and go.sum and returns its
// Spec.
func writeGoSpec(t *testing.T, goMod, goSum string) Spec {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), goMod)
	writeFile(t, filepath.Join(dir, "go.sum"), goSum)
	return Spec{Type: TypeGoMod, Dir: dir, Path: "."}
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// npmTarball makes a real package tarball: a gzip'd tar of
// package/package.json and package/index.js, byte-stable.
func npmTarball(t *testing.T, name, version string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	files := []struct{ name, data string }{
		{"package/package.json", `{"name":"` + name + `","version":"` + version + `","main":"index.js"}` + "\n"},
		{"package/index.js", "module.exports = " + `"` + name + "@" + version + `";` + "\n"},
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: time.Unix(499162500, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sri512(data []byte) string {
	s := sha512.Sum512(data)
	return "sha512-" + base64.StdEncoding.EncodeToString(s[:])
}

// npmTarballPath is the registry path of name@version's tarball.
func npmTarballPath(name, version string) string {
	return "/" + name + "/-/" + name[strings.LastIndex(name, "/")+1:] + "-" + version + ".tgz"
}

func testOptions(t *testing.T, env ...string) Options {
	t.Helper()
	return Options{CacheDir: t.TempDir(), Environ: env, Timeout: 10 * time.Second}
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}
