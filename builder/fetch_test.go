package builder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// newRegistry starts go-containerregistry's registry on loopback. When
// tamper is set, every blob whose digest it names is served with one byte
// flipped (same length), as a compromised registry or mirror would.
func newRegistry(t *testing.T, tamper *v1.Hash) string {
	t.Helper()
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tamper == nil || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+tamper.String()) {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if i := bytes.Index(body, []byte("genuine")); i >= 0 {
			body[i] = 'G' // inside the file's content: the tar stays valid
		} else if len(body) > 0 {
			body[len(body)/2] ^= 0xff
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func push(t *testing.T, ref string, img v1.Image) v1.Hash {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFetchUnpinned proves a reference without a digest is refused before
// any request, with an error that says how to pin it and exit code 1.
func TestFetchUnpinned(t *testing.T) {
	for _, ref := range []string{"golang:1.26", "registry.example/builder", "localhost:5000/b:latest"} {
		_, err := Fetch(context.Background(), ref)
		var ue *UnpinnedError
		if !errors.As(err, &ue) || ue.ExitCode() != 1 || !errors.Is(err, ErrUnpinned) ||
			!strings.Contains(err.Error(), "buildguard pin --write") || !strings.Contains(err.Error(), ref) {
			t.Errorf("Fetch(%q) = %v, want an UnpinnedError naming the ref and `buildguard pin --write`", ref, err)
		}
	}
	for _, ref := range []string{"b@sha256:zz", "b@sha512:" + strings.Repeat("a", 128)} {
		var re *RefError
		if _, err := Fetch(context.Background(), ref); !errors.As(err, &re) || re.ExitCode() != 2 {
			t.Errorf("Fetch(%q) = %v, want a RefError", ref, err)
		}
	}
}

// TestFetchImageAndIndex proves a digest reference to an image returns it
// (tag@digest too), a reference to an index returns its linux/GOARCH image,
// and an index without one fails with a PlatformError listing what it has.
func TestFetchImageAndIndex(t *testing.T) {
	host := newRegistry(t, nil)
	ctx := context.Background()
	img := image(t, layer(t, file("marker", "image", 0o644)))
	d := push(t, host+"/b:v1", img)
	for _, ref := range []string{host + "/b@" + d.String(), host + "/b:v1@" + d.String()} {
		got, err := Fetch(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if gd, _ := got.Digest(); gd != d {
			t.Errorf("Fetch(%s) digest %s", ref, gd)
		}
	}

	plat := func(arch string) v1.Image {
		img, err := mutate.ConfigFile(image(t, layer(t, file("arch", arch, 0o644))), &v1.ConfigFile{OS: "linux", Architecture: arch})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	other := "s390x"
	if runtime.GOARCH == other {
		other = "amd64"
	}
	mine := plat(runtime.GOARCH)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: plat(other), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	only := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: plat(other), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}}},
	)
	for tag, ix := range map[string]v1.ImageIndex{"multi": idx, "other": only} {
		r, _ := name.NewTag(host + "/idx:" + tag)
		if err := remote.WriteIndex(r, ix); err != nil {
			t.Fatal(err)
		}
	}
	idxDigest, _ := idx.Digest()
	got, err := Fetch(ctx, host+"/idx@"+idxDigest.String())
	if err != nil {
		t.Fatal(err)
	}
	wantDigest, _ := mine.Digest()
	if gd, _ := got.Digest(); gd != wantDigest {
		t.Fatalf("index resolved to %s, want the %s image %s", gd, runtime.GOARCH, wantDigest)
	}
	root, err := (&Cache{Dir: t.TempDir()}).Unpack(ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	mustRead(t, root, "arch", runtime.GOARCH)

	onlyDigest, _ := only.Digest()
	_, err = Fetch(ctx, host+"/idx@"+onlyDigest.String())
	var pe *PlatformError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "linux/"+other) {
		t.Fatalf("err = %v, want a PlatformError listing linux/%s", err, other)
	}
}

// TestFetchTamperedBlob proves that a registry serving other bytes for a
// layer than its digest names (same length, valid tar, for an uncompressed
// layer; a flipped byte in a gzip layer) makes the unpack fail with an error
// about the layer's digest, and leaves no root.
func TestFetchTamperedBlob(t *testing.T) {
	ctx := context.Background()
	raw := tarBytes(t, []tent{file("payload", "genuine content", 0o755)})
	for name, l := range map[string]v1.Layer{
		"uncompressed": static.NewLayer(raw, types.OCIUncompressedLayer),
		"gzip":         layer(t, file("payload", "genuine content", 0o755)),
	} {
		t.Run(name, func(t *testing.T) {
			ld, _ := l.Digest()
			host := newRegistry(t, &ld)
			d := push(t, host+"/b:v1", image(t, layer(t, file("base", "ok", 0o644)), l))
			img, err := Fetch(ctx, host+"/b@"+d.String())
			if err != nil {
				t.Fatal(err)
			}
			c := &Cache{Dir: t.TempDir()}
			_, err = c.Unpack(ctx, img)
			var le *LayerError
			var dm *DigestMismatchError
			if !errors.As(err, &le) || le.Index != 1 || le.Layer != ld || !errors.As(err, &dm) || dm.Want != ld || le.ExitCode() != 1 {
				t.Fatalf("err = %v, want a DigestMismatchError in a LayerError for layer 1 %s, exit code 1", err, ld)
			}
			t.Log(err)
			assertNoRoot(t, c, img)
		})
	}
}
