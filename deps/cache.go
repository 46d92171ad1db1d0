package deps

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/buildguard/buildguard/internal/atomicfile"
)

// cache is the content-addressed store under Options.CacheDir:
//
//	blobs/sha256/<hex>      verified bytes, named by their sha256
//	index/<algo>/<hex>      a lockfile hash (h1 of a zip or a go.mod,
//	                        an SRI digest) -> the sha256 of its blob
//	views/<hex>             prepared directories (a module proxy, an npm
//	                        cache), named by the digest of what they hold
//	tmp/                    downloads and views being written
//
// A blob is only ever renamed into place after it was verified, and is
// verified again each time it is used, so that a cache someone changed
// costs a refetch, never a wrong byte.
type cache struct{ dir string }

func openCache(dir string) (*cache, error) {
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("cache directory %q: %w: not an absolute path", dir, ErrConfig)
	}
	for _, d := range []string{"blobs/sha256", "index", "views", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating the dependency cache: %w", err)
		}
	}
	return &cache{dir: dir}, nil
}

func (c *cache) tmpDir() string { return filepath.Join(c.dir, "tmp") }

func (c *cache) blobPath(sum string) string {
	return filepath.Join(c.dir, "blobs", "sha256", sum)
}

// lookup returns the blob a lockfile hash (index key "algo/hex") was
// stored under, if any. What the blob holds is not checked here.
func (c *cache) lookup(key string) (string, bool) {
	data, err := os.ReadFile(filepath.Join(c.dir, "index", filepath.FromSlash(key)))
	if err != nil {
		return "", false
	}
	sum := strings.TrimSpace(string(data))
	if !isHex(sum, sha256.Size) {
		return "", false
	}
	return c.blobPath(sum), true
}

// put moves the verified file tmp into the store as the blob sum and
// points each index key at it.
func (c *cache) put(tmp, sum string, keys ...string) (string, error) {
	dst := c.blobPath(sum)
	if err := os.Chmod(tmp, 0o644); err != nil {
		return "", fmt.Errorf("storing blob %s: %w", sum, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("storing blob %s: %w", sum, err)
	}
	for _, k := range keys {
		p := filepath.Join(c.dir, "index", filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", fmt.Errorf("indexing blob %s: %w", sum, err)
		}
		if err := atomicfile.Write(p, []byte(sum+"\n"), 0o644); err != nil {
			return "", fmt.Errorf("indexing blob %s: %w", sum, err)
		}
	}
	return dst, nil
}

// viewFile is one file of a view: a verified blob (linked, or copied where
// a link cannot be made) or small generated contents.
type viewFile struct {
	rel  string // slash-separated, local to the view
	blob string // a blob path, or "" for data
	sum  string // sha256 hex of the contents
	data []byte
}

func dataFile(rel string, data []byte) viewFile {
	s := sha256.Sum256(data)
	return viewFile{rel: rel, data: data, sum: hex.EncodeToString(s[:])}
}

// view returns the directory views/<digest> that holds exactly files,
// making it (in tmp/, then renamed into place) when it is missing or is
// not what its name says. kind keeps views of different types apart.
func (c *cache) view(kind string, files []viewFile) (string, error) {
	files, err := normalizeView(files)
	if err != nil {
		return "", fmt.Errorf("%s view: %w", kind, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "buildguard deps view %s\n", kind)
	for _, f := range files {
		fmt.Fprintf(h, "%s %s\n", f.sum, f.rel)
	}
	dir := filepath.Join(c.dir, "views", hex.EncodeToString(h.Sum(nil)))
	if err := checkView(dir, files); err == nil {
		return dir, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		// Not what its name says: make it again.
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("%s view: removing a stale view: %w", kind, err)
		}
	}
	tmp, err := os.MkdirTemp(c.tmpDir(), "view-*")
	if err != nil {
		return "", fmt.Errorf("%s view: %w", kind, err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("%s view: %w", kind, err)
	}
	for _, f := range files {
		if err := writeViewFile(tmp, f); err != nil {
			return "", fmt.Errorf("%s view: %w", kind, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another Prefetch may have made the same view meanwhile.
		if cerr := checkView(dir, files); cerr != nil {
			return "", fmt.Errorf("%s view: %w", kind, err)
		}
	}
	return dir, nil
}

// normalizeView sorts files, drops exact duplicates, and refuses a path
// that is not local to the view or is given two different contents.
func normalizeView(files []viewFile) ([]viewFile, error) {
	sort.SliceStable(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	out := files[:0]
	for _, f := range files {
		if !filepath.IsLocal(filepath.FromSlash(f.rel)) || strings.Contains(f.rel, "\\") || filepath.ToSlash(filepath.Clean(f.rel)) != f.rel {
			return nil, fmt.Errorf("path %q: %w: outside the view", f.rel, ErrConfig)
		}
		if n := len(out); n > 0 && out[n-1].rel == f.rel {
			if out[n-1].sum != f.sum {
				return nil, fmt.Errorf("path %q: %w: two different contents", f.rel, ErrConfig)
			}
			continue
		}
		out = append(out, f)
	}
	// A path that is both a file and a directory cannot be laid out.
	for i := 1; i < len(out); i++ {
		if strings.HasPrefix(out[i].rel, out[i-1].rel+"/") {
			return nil, fmt.Errorf("path %q: %w: both a file and a directory", out[i-1].rel, ErrConfig)
		}
	}
	return out, nil
}

func writeViewFile(root string, f viewFile) error {
	dst := filepath.Join(root, filepath.FromSlash(f.rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if f.blob == "" {
		if err := os.WriteFile(dst, f.data, 0o644); err != nil {
			return err
		}
		return nil
	}
	if err := os.Link(f.blob, dst); err == nil {
		return nil
	}
	return copyFile(f.blob, dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkView reports whether dir holds exactly files: the same paths,
// regular files only, each with its contents. A file that is the blob
// itself (a hard link) was verified with the blob; any other is hashed.
// fs.ErrNotExist means there is no view yet.
func checkView(dir string, files []viewFile) error {
	if _, err := os.Lstat(dir); err != nil {
		return err
	}
	want := make(map[string]viewFile, len(files))
	for _, f := range files {
		want[f.rel] = f
	}
	seen := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, ok := want[filepath.ToSlash(rel)]
		if !ok || !d.Type().IsRegular() {
			return fmt.Errorf("unexpected %s in view %s", rel, dir)
		}
		seen++
		return sameContents(p, f)
	})
	if err != nil {
		return fmt.Errorf("view %s: %w", dir, errNotView{err})
	}
	if seen != len(files) {
		return fmt.Errorf("view %s: %w", dir, errNotView{errors.New("files missing")})
	}
	return nil
}

// errNotView hides fs.ErrNotExist from a walk inside an existing view, so
// that only a missing view reads as "none yet".
type errNotView struct{ err error }

func (e errNotView) Error() string { return e.err.Error() }

func sameContents(p string, f viewFile) error {
	if f.blob == "" {
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, f.data) {
			return fmt.Errorf("%s differs", p)
		}
		return nil
	}
	a, err := os.Stat(p)
	if err != nil {
		return err
	}
	if b, err := os.Stat(f.blob); err == nil && os.SameFile(a, b) {
		return nil
	}
	sum, err := sha256File(p)
	if err != nil {
		return err
	}
	if sum != f.sum {
		return fmt.Errorf("%s differs", p)
	}
	return nil
}

func sha256File(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func isHex(s string, n int) bool {
	if len(s) != 2*n {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
