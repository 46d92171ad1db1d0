package builder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func newCache(t testing.TB) *Cache {
	return &Cache{Dir: filepath.Join(t.TempDir(), "rootfs"), Logf: t.Logf}
}

// TestUnpackFilesModesSymlinks proves the unpacked root has the layers' files
// with their modes (setuid/setgid dropped, sticky kept), symlinks with their
// targets as written, hardlinks sharing an inode, and the cache layout.
func TestUnpackFilesModesSymlinks(t *testing.T) {
	img := image(t, layer(t,
		dir("bin", 0o755),
		file("bin/tool", "#!/bin/sh\n", 0o755),
		file("bin/suid", "s", 0o4755),
		dir("tmp", 0o1777),
		dir("ro", 0o555),
		file("ro/f", "read only", 0o444),
		file("implicit/parent/f", "deep", 0o640),
		symlink("usr/bin/tool", "/bin/tool"),
		symlink("rel", "bin/tool"),
		hardlink("bin/tool2", "bin/tool"),
	))
	c := newCache(t)
	root, err := c.Unpack(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	dig, _ := img.Digest()
	if want := filepath.Join(c.Dir, "sha256-"+dig.Hex); root != want {
		t.Fatalf("root = %s, want %s", root, want)
	}
	if b, err := os.ReadFile(root + ".complete"); err != nil || !strings.Contains(string(b), dig.String()) {
		t.Fatalf("marker: %q, %v", b, err)
	}
	modes := map[string]fs.FileMode{
		"bin":               fs.ModeDir | 0o755,
		"bin/tool":          0o755,
		"bin/suid":          0o755,
		"tmp":               fs.ModeDir | fs.ModeSticky | 0o777,
		"ro":                fs.ModeDir | 0o555,
		"ro/f":              0o444,
		"implicit/parent/f": 0o640,
		".":                 fs.ModeDir | 0o755,
	}
	for name, want := range modes {
		fi, err := os.Lstat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
	if got := readFile(t, root, "implicit/parent/f"); got != "deep" {
		t.Errorf("implicit/parent/f = %q", got)
	}
	for name, want := range map[string]string{"usr/bin/tool": "/bin/tool", "rel": "bin/tool"} {
		if got, err := os.Readlink(filepath.Join(root, name)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", name, got, err, want)
		}
	}
	a, _ := os.Stat(filepath.Join(root, "bin/tool"))
	b, _ := os.Stat(filepath.Join(root, "bin/tool2"))
	if !os.SameFile(a, b) {
		t.Error("bin/tool2 is not a hardlink of bin/tool")
	}
	if !a.ModTime().Equal(testTime) {
		t.Errorf("bin/tool mtime %v, want %v", a.ModTime(), testTime)
	}
	// A second call finds the complete root and does not unpack again.
	again, err := c.Unpack(context.Background(), img)
	if err != nil || again != root {
		t.Fatalf("second Unpack = %s, %v", again, err)
	}
}

// TestWhiteoutsAcrossLayers proves .wh.NAME removes a lower layer's file and
// directory, .wh..wh..opq hides a lower directory's content while keeping the
// upper layer's, whatever order the marker comes in, and a whiteout never
// removes what its own layer wrote.
func TestWhiteoutsAcrossLayers(t *testing.T) {
	lower := layer(t,
		file("etc/keep", "keep", 0o644),
		file("etc/gone", "gone", 0o644),
		file("dirgone/a", "a", 0o644),
		file("opq/old", "old", 0o644),
		file("opq/sub/old", "old", 0o644),
		file("opq2/old", "old", 0o644),
		file("replaced", "file", 0o644),
	)
	upper := layer(t,
		file("etc/.wh.gone", "", 0o644),
		file(".wh.dirgone", "", 0o644),
		file("opq/new", "new", 0o644), // before the marker
		file("opq/sub/new", "new", 0o644),
		file("opq/.wh..wh..opq", "", 0o644),
		file("opq2/.wh..wh..opq", "", 0o644), // before the entry
		file("opq2/new", "new", 0o644),
		file("same", "same layer", 0o644),
		file(".wh.same", "", 0o644), // same layer: does not apply
		dir("replaced", 0o755),
		file(".wh.nonexistent", "", 0o644),
	)
	root, err := newCache(t).Unpack(context.Background(), image(t, lower, upper))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"etc/keep", "opq/new", "opq/sub/new", "opq2/new", "same"} {
		if !exists(root, name) {
			t.Errorf("%s is missing", name)
		}
	}
	for _, name := range []string{"etc/gone", "dirgone", "opq/old", "opq/sub/old", "opq2/old", "etc/.wh.gone", "opq/.wh..wh..opq", ".wh.nonexistent"} {
		if exists(root, name) {
			t.Errorf("%s exists", name)
		}
	}
	if fi, err := os.Lstat(filepath.Join(root, "replaced")); err != nil || !fi.IsDir() {
		t.Errorf("replaced is not a directory: %v %v", fi, err)
	}
}

// TestCrashLeftoversNotTrusted proves a root without its marker (a crash
// after rename) and a half-written temporary directory are discarded and the
// root unpacked afresh, and that a marker for another digest is not trusted.
func TestCrashLeftoversNotTrusted(t *testing.T) {
	img := image(t, layer(t, file("real", "real", 0o644)))
	dig, _ := img.Digest()
	c := newCache(t)
	final := filepath.Join(c.Dir, "sha256-"+dig.Hex)
	tmp := filepath.Join(c.Dir, ".tmp-sha256-"+dig.Hex+"-123")
	for _, d := range []string{final, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "junk"), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A marker of another version/digest must not make the junk root trusted.
	if err := os.WriteFile(final+".complete", []byte("buildguard rootfs v0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := c.Unpack(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if exists(root, "junk") || !exists(root, "real") {
		t.Fatal("a half-unpacked root was trusted")
	}
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary directory left: %v", err)
	}
}

// tamperedLayer serves other bytes than its digest names, as a lying
// registry or a corrupt local store would.
type tamperedLayer struct {
	v1.Layer
	bytes []byte
}

func (l tamperedLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.bytes)), nil
}

// TestDigestMismatchLocal proves the unpacker checks layer bytes itself, not
// only through go-containerregistry's remote layers: a layer whose bytes do
// not match its digest fails with a DigestMismatchError (exit code 1) and
// leaves no root behind.
func TestDigestMismatchLocal(t *testing.T) {
	good := layer(t, file("a", "genuine", 0o644))
	evil := layer(t, file("a", "payload", 0o644))
	rc, err := evil.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	img := image(t, tamperedLayer{Layer: good, bytes: b})
	c := newCache(t)
	_, err = c.Unpack(context.Background(), img)
	var dm *DigestMismatchError
	var le *LayerError
	if !errors.As(err, &dm) || !errors.As(err, &le) || le.ExitCode() != 1 {
		t.Fatalf("err = %v, want a DigestMismatchError in a LayerError with exit code 1", err)
	}
	t.Log(err)
	assertNoRoot(t, c, img)
}

// assertNoRoot checks that a failed unpack left no root, marker or
// temporary directory.
func assertNoRoot(t *testing.T, c *Cache, img v1.Image) {
	t.Helper()
	dig, _ := img.Digest()
	ents, _ := os.ReadDir(c.Dir)
	for _, e := range ents {
		if e.Name() != "sha256-"+dig.Hex+".lock" {
			t.Errorf("failed unpack left %s", e.Name())
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	c := &Cache{Dir: t.TempDir(), Limits: Limits{MaxBytes: -1}}
	if _, err := c.Unpack(context.Background(), image(t)); err == nil {
		t.Fatal("negative limit accepted")
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	if d, _ := DefaultDir(); d != "/x/cache/buildguard/rootfs" {
		t.Errorf("DefaultDir = %s", d)
	}
	t.Setenv("XDG_CACHE_HOME", "relative")
	t.Setenv("HOME", "/home/u")
	if d, _ := DefaultDir(); d != "/home/u/.cache/buildguard/rootfs" {
		t.Errorf("DefaultDir = %s", d)
	}
}
