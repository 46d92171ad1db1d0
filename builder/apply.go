package builder

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
)

// OCI whiteout names (image-spec, layer.md).
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	whiteoutMeta   = ".wh..wh." // other AUFS metadata: ignored
)

// dirMeta is a directory's mode and time, applied after all layers so that a
// read-only directory does not stop later layers from writing into it and
// creating children does not change its time afterwards.
type dirMeta struct {
	mode     fs.FileMode
	mtime    time.Time
	uid, gid int
}

// applier writes layers into one root. Every filesystem operation goes
// through root (an os.Root), which refuses any path that leaves the root; on
// top of that, names are cleaned (a name that climbs out with ".." is
// refused) and parent directories are resolved by resolve, which follows
// symlinks as the container will see them (absolute targets and ".." stay
// inside the root), so writes "through" a symlink land inside the root.
//
// Ownership is applied only when ids is set (Cache.UnpackMapped): each
// entry then belongs to the host id its owner maps to in the build's user
// namespace, so no file is ever owned by a host id outside the mapping.
// Without ids every file belongs to the unpacking user. Extended attributes (file capabilities among them) are not applied
// either, and setuid/setgid bits are dropped: a builder needs none of them.
type applier struct {
	root   *os.Root
	limits Limits
	logf   func(format string, args ...any)
	// ids, when set, is the mapping whose host ids own the entries.
	ids *IDMap

	entries int64
	bytes   int64
	dirs    map[string]dirMeta
	// inLayer holds the paths (and their ancestors) the current layer wrote;
	// an opaque directory keeps them and a whiteout does not remove them.
	inLayer map[string]bool
	// resolved caches resolve(dir) for the current layer; cleared whenever a
	// symlink is created or anything existing is removed.
	resolved map[string]string
	skipped  map[string]int
	buf      []byte
}

func newApplier(root *os.Root, limits Limits, logf func(string, ...any)) *applier {
	return &applier{
		root:   root,
		limits: limits,
		logf:   logf,
		dirs:   map[string]dirMeta{},
		buf:    make([]byte, 1<<20),
	}
}

// ctxReader fails reads once ctx is done, so a cancelled unpack stops
// promptly even inside a large file.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// applyLayer reads layer i's compressed bytes once, hashing them as they are
// read, and applies its entries. Entries are written to the (temporary) root
// before the digest can be known; when the digest does not match, the error
// makes the caller discard the whole root, so nothing from an unverified
// layer is ever used.
func (a *applier) applyLayer(ctx context.Context, i int, l v1.Layer) error {
	want, err := l.Digest()
	if err != nil {
		return &LayerError{Index: i, Err: fmt.Errorf("reading digest: %w", err)}
	}
	lerr := func(entry string, err error) error {
		return &LayerError{Index: i, Layer: want, Entry: entry, Err: err}
	}
	if want.Algorithm != "sha256" {
		return lerr("", unsafef("digest algorithm %q is not supported", want.Algorithm))
	}
	rc, err := l.Compressed()
	if err != nil {
		return lerr("", fmt.Errorf("opening: %w", err))
	}
	defer rc.Close()
	hr := &hashReader{r: ctxReader{ctx, rc}, h: sha256.New()}
	br := bufio.NewReaderSize(hr, 1<<16)
	// fail reports err, unless the layer's bytes turn out not to match its
	// digest: then that is the cause (a swapped layer fails in any number of
	// ways part-way), and it is what is reported.
	fail := func(entry string, err error) error {
		if ctx.Err() == nil {
			size, serr := l.Size()
			_, _ = io.CopyBuffer(io.Discard, io.LimitReader(br, max(size, 0)+1), a.buf)
			if serr == nil && (hr.eof || hr.n == size) && hr.digest() != want {
				return lerr(entry, &DigestMismatchError{Want: want, Got: hr.digest()})
			}
			if serr == nil && !hr.eof && hr.n < size {
				// The stream broke off: say so, rather than leave a bare
				// "unexpected EOF" that reads like a bad entry.
				return lerr(entry, fmt.Errorf("layer stream cut off after %d of %d bytes: %w", hr.n, size, err))
			}
		}
		return lerr(entry, err)
	}
	ur, closeU, err := decompress(br)
	if err != nil {
		return fail("", err)
	}
	defer closeU()

	a.inLayer = map[string]bool{}
	a.resolved = map[string]string{}
	a.skipped = map[string]int{}
	tr := tar.NewReader(ur)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail("", fmt.Errorf("reading: %w", err))
		}
		if err := a.entry(hdr, tr); err != nil {
			return fail(hdr.Name, err)
		}
	}
	// Read what follows the end of the archive, so that every byte is hashed.
	if _, err := io.CopyBuffer(io.Discard, br, a.buf); err != nil {
		return fail("", fmt.Errorf("reading: %w", err))
	}
	if got := hr.digest(); got != want {
		return lerr("", &DigestMismatchError{Want: want, Got: got})
	}
	for kind, n := range a.skipped {
		if a.logf != nil {
			a.logf("layer %d (%s): skipped %d %s (a builder needs none)", i, want, n, kind)
		}
	}
	return nil
}

// hashReader hashes and counts what is read through it.
type hashReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	eof bool
}

func (r *hashReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if errors.Is(err, io.EOF) {
		r.eof = true
	}
	return n, err
}

func (r *hashReader) digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(r.h.Sum(nil))}
}

// decompress detects gzip, zstd or a plain tar from the first bytes.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("reading gzip header: %w", err)
		}
		return zr, func() { _ = zr.Close() }, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("reading zstd header: %w", err)
		}
		return zr, zr.Close, nil
	default:
		return br, func() {}, nil
	}
}

// cleanName turns an entry name or hardlink target into a clean path
// relative to the root: a leading "/" is dropped (absolute names are
// relative to the root, as in a container), "." and ".." within the name are
// applied, and a name that climbs above the root is refused.
func (a *applier) cleanName(name string) (string, error) {
	if len(name) > a.limits.MaxPathLen {
		return "", &LimitError{Field: "MaxPathLen", Max: int64(a.limits.MaxPathLen), What: fmt.Sprintf("path length %d", len(name))}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", unsafef("name contains a NUL byte")
	}
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return "", unsafef("path %q climbs out of the root", short(name))
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, c)
		}
	}
	if len(parts) > a.limits.MaxDepth {
		return "", &LimitError{Field: "MaxDepth", Max: int64(a.limits.MaxDepth), What: fmt.Sprintf("path depth %d", len(parts))}
	}
	if len(parts) == 0 {
		return ".", nil
	}
	return strings.Join(parts, "/"), nil
}

// resolve returns the root-relative path, free of symlinks, that directory
// dir (a clean name) denotes inside the root: symlinks are followed as the
// container will follow them, with absolute targets and ".." kept inside the
// root. Missing directories are created when create is set; otherwise the
// unresolved rest is appended as is (it does not exist).
func (a *applier) resolve(dir string, create bool) (string, error) {
	if dir == "." || dir == "" {
		return ".", nil
	}
	if r, ok := a.resolved[dir]; ok {
		return r, nil
	}
	var out []string
	todo := strings.Split(dir, "/")
	follows := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			continue
		}
		cur := path.Join(append(out, c)...)
		fi, err := a.root.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if !create {
				return path.Join(append(append(out, c), todo...)...), nil
			}
			if err := a.root.Mkdir(cur, 0o755); err != nil {
				return "", err
			}
			a.dirs[cur] = dirMeta{mode: 0o755, mtime: time.Unix(0, 0), uid: -1, gid: -1}
			if a.ids != nil {
				a.dirs[cur] = dirMeta{mode: 0o755, mtime: time.Unix(0, 0), uid: int(a.ids.HostUID(0)), gid: int(a.ids.HostGID(0))}
			}
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			if follows++; follows > maxSymlinkFollows {
				return "", unsafef("too many levels of symbolic links resolving %q", short(dir))
			}
			target, err := a.root.Readlink(cur)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(target, "/") {
				out = out[:0]
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		case !fi.IsDir():
			return "", unsafef("%q is not a directory", cur)
		}
		out = append(out, c)
	}
	r := path.Join(out...)
	if r == "" {
		r = "."
	}
	if create {
		a.resolved[dir] = r
	}
	return r, nil
}

// mark records p and its ancestors as written by the current layer.
func (a *applier) mark(p string) {
	for p != "." && p != "/" && p != "" && !a.inLayer[p] {
		a.inLayer[p] = true
		p = path.Dir(p)
	}
}

// clear removes whatever exists at p (a resolved path), unless it is a
// directory and keepDir is set. It reports whether p is (still) a directory.
func (a *applier) clear(p string, keepDir bool) (bool, error) {
	fi, err := a.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.IsDir() && keepDir {
		return true, nil
	}
	clear(a.resolved)
	return false, a.root.RemoveAll(p)
}

// owner returns the host uid and gid that hdr's owner maps to, or -1, -1
// when ownership is not applied.
func (a *applier) owner(hdr *tar.Header) (int, int, error) {
	if a.ids == nil {
		return -1, -1, nil
	}
	if hdr.Uid < 0 || hdr.Gid < 0 || hdr.Uid > 1<<32-1 || hdr.Gid > 1<<32-1 {
		return 0, 0, unsafef("owner %d:%d is not an id", hdr.Uid, hdr.Gid)
	}
	uid, gid := uint32(hdr.Uid), uint32(hdr.Gid)
	switch {
	case a.ids.Mode == IDMapSingle:
		uid, gid = 0, 0 // one id owns everything
	case !a.ids.Contains(uid, gid):
		return 0, 0, fmt.Errorf("owner %d:%d is outside the %d ids the build's user namespace maps (%s): "+
			"the image's owners cannot be kept", uid, gid, a.ids.Size, a.ids)
	}
	return int(a.ids.HostUID(uid)), int(a.ids.HostGID(gid)), nil
}

// mode keeps the permission and sticky bits of a tar mode; setuid and setgid
// are dropped.
func mode(m int64) fs.FileMode {
	fm := fs.FileMode(m & 0o777)
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}
