package sbom

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/anchore/stereoscope/pkg/file"
	"github.com/anchore/stereoscope/pkg/image"
	syftsbom "github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"
	"github.com/anchore/syft/syft/source/directorysource"
	"github.com/anchore/syft/syft/source/stereoscopesource"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// sbomModel is syft's in-memory SBOM.
type sbomModel = syftsbom.SBOM

// UsageError is a target or option that cannot be described: nothing was
// attempted. Its exit code is 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ExitCode is 2: a usage error.
func (e *UsageError) ExitCode() int { return 2 }

// Target is what Generate describes: a directory or an image by digest.
type Target struct {
	// Dir is the directory to describe, or empty.
	Dir string
	// Image is the image to describe, or nil.
	Image *name.Digest
}

// ParseTarget reads s as an existing directory or, failing that, as an
// image reference that carries a digest (strictly: no registry or tag is
// filled in for it). Anything else is a *UsageError.
func ParseTarget(s string) (Target, error) {
	if s == "" {
		return Target{}, &UsageError{Msg: "name a directory or an image by digest (IMAGE@sha256:...)"}
	}
	st, err := os.Stat(s)
	switch {
	case err == nil && st.IsDir():
		return Target{Dir: s}, nil
	case err == nil:
		return Target{}, &UsageError{Msg: fmt.Sprintf("%s is not a directory: describe the directory that holds it", s)}
	case !errors.Is(err, os.ErrNotExist):
		return Target{}, fmt.Errorf("reading %s: %w", s, err)
	}
	if !strings.Contains(s, "@") {
		if _, perr := name.ParseReference(s); perr == nil && strings.Contains(s, ":") {
			return Target{}, &UsageError{Msg: fmt.Sprintf("image reference %q has no digest: name the image as %s@sha256:... (buildguard pin resolves one)", s, s)}
		}
		return Target{}, &UsageError{Msg: fmt.Sprintf("%s: no such directory, and not an image reference with a digest", s)}
	}
	d, err := name.NewDigest(s, name.StrictValidation)
	if err != nil {
		return Target{}, &UsageError{Msg: fmt.Sprintf("image reference %q: %v (want REGISTRY/REPO@sha256:HEX)", s, err)}
	}
	return Target{Image: &d}, nil
}

// String is the directory or the image reference.
func (t Target) String() string {
	if t.Image != nil {
		return t.Image.String()
	}
	return t.Dir
}

// open returns the syft source for t.
func (t Target) open(ctx context.Context, opts *Options) (source.Source, error) {
	if t.Image == nil {
		src, err := directorysource.New(directorysource.Config{
			Path:  t.Dir,
			Alias: source.Alias{Name: t.name(opts)},
		})
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", t.Dir, err)
		}
		return src, nil
	}
	return t.openImage(ctx, opts)
}

// name is what the documents call t: Options.Name, else "." for a
// directory; for an image, empty lets syft name it by its repository, with
// the digest as its version.
func (t Target) name(opts *Options) string {
	if opts.Name == "" && t.Image == nil {
		return "."
	}
	return opts.Name
}

// sanitize replaces the parts of s's source description that depend on
// where the target was read from: a directory's path (syft names the
// document and derives the CycloneDX bom-ref from it).
func (t Target) sanitize(s *sbomModel) {
	if _, ok := s.Source.Metadata.(source.DirectoryMetadata); ok {
		s.Source.Metadata = source.DirectoryMetadata{Path: s.Source.Name}
	}
}

// openImage fetches the image through go-containerregistry, which checks
// every manifest and blob against its digest, and reads it with stereoscope.
func (t Target) openImage(ctx context.Context, opts *Options) (source.Source, error) {
	ropts := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts.Remote...)
	desc, err := remote.Get(*t.Image, ropts...)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", t, err)
	}
	img, err := t.pickImage(desc, opts.Platform)
	if err != nil {
		return nil, err
	}
	if err := checkSize(img, t, opts.MaxImageBytes); err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t, err)
	}
	meta := []image.AdditionalMetadata{image.WithRepoDigests(t.Image.Context().Name() + "@" + digest.String())}
	if raw, err := img.RawManifest(); err == nil {
		meta = append(meta, image.WithManifest(raw), image.WithManifestDigest(digest.String()))
	}
	tmp := file.NewTempDirGenerator("buildguard-sbom")
	dir, err := tmp.NewDirectory("image")
	if err != nil {
		return nil, err
	}
	simg := image.New(img, tmp, dir, meta...)
	if err := simg.Read(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("reading %s: %w", t, err), simg.Cleanup(), tmp.Cleanup())
	}
	src := stereoscopesource.New(simg, stereoscopesource.ImageConfig{
		Reference: t.Image.String(),
		Alias:     source.Alias{Name: t.name(opts)},
	})
	return &cleanupSource{Source: src, tmp: tmp}, nil
}

// pickImage returns the image desc names, choosing from an index by
// platform: one named, or the only image there is.
func (t Target) pickImage(desc *remote.Descriptor, platform string) (v1.Image, error) {
	if !desc.MediaType.IsIndex() {
		img, err := t.mustImage(desc)
		if err != nil || platform == "" {
			return img, err
		}
		return img, t.checkPlatform(img, platform)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t, err)
	}
	var want *v1.Platform
	if platform != "" {
		if want, err = v1.ParsePlatform(platform); err != nil {
			return nil, &UsageError{Msg: fmt.Sprintf("platform %q: %v", platform, err)}
		}
	}
	var found []v1.Descriptor
	var names []string
	for _, m := range im.Manifests {
		if !m.MediaType.IsImage() || m.Platform == nil {
			continue
		}
		names = append(names, m.Platform.String())
		if want == nil || m.Platform.Satisfies(*want) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		return nil, &UsageError{Msg: fmt.Sprintf("%s is an index of %d platform(s) %v: choose one image with a platform (OS/ARCH)", t, len(names), names)}
	}
	img, err := idx.Image(found[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("reading %s (%s): %w", t, found[0].Platform, err)
	}
	return img, nil
}

func (t Target) mustImage(desc *remote.Descriptor) (v1.Image, error) {
	if !desc.MediaType.IsImage() {
		return nil, &UsageError{Msg: fmt.Sprintf("%s is a %s, not an image", t, desc.MediaType)}
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t, err)
	}
	return img, nil
}

// checkPlatform refuses a single image that is not for platform.
func (t Target) checkPlatform(img v1.Image, platform string) error {
	want, err := v1.ParsePlatform(platform)
	if err != nil {
		return &UsageError{Msg: fmt.Sprintf("platform %q: %v", platform, err)}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading %s: %w", t, err)
	}
	if got := cf.Platform(); got == nil || !got.Satisfies(*want) {
		return &UsageError{Msg: fmt.Sprintf("%s is an image for %v, not %s", t, cf.Platform(), platform)}
	}
	return nil
}

// checkSize refuses an image whose manifest declares more than max bytes of
// layers, before any layer is fetched.
func checkSize(img v1.Image, t Target, limit int64) error {
	if limit == 0 {
		limit = DefaultMaxImageBytes
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("reading %s: %w", t, err)
	}
	var total int64
	for _, l := range m.Layers {
		if l.Size < 0 || total+l.Size > limit {
			return fmt.Errorf("image %s: layers larger than %d bytes (raise with --max-sbom-image-bytes)", t, limit)
		}
		total += l.Size
	}
	return nil
}

// cleanupSource removes the image's unpacked layers when it is closed.
type cleanupSource struct {
	source.Source
	tmp *file.TempDirGenerator
}

func (s *cleanupSource) Close() error {
	return errors.Join(s.Source.Close(), s.tmp.Cleanup())
}
