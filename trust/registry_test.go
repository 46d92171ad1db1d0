package trust_test

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildguard/buildguard/trust/trusttest"
)

// testRegistry is go-containerregistry's in-process registry on loopback,
// with or without the OCI referrers API.
type testRegistry struct {
	host     string
	requests atomic.Int64
	// fallbackReads counts reads of sha256-<hex> referrers tags (not of
	// legacy .sig and .att tags).
	fallbackReads atomic.Int64
	// referrersAPI says whether the registry serves the referrers API;
	// without it attachments are listed under the sha256-<hex> tag.
	referrersAPI bool
}

func newTestRegistry(t testing.TB, referrersAPI bool) *testRegistry {
	t.Helper()
	tr := &testRegistry{referrersAPI: referrersAPI}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(referrersAPI))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.requests.Add(1)
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/sha256-") && !strings.HasSuffix(r.URL.Path, ".sig") && !strings.HasSuffix(r.URL.Path, ".att") {
			tr.fallbackReads.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.host = strings.TrimPrefix(srv.URL, "http://")
	return tr
}

// forEachRegistry runs fn against a registry with the referrers API and one
// without (the tag fallback).
func forEachRegistry(t *testing.T, fn func(t *testing.T, reg *testRegistry)) {
	for _, api := range []bool{true, false} {
		name := "referrers API"
		if !api {
			name = "referrers tag fallback"
		}
		t.Run(name, func(t *testing.T) { fn(t, newTestRegistry(t, api)) })
	}
}

func (r *testRegistry) repo(t testing.TB, repo string) name.Repository {
	t.Helper()
	rp, err := name.NewRepository(r.host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

// image pushes a random image to repo and returns its reference by digest
// and its descriptor.
func (r *testRegistry) image(t testing.TB, repo string) (string, v1.Descriptor) {
	t.Helper()
	return trusttest.PushImage(t, r.repo(t, repo))
}

// attach pushes data as a referrer of subject, as cosign v3 does.
func (r *testRegistry) attach(t testing.TB, repo string, subject v1.Descriptor, artifactType string, data []byte) v1.Hash {
	t.Helper()
	return trusttest.Attach(t, r.repo(t, repo), subject, artifactType, data)
}

// attachBundle attaches a Sigstore bundle to subject.
func (r *testRegistry) attachBundle(t testing.TB, repo string, subject v1.Descriptor, bundle []byte) v1.Hash {
	t.Helper()
	return trusttest.AttachBundle(t, r.repo(t, repo), subject, bundle)
}

// fallbackIndex reads the sha256-<hex> referrers tag of subject.
func (r *testRegistry) fallbackIndex(t testing.TB, repo string, subject v1.Hash) *v1.IndexManifest {
	t.Helper()
	ref, err := name.ParseReference(r.host + "/" + repo + ":" + strings.Replace(subject.String(), ":", "-", 1))
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(desc.Manifest, &im); err != nil {
		t.Fatal(err)
	}
	return &im
}

// putFallbackIndex replaces the sha256-<hex> referrers tag of subject, as
// anyone who can push a tag can.
func (r *testRegistry) putFallbackIndex(t testing.TB, repo string, subject v1.Hash, im *v1.IndexManifest) {
	t.Helper()
	ref, err := name.ParseReference(r.host + "/" + repo + ":" + strings.Replace(subject.String(), ":", "-", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(ref, trusttest.RawManifest{Body: trusttest.MustJSON(t, im), Type: types.OCIImageIndex}); err != nil {
		t.Fatal(err)
	}
}

// anonymous is the keychain of tests: no Docker config is read.
var anonymous = authn.NewMultiKeychain()
