package publish

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/buildguard/buildguard/builder"
)

// Layer returns the reproducible layer of an output tree: the manifest's
// entries in its (path) order, each under prefix, with the manifest's
// normalised modes, owner and group 0 with no names, and every time
// SOURCE_DATE_EPOCH, compressed with gzip and of media type mt. The files
// are read through an os.Root at dir when the layer is read, and each must
// still hash as the manifest says.
func Layer(dir string, m *builder.Manifest, prefix string, epoch int64, mt types.MediaType) (v1.Layer, error) {
	if special := m.Special(); len(special) > 0 {
		return nil, fmt.Errorf("output holds entries that cannot be published: %v", special)
	}
	mtime := time.Unix(epoch, 0).UTC()
	open := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTar(pw, dir, m, prefix, mtime)) }()
		return pr, nil
	}
	return tarball.LayerFromOpener(open, tarball.WithMediaType(mt))
}

func writeTar(w io.Writer, dir string, m *builder.Manifest, prefix string, mtime time.Time) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tw := tar.NewWriter(w)
	for _, d := range parents(prefix) {
		if err := tw.WriteHeader(header(d+"/", tar.TypeDir, 0o755, 0, mtime)); err != nil {
			return err
		}
	}
	for _, e := range m.Entries {
		mode, err := strconv.ParseInt(e.Mode, 8, 64)
		if err != nil {
			return fmt.Errorf("entry %s: mode %q", e.Path, e.Mode)
		}
		name := path.Join(prefix, e.Path)
		switch e.Type {
		case builder.TypeDir:
			err = tw.WriteHeader(header(name+"/", tar.TypeDir, mode, 0, mtime))
		case builder.TypeSymlink:
			h := header(name, tar.TypeSymlink, mode, 0, mtime)
			h.Linkname = e.Target
			err = tw.WriteHeader(h)
		case builder.TypeFile:
			err = writeFile(tw, root, e, header(name, tar.TypeReg, mode, e.Size, mtime))
		default:
			err = fmt.Errorf("entry %s: type %s cannot be published", e.Path, e.Type)
		}
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, root *os.Root, e builder.ManifestEntry, h *tar.Header) error {
	f, err := root.Open(e.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, sum), io.LimitReader(f, e.Size))
	if err != nil {
		return fmt.Errorf("entry %s: %w", e.Path, err)
	}
	if n != e.Size || hex.EncodeToString(sum.Sum(nil)) != e.SHA256 {
		return fmt.Errorf("entry %s: changed since it was hashed", e.Path)
	}
	return nil
}

func header(name string, typ byte, mode, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: mtime}
}

// parents lists the directories of prefix, outermost first.
func parents(prefix string) []string {
	prefix = path.Clean(prefix)
	if prefix == "." || prefix == "/" || prefix == "" {
		return nil
	}
	var out []string
	for p := prefix; p != "." && p != "/"; p = path.Dir(p) {
		out = append([]string{p}, out...)
	}
	return out
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
