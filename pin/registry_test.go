package pin

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// testRegistry is go-containerregistry's in-process registry on loopback.
type testRegistry struct {
	host     string
	requests atomic.Int64
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.host = strings.TrimPrefix(srv.URL, "http://")
	return tr
}

// image pushes a random single-platform image and returns its digest.
func (tr *testRegistry) image(t testing.TB, repoTag string, seed int64) string {
	t.Helper()
	img, err := random.Image(64, 1, random.WithSource(rngSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: mustRootFS(t, img)})
	if err != nil {
		t.Fatal(err)
	}
	return tr.write(t, repoTag, img)
}

func mustRootFS(t testing.TB, img v1.Image) v1.RootFS {
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.RootFS
}

func (tr *testRegistry) write(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(tr.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// index pushes an image index with one image per platform and returns the
// index digest and the platform digests.
func (tr *testRegistry) index(t testing.TB, repoTag string, seed int64, platforms ...string) (string, map[string]string) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	digests := map[string]string{}
	for i, p := range platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := random.Image(64, 1, random.WithSource(rngSource(seed+int64(i))))
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		digests[p] = d.String()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	ref, err := name.ParseReference(tr.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), digests
}

// hubTransport sends requests meant for Docker Hub to the test registry, so
// that short names ("golang:1.26") can be tested without the internet.
type hubTransport struct{ host string }

func (h hubTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == "index.docker.io" || r.URL.Host == "registry-1.docker.io" {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = "http", h.host
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (tr *testRegistry) resolver() *Resolver {
	return &Resolver{Options: []remote.Option{remote.WithTransport(hubTransport{tr.host})}}
}
