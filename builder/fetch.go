package builder

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/buildguard/buildguard/pin"
)

// Platform is the platform builds run on here: linux and the architecture
// this binary was built for.
func Platform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// Fetch returns the image that ref pins. ref must carry a sha256 digest
// ("name[:tag]@sha256:<hex>"); a reference without one is refused with an
// UnpinnedError. When the digest names an index, Fetch returns the index's
// image for Platform().
//
// The manifests are checked against their digests by go-containerregistry as
// they are fetched; layer bytes are fetched lazily and checked as they are
// read (Cache.Unpack checks them again). ctx governs every request made
// through the returned image, so it must outlive its use. opts are passed to
// go-containerregistry (authentication, transport); remote.WithContext(ctx)
// comes first so that opts can replace it.
func Fetch(ctx context.Context, ref string, opts ...remote.Option) (v1.Image, error) {
	if !strings.Contains(ref, "@") {
		return nil, &UnpinnedError{Ref: ref}
	}
	r, err := pin.ParseRef(ref)
	if err != nil {
		var re *pin.RefError
		if errors.As(err, &re) {
			err = re.Err
		}
		return nil, &RefError{Ref: ref, Err: err}
	}
	if !strings.HasPrefix(r.Digest, "sha256:") {
		return nil, &RefError{Ref: ref, Err: errors.New("only sha256 digests are accepted")}
	}
	o := append([]remote.Option{remote.WithContext(ctx)}, opts...)
	desc, err := remote.Get(r.Name(), o...)
	if err != nil {
		return nil, fmt.Errorf("fetching %q: %w", ref, err)
	}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("fetching index %q: %w", ref, err)
		}
		h, err := pickPlatform(idx, desc.Digest, Platform())
		if err != nil {
			return nil, err
		}
		img, err := idx.Image(h)
		if err != nil {
			return nil, fmt.Errorf("fetching %s image %s of %q: %w", pin.PlatformString(Platform()), h, ref, err)
		}
		return checkConfig(ref, img)
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("fetching image %q: %w", ref, err)
		}
		return checkConfig(ref, img)
	default:
		return nil, &RefError{Ref: ref, Err: fmt.Errorf("media type %q is neither an image nor an index", desc.MediaType)}
	}
}

// checkConfig refuses img when its manifest declares a config larger than
// pin.MaxConfigSize, before anything reads the config.
func checkConfig(ref string, img v1.Image) (v1.Image, error) {
	if _, err := img.Manifest(); err != nil {
		return nil, fmt.Errorf("fetching image %q: %w", ref, err)
	}
	if err := pin.CheckConfigSize(img); err != nil {
		return nil, &ConfigLimitError{Ref: ref, Err: err}
	}
	return img, nil
}

// pickPlatform returns the digest of the first image of idx for want (same OS
// and architecture; a variant, when want names one, must match too).
func pickPlatform(idx v1.ImageIndex, idxDigest v1.Hash, want v1.Platform) (v1.Hash, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading index %s: %w", idxDigest, err)
	}
	var have []string
	for _, m := range im.Manifests {
		if m.Platform == nil {
			continue
		}
		have = append(have, pin.PlatformString(*m.Platform))
		if !m.MediaType.IsImage() {
			continue
		}
		p := m.Platform
		if p.OS == want.OS && p.Architecture == want.Architecture && (want.Variant == "" || p.Variant == want.Variant) {
			return m.Digest, nil
		}
	}
	return v1.Hash{}, &PlatformError{Index: idxDigest, Want: pin.PlatformString(want), Have: have}
}
