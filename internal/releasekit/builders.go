package releasekit

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

// GoBuilders are a clean Go builder image and an independent one, made
// from this machine's Go toolchain and Debian's static busybox.
type GoBuilders struct {
	// GoVersion is the toolchain's Go release, e.g. "go1.26.8".
	GoVersion string
	// GoRoot is the toolchain's directory on this machine.
	GoRoot string
	// Busybox is the path of the static busybox on this machine.
	Busybox string
	// Clean is busybox and the Go toolchain at /usr/local/go, as the
	// usual vendor ships it.
	Clean v1.Image
	// Independent has another busybox applet set and vendor marker and
	// the same toolchain layer: its digest differs, its compiler does
	// not, so it shows the diverse-builder mechanism only. With
	// BuilderOptions.IndependentGoRoot it holds that toolchain instead.
	Independent v1.Image
	// IndependentGoVersion is the independent builder's Go release.
	IndependentGoVersion string

	clean testimage.GoBuilder
}

// BuilderOptions change the independent builder.
type BuilderOptions struct {
	// IndependentGoRoot, when set, is the Go tree the independent builder
	// holds instead of this machine's: a toolchain made another way, such
	// as the one `make demo-ddc` bootstraps from gccgo. Then the
	// independent builder is independent for real.
	IndependentGoRoot string
	// IndependentFiles are more files of the independent builder (path
	// without a leading slash -> content), such as the record of how its
	// toolchain was made.
	IndependentFiles map[string]string
	// IndependentLabels are more labels of the independent builder.
	IndependentLabels map[string]string
}

// MakeGoBuilders makes the builder images, writing the toolchain layer
// into dir. vendor prefixes the images' vendor labels.
func MakeGoBuilders(dir, vendor string) (*GoBuilders, error) {
	return MakeGoBuildersWith(dir, vendor, BuilderOptions{})
}

// MakeGoBuildersWith is MakeGoBuilders with opts.
func MakeGoBuildersWith(dir, vendor string, opts BuilderOptions) (*GoBuilders, error) {
	goroot, err := testimage.HostGoRoot()
	if err != nil {
		return nil, err
	}
	bbPath, err := harness.Lookup("busybox")
	if err != nil {
		return nil, err
	}
	bb, err := testimage.StaticBusybox(bbPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	tc, err := testimage.NewToolchain(goroot, dir)
	if err != nil {
		return nil, err
	}
	labels := func(name string) map[string]string {
		return map[string]string{"org.opencontainers.image.vendor": vendor + ": " + name, "org.opencontainers.image.title": tc.Version + " builder"}
	}
	clean := testimage.GoBuilder{Toolchain: tc, Busybox: bb, Labels: labels("the usual vendor"),
		Files: map[string]string{"etc/vendor": "the usual vendor\n"}}
	independent := testimage.GoBuilder{Toolchain: tc, Busybox: bb, Labels: labels("another vendor"),
		Applets: []string{"sh", "ash", "cat", "ls", "env", "printf", "true", "false", "wc", "od"},
		Files:   map[string]string{"etc/vendor": "another vendor\n"}}
	if opts.IndependentGoRoot != "" {
		idir := filepath.Join(dir, "independent")
		if err := os.MkdirAll(idir, 0o755); err != nil {
			return nil, err
		}
		itc, err := testimage.NewToolchain(opts.IndependentGoRoot, idir)
		if err != nil {
			return nil, fmt.Errorf("the independent builder's toolchain: %w", err)
		}
		independent.Toolchain = itc
		independent.Labels["org.opencontainers.image.title"] = itc.Version + " builder"
	}
	maps.Copy(independent.Files, opts.IndependentFiles)
	maps.Copy(independent.Labels, opts.IndependentLabels)
	b := &GoBuilders{GoVersion: tc.Version, GoRoot: goroot, Busybox: bbPath, clean: clean, IndependentGoVersion: independent.Toolchain.Version}
	if b.Clean, err = clean.Image(); err != nil {
		return nil, fmt.Errorf("clean builder image: %w", err)
	}
	if b.Independent, err = independent.Image(); err != nil {
		return nil, fmt.Errorf("independent builder image: %w", err)
	}
	return b, nil
}

// Compromised makes a compromised builder image: the clean one plus a
// layer whose go runs the real go, then appends payload to every binary
// it builds.
func (b *GoBuilders) Compromised(payload string) (v1.Image, error) {
	c := b.clean
	c.Payload = payload
	img, err := c.Image()
	if err != nil {
		return nil, fmt.Errorf("compromised builder image: %w", err)
	}
	return img, nil
}

// Push pushes img to ref (a name:tag) and returns ref@digest, the digest
// computed locally.
func Push(ctx context.Context, ref string, img v1.Image) (string, error) {
	d, err := testimage.Push(ctx, ref, img)
	if err != nil {
		return "", err
	}
	return ref + "@" + d, nil
}
