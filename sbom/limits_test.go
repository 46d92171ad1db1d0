package sbom

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// TestLimitImageBytesEdge: an image whose layers add up to exactly
// MaxImageBytes is accepted; one byte less refuses it before any layer is
// fetched, naming the limit; zero is DefaultMaxImageBytes (8Gi, as
// docs/limits.md says).
func TestLimitImageBytesEdge(t *testing.T) {
	l1, err := random.Layer(1000, "application/vnd.oci.image.layer.v1.tar+gzip")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := random.Layer(2000, "application/vnd.oci.image.layer.v1.tar+gzip")
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, l := range m.Layers {
		total += l.Size
	}
	target := Target{Dir: "image"}
	if err := checkSize(img, target, total); err != nil {
		t.Errorf("layers of %d bytes under a limit of %d: %v", total, total, err)
	}
	err = checkSize(img, target, total-1)
	if want := "layers larger than " + strconv.FormatInt(total-1, 10) + " bytes"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("layers of %d bytes under a limit of %d: err = %v, want %q", total, total-1, err, want)
	}
	if err := checkSize(img, target, 0); err != nil {
		t.Errorf("the default limit: %v", err)
	}
	if DefaultMaxImageBytes != 8<<30 {
		t.Errorf("DefaultMaxImageBytes = %d, want 8Gi", DefaultMaxImageBytes)
	}
	o := Options{MaxImageBytes: -1}
	if err := o.Validate(); err == nil {
		t.Error("a negative MaxImageBytes was accepted")
	}
}
