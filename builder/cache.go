package builder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// markerVersion is the first line of a complete root's marker; a marker of
// another version (an older unpacker's) is not trusted.
const markerVersion = "buildguard rootfs v1"

// DefaultDir returns $XDG_CACHE_HOME/buildguard/rootfs, or
// ~/.cache/buildguard/rootfs when XDG_CACHE_HOME is unset or not absolute.
func DefaultDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the rootfs cache: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "buildguard", "rootfs"), nil
}

// DependencyCacheDir is where the prefetch stage keeps fetched
// dependencies, given the rootfs cache directory: inside it when the user
// named it (--cache DIR: DIR/deps), beside it when it is DefaultDir
// ($XDG_CACHE_HOME/buildguard/deps).
func DependencyCacheDir(rootfsCache string, named bool) string {
	if named {
		return filepath.Join(rootfsCache, "deps")
	}
	return filepath.Join(filepath.Dir(rootfsCache), "deps")
}

// Cache holds unpacked root filesystems, one per image manifest digest, at
// <Dir>/sha256-<hex>. The zero value uses DefaultDir and the default Limits.
//
// A root is unpacked into a temporary directory beside it, flushed to disk,
// renamed into place, and only then marked complete by a file
// <Dir>/sha256-<hex>.complete, written last. A root without a valid marker
// (a crash between rename and marker, or anything else that put it there) is
// removed and unpacked again, never used. Unpacks of one digest are
// serialised by an flock(2) on <Dir>/sha256-<hex>.lock, across goroutines
// and processes alike.
type Cache struct {
	// Dir is the cache directory; empty means DefaultDir().
	Dir string
	// Limits bound what one image may unpack to; zero fields take defaults.
	Limits Limits
	// Logf, when set, receives notes about what was skipped (device nodes,
	// fifos, unknown entry types: a builder needs none of them).
	Logf func(format string, args ...any)
	// SkipSync skips flushing a new root to disk before it is marked
	// complete. Only for tests and benchmarks: after a power loss a root
	// could then be marked complete with its file contents lost.
	SkipSync bool
}

// dir returns the cache directory, absolute.
func (c *Cache) dir() (string, error) {
	d := c.Dir
	if d == "" {
		var err error
		if d, err = DefaultDir(); err != nil {
			return "", err
		}
	}
	return filepath.Abs(d)
}

// Unpack returns the path of img's root filesystem in the cache, unpacking
// it first when no complete root exists for its manifest digest. Layers are
// applied bottom to top, their bytes checked against their digests as they
// are read. Concurrent calls for one digest, in this process or others, wait
// for one another and return the same root.
//
// Files belong to the unpacking user, whatever owners the image gives them;
// UnpackMapped keeps them, for a build in a user namespace.
func (c *Cache) Unpack(ctx context.Context, img v1.Image) (string, error) {
	return c.unpackChecked(ctx, img, nil)
}

// UnpackMapped is Unpack for builds that run in the user namespace m: each
// file belongs to the host id that its owner in the image maps to (the
// image's uid 0 is m.UID), so that the build sees the owners the image
// gives (a shifted unpack). The root is cached apart from Unpack's and from
// other mappings'. An owner outside the mapping is refused for a ranged
// mapping; for a single-id one every file belongs to the one id.
//
// Chowning to ids other than our own needs CAP_CHOWN: as root, or in a user
// namespace that maps those ids.
func (c *Cache) UnpackMapped(ctx context.Context, img v1.Image, m IDMap) (string, error) {
	if err := m.validate(); err != nil {
		return "", err
	}
	return c.unpackChecked(ctx, img, &m)
}

// unpackChecked is unpack, with a full file system told as a NoSpaceError
// that says how to move the cache.
func (c *Cache) unpackChecked(ctx context.Context, img v1.Image, ids *IDMap) (string, error) {
	root, err := c.unpack(ctx, img, ids)
	if err != nil {
		if dir, derr := c.dir(); derr == nil {
			if ns := NoSpace(err, dir, "the rootfs cache", "XDG_CACHE_HOME (or pass --cache DIR)"); ns != nil {
				return "", ns
			}
		}
	}
	return root, err
}

func (c *Cache) unpack(ctx context.Context, img v1.Image, ids *IDMap) (string, error) {
	if err := c.Limits.Validate(); err != nil {
		return "", err
	}
	dig, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("reading image digest: %w", err)
	}
	if dig.Algorithm != "sha256" {
		return "", fmt.Errorf("image digest %s: only sha256 is supported", dig)
	}
	dir, err := c.dir()
	if err != nil {
		return "", err
	}
	key := "sha256-" + dig.Hex
	if ids != nil {
		key += "-" + ids.key()
	}
	final := filepath.Join(dir, key)
	marker := final + ".complete"
	if complete(final, marker, dig, ids) {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the rootfs cache: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(dir, key+".lock"))
	if err != nil {
		return "", fmt.Errorf("locking rootfs %s: %w", dig, err)
	}
	defer unlock()
	if complete(final, marker, dig, ids) {
		return final, nil // another unpacker finished while we waited
	}

	// Whatever is here is left over from a crash: we hold the lock, so no
	// one else is writing it, and no one uses a root without its marker.
	stale, _ := filepath.Glob(filepath.Join(dir, ".tmp-"+key+"-*"))
	for _, p := range append(stale, marker, final) {
		if err := removeTree(p); err != nil {
			return "", fmt.Errorf("removing stale %s: %w", p, err)
		}
	}

	tmp, err := os.MkdirTemp(dir, ".tmp-"+key+"-")
	if err != nil {
		return "", fmt.Errorf("creating rootfs %s: %w", dig, err)
	}
	if err := c.extract(ctx, img, tmp, ids); err != nil {
		_ = removeTree(tmp)
		return "", fmt.Errorf("unpacking image %s: %w", dig, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = removeTree(tmp)
		return "", fmt.Errorf("renaming rootfs %s into place: %w", dig, err)
	}
	if err := writeMarker(dir, marker, markerText(dig, ids), !c.SkipSync); err != nil {
		return "", fmt.Errorf("marking rootfs %s complete: %w", dig, err)
	}
	return final, nil
}

// extract applies img's layers into the empty directory dir and flushes it.
func (c *Cache) extract(ctx context.Context, img v1.Image, dir string, ids *IDMap) error {
	limits := c.Limits.withDefaults()
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("listing layers: %w", err)
	}
	if len(layers) > limits.MaxLayers {
		return &LimitError{Field: "MaxLayers", Max: int64(limits.MaxLayers), What: fmt.Sprintf("number of layers (%d)", len(layers))}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	a := newApplier(root, limits, c.Logf)
	a.ids = ids
	for i, l := range layers {
		if err := a.applyLayer(ctx, i, l); err != nil {
			return err
		}
	}
	if err := a.finish(); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // MkdirTemp made it 0700
		return err
	}
	if ids != nil {
		if err := os.Lchown(dir, int(ids.HostUID(0)), int(ids.HostGID(0))); err != nil {
			return fmt.Errorf("giving the root to the mapped root: %w", err)
		}
	}
	if c.SkipSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("flushing to disk: %w", err)
	}
	return nil
}

// markerText is the content of a complete root's marker: the image and,
// for a shifted unpack, the mapping.
func markerText(dig v1.Hash, ids *IDMap) string {
	t := markerVersion + "\n" + dig.String() + "\n"
	if ids != nil {
		t += "ids " + ids.key() + "\n"
	}
	return t
}

// complete reports whether final is a directory marked complete for dig
// (and ids).
func complete(final, marker string, dig v1.Hash, ids *IDMap) bool {
	b, err := os.ReadFile(marker)
	if err != nil || string(b) != markerText(dig, ids) {
		return false
	}
	fi, err := os.Lstat(final)
	return err == nil && fi.IsDir()
}

// writeMarker writes the marker atomically (temporary file, rename) and,
// when sync is set, makes it and the rename before it durable.
func writeMarker(dir, marker, text string, sync bool) error {
	f, err := os.CreateTemp(dir, ".tmp-marker-")
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), marker)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if !sync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lock takes an exclusive flock on path, polling so that ctx can cancel the
// wait. flock locks belong to an open file description, so two goroutines of
// one process exclude each other as two processes do.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	wait := 5 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// removeTree removes path and everything under it, first making directories
// writable so that a root with read-only directories can be removed without
// privileges. It does not follow symlinks.
func removeTree(path string) error {
	if err := os.RemoveAll(path); err == nil {
		return nil
	}
	// Through os.Root, so that a symlink swapped in during the walk cannot
	// redirect a chmod outside the tree.
	if root, err := os.OpenRoot(path); err == nil {
		_ = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = root.Chmod(p, 0o700)
			}
			return nil
		})
		_ = root.Close()
	}
	return os.RemoveAll(path)
}

// Remove removes the whole cache directory. An unprivileged user's shifted
// roots belong to its subordinate ids, so only a process in its user
// namespace (internal/rootless) can remove them; no build may be using
// the cache meanwhile.
func (c *Cache) Remove() error {
	dir, err := c.dir()
	if err != nil {
		return err
	}
	if err := removeTree(dir); err != nil {
		return fmt.Errorf("removing the rootfs cache %s: %w", dir, err)
	}
	return nil
}
