package builder

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ImagePath returns PATH from img's config, or "" when the config sets none.
func ImagePath(img v1.Image) (string, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("reading the image config: %w", err)
	}
	for _, kv := range cf.Config.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v, nil
		}
	}
	return "", nil
}

// Build runs s in the builder image ref: it fetches the image by digest
// (Fetch; an unpinned ref is an *UnpinnedError), unpacks it into cache
// for s.IDs (Cache.UnpackMapped), fills in s.Rootfs and s.ImagePath, and calls Run. The
// result's Image is the digest of the image that ran, which for an index is
// that of its linux image for this machine's architecture.
func Build(ctx context.Context, ref string, cache *Cache, s Step, opts ...remote.Option) (*Result, error) {
	img, err := Fetch(ctx, ref, opts...)
	if err != nil {
		return nil, err
	}
	dig, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading the digest of %q: %w", ref, err)
	}
	if s.ImagePath, err = ImagePath(img); err != nil {
		return nil, fmt.Errorf("builder image %q: %w", ref, err)
	}
	if err := s.fillIDs(); err != nil {
		return nil, err
	}
	if s.Rootfs, err = cache.UnpackMapped(ctx, img, s.IDs); err != nil {
		return nil, fmt.Errorf("builder image %q: %w", ref, err)
	}
	res, err := Run(ctx, s)
	if res != nil {
		res.Image = dig.String()
	}
	return res, err
}
