package testimage

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestFilesIsReproducibleAndPushes(t *testing.T) {
	a, err := Files(map[string]string{"b": "2", "a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Files(map[string]string{"a": "1", "b": "2"})
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("same files, different digests: %s %s", da, db)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/t:1"
	d, err := Push(context.Background(), ref, a)
	if err != nil || d != da.String() {
		t.Fatalf("Push = %s, %v; want %s", d, err, da)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	data, _ := io.ReadAll(rc)
	if !strings.Contains(string(data), "a") || !strings.Contains(string(data), "1") {
		t.Errorf("pushed image lacks its files")
	}
}
