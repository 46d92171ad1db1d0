package builder

import (
	"archive/tar"
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// tent is one entry of a test layer.
type tent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	size int64 // when set, the declared size (the body is then not written)
	uid  int
	gid  int
}

// owned gives e to uid:gid.
func owned(e tent, uid, gid int) tent { e.uid, e.gid = uid, gid; return e }

func file(name, body string, mode int64) tent {
	return tent{name: name, typ: tar.TypeReg, body: body, mode: mode}
}
func dir(name string, mode int64) tent { return tent{name: name, typ: tar.TypeDir, mode: mode} }
func symlink(name, target string) tent { return tent{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) tent {
	return tent{name: name, typ: tar.TypeLink, link: target}
}

var testTime = time.Unix(1700000000, 0)

// tarBytes writes ents as a tar stream. An entry with a declared size stops
// the stream right after its header (a truncated, lying layer).
func tarBytes(t testing.TB, ents []tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, ModTime: testTime, Format: tar.FormatPAX, Uid: e.uid, Gid: e.gid}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.size != 0 {
			h.Size = e.size
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layer makes a gzip layer of ents with tarball.LayerFromOpener.
func layer(t testing.TB, ents ...tent) v1.Layer {
	t.Helper()
	b := tarBytes(t, ents)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// image stacks layers, bottom first, on an empty image.
func image(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// readFile reads a file of an unpacked root.
func readFile(t testing.TB, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// exists reports whether name exists (without following a final symlink).
func exists(root, name string) bool {
	_, err := os.Lstat(filepath.Join(root, name))
	return err == nil
}
