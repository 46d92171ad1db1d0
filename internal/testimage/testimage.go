// Package testimage makes small, reproducible OCI images for tests, the demo
// and benchmarks, and pushes them to a registry.
package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Files returns a one-layer linux image holding files (path -> content,
// mode 0644), for this machine's architecture. The same files give the same
// digest.
func Files(files map[string]string) (v1.Image, error) {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		body := []byte(files[p])
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return nil, err
	}
	return linuxImage(nil, layer)
}

// linuxImage is layers on an empty image for linux on this machine's
// architecture, its config then changed by set (nil: left as is).
func linuxImage(set func(*v1.Config), layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if set != nil {
		set(&cf.Config)
	}
	return mutate.ConfigFile(img, cf)
}

// Push writes img to ref and returns its digest.
func Push(ctx context.Context, ref string, img v1.Image, opts ...remote.Option) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", err
	}
	if err := remote.Write(r, img, append([]remote.Option{remote.WithContext(ctx)}, opts...)...); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// PushFiles is Files then Push.
func PushFiles(ctx context.Context, ref string, files map[string]string, opts ...remote.Option) (string, error) {
	img, err := Files(files)
	if err != nil {
		return "", err
	}
	return Push(ctx, ref, img, opts...)
}

// Image is layers on an empty linux image for this machine's architecture,
// with env and labels (nil: none) as its config's: a builder image made of
// layers written elsewhere, such as a Debian root file system and a Go
// toolchain.
func Image(env []string, labels map[string]string, layers ...v1.Layer) (v1.Image, error) {
	return linuxImage(func(c *v1.Config) {
		c.Env = slices.Clone(env)
		if len(labels) > 0 {
			c.Labels = maps.Clone(labels)
		}
	}, layers...)
}
