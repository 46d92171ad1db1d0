package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ModTime is the modification time of every entry this package writes into
// a layer, so that the same content gives the same digest.
var ModTime = time.Unix(1700000000, 0)

// GoRoot is where the builder images keep the Go toolchain, and GoPath is
// their PATH.
const (
	GoRoot = "/usr/local/go"
	GoPath = GoRoot + "/bin:/bin"
)

// DefaultApplets are the busybox applets a GoBuilder links in /bin when it
// names none.
var DefaultApplets = []string{"sh", "cat", "cp", "echo", "env", "grep", "head", "id", "ls", "mkdir", "printf", "rm", "sha256sum", "test", "true"}

// Entry is a regular file, directory or symbolic link of a layer made by
// Layer.
type Entry struct {
	// Name is the path in the image, without a leading slash.
	Name string
	// Mode holds the permission bits; 0 means 0644 for a file and 0755 for
	// a directory.
	Mode int64
	// Body is a regular file's content.
	Body []byte
	// Link, when set, makes the entry a symbolic link to Link.
	Link string
	// Dir makes the entry a directory.
	Dir bool
}

// Layer returns an uncompressed layer holding entries in the order given.
// The same entries give the same digest.
func Layer(entries []Entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, ModTime: ModTime, Format: tar.FormatPAX}
		switch {
		case e.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.Link, 0o777
		case e.Dir:
			h.Typeflag, h.Name = tar.TypeDir, strings.TrimSuffix(e.Name, "/")+"/"
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Body))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.Name, err)
		}
		if _, err := tw.Write(e.Body); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer), nil
}

// fileLayer is an uncompressed layer backed by a tar file: a toolchain
// layer of a few hundred megabytes is hashed once and never compressed,
// which keeps an image that holds it cheap to make and to push.
type fileLayer struct {
	path   string
	digest v1.Hash
	size   int64
}

// FileLayer returns the uncompressed tar at path as a layer. The file is
// hashed now and read again whenever the layer is read, so it must not
// change while the layer is in use.
func FileLayer(path string) (v1.Layer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, n, err := v1.SHA256(f)
	if err != nil {
		return nil, fmt.Errorf("hashing %s: %w", path, err)
	}
	return &fileLayer{path: path, size: n, digest: d}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }

// HostGoRoot returns the GOROOT of the go command on PATH.
func HostGoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOROOT: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// goTools are the parts of pkg/tool a CGO_ENABLED=0 build uses.
var goTools = map[string]bool{"asm": true, "compile": true, "link": true, "cgo": true}

// WriteGoToolchain writes the Go toolchain at goroot, trimmed to what
// `go build` of a CGO_ENABLED=0 program needs (no tests, testdata or
// sources of cmd; of pkg/tool only asm, compile, link and cgo), to path as
// an uncompressed tar of usr/local/go. The same toolchain gives the same
// bytes.
func WriteGoToolchain(goroot, path string) error {
	return writeGoTree(goroot, path, func(rel string, d fs.DirEntry) (bool, bool) {
		switch {
		case rel == ".":
			return true, true
		case d.IsDir() && (d.Name() == "testdata" || rel == "src/cmd" || rel == "pkg/obj"):
			return false, false
		case strings.HasSuffix(rel, "_test.go"):
			return false, false
		case strings.HasPrefix(rel, "pkg/tool/") && !d.IsDir():
			return goTools[d.Name()], false
		}
		for _, top := range []string{"bin", "pkg", "src", "go.env", "VERSION"} {
			if rel == top || strings.HasPrefix(rel, top+"/") {
				return true, true
			}
		}
		return false, false
	})
}

// WriteGoRoot writes the whole Go tree at goroot (every tool and the
// sources of cmd, which a make.bash bootstrapping from it may need), but
// for tests, testdata and pkg/obj, to path as an uncompressed tar of
// usr/local/go. The same tree gives the same bytes.
func WriteGoRoot(goroot, path string) error {
	return writeGoTree(goroot, path, func(rel string, d fs.DirEntry) (bool, bool) {
		switch {
		case d.IsDir() && (d.Name() == "testdata" || rel == "pkg/obj"):
			return false, false
		case strings.HasSuffix(rel, "_test.go"):
			return false, false
		}
		return true, true
	})
}

// writeGoTree writes what keep keeps of goroot (keep says whether to write
// an entry, and whether to descend into it) to path as an uncompressed tar
// of usr/local/go, owned by 0:0 with ModTime.
func writeGoTree(goroot, path string, keep func(rel string, d fs.DirEntry) (bool, bool)) (err error) {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("a Go toolchain layer is made on linux only, not %s", runtime.GOOS)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	for _, d := range []string{"usr/", "usr/local/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: ModTime, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	prefix := strings.TrimPrefix(GoRoot, "/") + "/"
	// Through os.Root, so that nothing outside goroot is read.
	root, err := os.OpenRoot(goroot)
	if err != nil {
		return err
	}
	defer root.Close()
	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ok, descend := keep(rel, d)
		if !ok {
			if d.IsDir() && !descend {
				return fs.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = prefix + rel
		switch {
		case rel == ".":
			h.Name = prefix
		case fi.IsDir():
			h.Name += "/"
		}
		h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime, h.Format = 0, 0, "", "", ModTime, tar.FormatPAX
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		src, err := root.Open(rel)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing the Go toolchain of %s: %w", goroot, err)
	}
	return tw.Close()
}

// Toolchain is a Go toolchain layer, made once and shared by the builder
// images that hold it.
type Toolchain struct {
	// GoRoot is the host GOROOT it was made from.
	GoRoot string
	// Version is its Go release, e.g. "go1.26.8".
	Version string
	// Layer holds it at /usr/local/go.
	Layer v1.Layer
}

// NewToolchain writes the toolchain at goroot into dir (see
// WriteGoToolchain) and returns it as a layer backed by that file.
func NewToolchain(goroot, dir string) (*Toolchain, error) {
	v, err := os.ReadFile(filepath.Join(goroot, "VERSION"))
	if err != nil {
		return nil, fmt.Errorf("reading the Go version: %w", err)
	}
	p := filepath.Join(dir, "go-toolchain.tar")
	if err := WriteGoToolchain(goroot, p); err != nil {
		return nil, err
	}
	l, err := FileLayer(p)
	if err != nil {
		return nil, err
	}
	version, _, _ := strings.Cut(string(v), "\n")
	return &Toolchain{GoRoot: goroot, Version: strings.TrimSpace(version), Layer: l}, nil
}

// StaticBusybox reads the busybox binary at path and checks that it is
// statically linked: a bare image has no dynamic loader. Debian's is
// /bin/busybox from busybox-static.
func StaticBusybox(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%s is dynamically linked: a bare image needs a static busybox (apt-get install -y busybox-static)", path)
		}
	}
	return b, nil
}

// RealGo is where a compromised GoBuilder keeps the real go command, beside
// the wrapper that replaces it.
const RealGo = GoRoot + "/bin/.go-real"

// payloadWrapper is the go of a compromised builder: it runs the real go
// and then appends a payload to every file `go build -o FILE` wrote, the
// way a poisoned compiler injects a miner or a backdoor into what it
// builds. It does so the same way every time, so its builds are
// reproducible.
const payloadWrapper = `#!/bin/sh
# go: the real go, then a payload appended to every binary it builds.
` + RealGo + ` "$@" || exit
[ "$1" = build ] || exit 0
out= prev=
for a in "$@"; do
	[ "$prev" = -o ] && out=$a
	case $a in -o=*) out=${a#-o=} ;; esac
	prev=$a
done
[ -n "$out" ] && [ -f "$out" ] && cat /usr/share/.payload >> "$out"
exit 0
`

// GoBuilder describes a builder image: a static busybox with links for its
// applets in /bin, and a Go toolchain at /usr/local/go, with PATH
// /usr/local/go/bin:/bin. Two GoBuilders with the same toolchain but other
// applets, files or labels are different images (different digests) that
// build the same bits.
type GoBuilder struct {
	// Toolchain is the Go toolchain layer; required.
	Toolchain *Toolchain
	// Busybox is a static busybox binary (StaticBusybox); required.
	Busybox []byte
	// Applets are linked to busybox in /bin; nil means DefaultApplets. A
	// compromised image needs sh and cat.
	Applets []string
	// Files are extra files (path without a leading slash -> content, mode
	// 0644) in the busybox layer, such as a vendor marker.
	Files map[string]string
	// Labels are the image config's labels.
	Labels map[string]string
	// Payload, when not empty, makes a compromised image: an extra layer
	// replaces go with a wrapper that runs the real go (moved to RealGo)
	// and appends Payload to every file that `go build -o FILE` writes.
	Payload string
}

// BusyboxLayer is a layer with the static busybox bb at /bin/busybox, a
// link in /bin for each applet, and the extra entries.
func BusyboxLayer(bb []byte, applets []string, extra ...Entry) (v1.Layer, error) {
	ents := []Entry{{Name: "bin", Dir: true}, {Name: "bin/busybox", Mode: 0o755, Body: bb}}
	for _, a := range applets {
		ents = append(ents, Entry{Name: "bin/" + a, Link: "busybox"})
	}
	return Layer(append(ents, extra...))
}

// BusyboxImage is a one-layer linux image for this machine's architecture
// holding BusyboxLayer(bb, applets, extra...), with PATH=/bin: the smallest
// builder image a test can run a shell command in.
func BusyboxImage(bb []byte, applets []string, extra ...Entry) (v1.Image, error) {
	l, err := BusyboxLayer(bb, applets, extra...)
	if err != nil {
		return nil, err
	}
	return linuxImage(func(c *v1.Config) { c.Env = []string{"PATH=/bin"} }, l)
}

// PushBusybox pushes the BusyboxImage of the static busybox at bbPath
// (StaticBusybox), with applets and extra, to ref and returns its digest:
// the builder image a test pushes to run shell commands in.
func PushBusybox(ctx context.Context, ref, bbPath string, applets []string, extra ...Entry) (string, error) {
	bb, err := StaticBusybox(bbPath)
	if err != nil {
		return "", err
	}
	img, err := BusyboxImage(bb, applets, extra...)
	if err != nil {
		return "", err
	}
	return Push(ctx, ref, img)
}

// Image makes the image. Layers: busybox, the toolchain and, for a
// compromised image, the wrapper.
func (b GoBuilder) Image() (v1.Image, error) {
	if b.Toolchain == nil || len(b.Busybox) == 0 {
		return nil, errors.New("a GoBuilder needs a toolchain and a busybox")
	}
	applets := b.Applets
	if applets == nil {
		applets = DefaultApplets
	}
	var files []Entry
	for _, p := range slices.Sorted(maps.Keys(b.Files)) {
		files = append(files, Entry{Name: p, Body: []byte(b.Files[p])})
	}
	bb, err := BusyboxLayer(b.Busybox, applets, files...)
	if err != nil {
		return nil, err
	}
	layers := []v1.Layer{bb, b.Toolchain.Layer}
	if b.Payload != "" {
		realGo, err := os.ReadFile(filepath.Join(b.Toolchain.GoRoot, "bin", "go"))
		if err != nil {
			return nil, fmt.Errorf("reading the real go: %w", err)
		}
		w, err := Layer([]Entry{
			{Name: strings.TrimPrefix(RealGo, "/"), Mode: 0o755, Body: realGo},
			{Name: strings.TrimPrefix(GoRoot, "/") + "/bin/go", Mode: 0o755, Body: []byte(payloadWrapper)},
			{Name: "usr/share/.payload", Body: []byte(b.Payload)},
		})
		if err != nil {
			return nil, err
		}
		layers = append(layers, w)
	}
	return linuxImage(func(c *v1.Config) {
		c.Env = []string{"PATH=" + GoPath}
		if len(b.Labels) > 0 {
			c.Labels = maps.Clone(b.Labels)
		}
	}, layers...)
}
