package trusttest

import (
	"bytes"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildguard/buildguard/trust"
)

// emptyConfigType is the config media type of an artifact manifest.
const emptyConfigType = "application/vnd.oci.empty.v1+json"

// PushImage pushes a random image as repo:latest and returns its reference
// by digest and its descriptor.
func PushImage(t testing.TB, repo name.Repository, opts ...remote.Option) (string, v1.Descriptor) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Tag("latest"), img, opts...); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	size, _ := img.Size()
	mt, _ := img.MediaType()
	return repo.String() + "@" + d.String(), v1.Descriptor{MediaType: mt, Digest: d, Size: size}
}

// RawManifest is a manifest pushed as written.
type RawManifest struct {
	Body []byte
	Type types.MediaType
}

// RawManifest returns the manifest.
func (m RawManifest) RawManifest() ([]byte, error) { return m.Body, nil }

// MediaType returns the manifest's media type.
func (m RawManifest) MediaType() (types.MediaType, error) { return m.Type, nil }

// Attach pushes data as a referrer of subject the way cosign v3 attaches a
// bundle: an artifact manifest of artifactType with an empty config and one
// layer. On a registry without the referrers API, go-containerregistry adds
// it to the sha256-<hex> referrers tag.
func Attach(t testing.TB, repo name.Repository, subject v1.Descriptor, artifactType string, data []byte, opts ...remote.Option) v1.Hash {
	t.Helper()
	cfg := static.NewLayer([]byte("{}"), emptyConfigType)
	layer := static.NewLayer(data, types.MediaType(artifactType))
	var descs []v1.Descriptor
	for _, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			t.Fatal(err)
		}
		d, _ := l.Digest()
		size, _ := l.Size()
		mt, _ := l.MediaType()
		descs = append(descs, v1.Descriptor{MediaType: mt, Digest: d, Size: size})
	}
	body := MustJSON(t, map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "artifactType": artifactType,
		"config": descs[0], "layers": descs[1:], "subject": subject,
		"annotations": map[string]string{"dev.sigstore.bundle.content": "dsse-envelope"},
	})
	h, _, err := v1.SHA256(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(repo.Digest(h.String()), RawManifest{Body: body, Type: types.OCIManifestSchema1}, opts...); err != nil {
		t.Fatal(err)
	}
	return h
}

// AttachBundle attaches a Sigstore bundle to subject.
func AttachBundle(t testing.TB, repo name.Repository, subject v1.Descriptor, bundle []byte, opts ...remote.Option) v1.Hash {
	t.Helper()
	return Attach(t, repo, subject, trust.BundleMediaType, bundle, opts...)
}
