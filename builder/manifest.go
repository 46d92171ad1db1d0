package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"sync"
)

// DefaultMaxOutputEntries bounds the number of entries HashTree and ListTree
// accept in one tree, and HashTreeMax when given 0.
const DefaultMaxOutputEntries = 1_000_000

// Entry types of a Manifest. Only TypeFile, TypeDir and TypeSymlink can be
// published; the others are listed so that the digest covers them, and
// flagged by Manifest.Special.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
	TypeFifo    = "fifo"
	TypeSocket  = "socket"
	TypeBlock   = "blockdevice"
	TypeChar    = "chardevice"
	TypeOther   = "other"
)

// Manifest describes an output tree: every entry below its root, sorted by
// path (byte order). Ownership and times are left out on purpose: they say
// nothing about the bits a build produced.
type Manifest struct {
	Entries []ManifestEntry `json:"entries"`
}

// ManifestEntry is one file, directory or symlink of an output tree.
type ManifestEntry struct {
	// Path is slash-separated and relative to the tree's root.
	Path string `json:"path"`
	// Type is one of the Type constants.
	Type string `json:"type"`
	// Mode is the normalised permission (0755 for directories and
	// executables, 0644 for other files, 0777 for symlinks) with setuid
	// (4000), setgid (2000) and sticky (1000), in octal, e.g. "0755".
	Mode string `json:"mode"`
	// Size and SHA256 (lower-case hex) describe a file's content.
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Target is a symlink's target, as written.
	Target string `json:"target,omitempty"`
}

// Canonical returns the encoding the manifest's digest is taken over: the
// entries as a compact JSON array, in path order, each object's fields in
// the order path, type, mode, size, sha256, target, empty ones left out,
// with no HTML escaping, and a final newline.
func (m *Manifest) Canonical() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	ents := m.Entries
	if ents == nil {
		ents = []ManifestEntry{}
	}
	_ = enc.Encode(ents) // plain strings and numbers: cannot fail
	return buf.Bytes()
}

// Digest identifies the tree: "sha256:" and the hex SHA-256 of Canonical.
func (m *Manifest) Digest() string {
	sum := sha256.Sum256(m.Canonical())
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Special lists the entries that cannot be published as plain files:
// devices, fifos, sockets and other irregular files, and files with the
// setuid or setgid bit. Each is "path (what)", in path order.
func (m *Manifest) Special() []string {
	var out []string
	for _, e := range m.Entries {
		switch {
		case e.Type != TypeFile && e.Type != TypeDir && e.Type != TypeSymlink:
			out = append(out, fmt.Sprintf("%s (%s)", e.Path, e.Type))
		case e.Type == TypeFile && e.Mode[0] != '0' && e.Mode[0] != '1':
			out = append(out, fmt.Sprintf("%s (setuid or setgid, mode %s)", e.Path, e.Mode))
		}
	}
	return out
}

// HashTree walks dir into a Manifest. It never follows a symlink: symlinks
// are recorded with their targets, and every file is opened through an
// os.Root, so nothing outside dir is read. Files are hashed in parallel, one
// goroutine per usable core, each streaming through a fixed buffer, so
// memory stays bounded whatever the files' sizes.
func HashTree(ctx context.Context, dir string) (*Manifest, error) {
	return hashTree(ctx, dir, runtime.GOMAXPROCS(0))
}

// HashTreeMax is HashTree with maxEntries entries at most in the tree
// instead of DefaultMaxOutputEntries; 0 means the default. A tree with more
// is refused with an error that says how to raise the limit.
func HashTreeMax(ctx context.Context, dir string, maxEntries int64) (*Manifest, error) {
	if maxEntries < 0 {
		return nil, fmt.Errorf("the entry limit must not be negative, got %d", maxEntries)
	}
	if maxEntries == 0 {
		maxEntries = DefaultMaxOutputEntries
	}
	return hashTreeMax(ctx, dir, runtime.GOMAXPROCS(0), maxEntries)
}

// ListTree walks dir into a Manifest like HashTree but reads no file: the
// entries' SHA256 fields are empty. It is the cheap first look of a
// comparison that reads only the files whose metadata agree.
func ListTree(ctx context.Context, dir string) (*Manifest, error) {
	return hashTree(ctx, dir, 0)
}

// hashTree walks dir and, unless jobs is 0, hashes its files with jobs
// goroutines.
func hashTree(ctx context.Context, dir string, jobs int) (*Manifest, error) {
	return hashTreeMax(ctx, dir, jobs, DefaultMaxOutputEntries)
}

// hashTreeMax is hashTree refusing a tree of more than maxEntries entries.
func hashTreeMax(ctx context.Context, dir string, jobs int, maxEntries int64) (*Manifest, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	m := &Manifest{Entries: []ManifestEntry{}}
	var infos []fs.FileInfo // the Lstat of each file entry, by entry index
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return ctx.Err()
		}
		if int64(len(m.Entries)) >= maxEntries {
			return fmt.Errorf("more than %d entries (raise with %s)", maxEntries, limitSettings["MaxOutputEntries"])
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := ManifestEntry{Path: p, Type: entryType(fi.Mode()), Mode: modeString(fi.Mode())}
		switch e.Type {
		case TypeSymlink:
			if e.Target, err = root.Readlink(p); err != nil {
				return err
			}
		case TypeFile:
			e.Size = fi.Size()
		}
		m.Entries = append(m.Entries, e)
		infos = append(infos, fi)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walking %s: %w", dir, err)
	}
	if jobs > 0 {
		if err := hashFiles(ctx, root, m.Entries, infos, jobs); err != nil {
			return nil, fmt.Errorf("hashing %s: %w", dir, err)
		}
	}
	sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Path < m.Entries[j].Path })
	return m, nil
}

// hashFiles fills in SHA256 of every file entry, jobs at a time. Results go
// into the entries by index, so their order never depends on scheduling.
func hashFiles(ctx context.Context, root *os.Root, ents []ManifestEntry, infos []fs.FileInfo, jobs int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(jobs, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for i := range work {
				sum, err := hashEntry(ctx, root, ents[i].Path, infos[i], buf)
				if err != nil {
					cancel(fmt.Errorf("%s: %w", ents[i].Path, err))
					continue
				}
				ents[i].SHA256 = sum
			}
		}()
	}
feed:
	for i, e := range ents {
		if e.Type != TypeFile {
			continue
		}
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	return context.Cause(ctx)
}

// hashEntry hashes the regular file name, which must still be the file the
// walk saw (same inode, same size).
func hashEntry(ctx context.Context, root *os.Root, name string, want fs.FileInfo, buf []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	f, err := root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() || !os.SameFile(fi, want) || fi.Size() != want.Size() {
		return "", errors.New("changed while the output was read")
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf)
	if err != nil {
		return "", err
	}
	if n != want.Size() {
		return "", errors.New("changed while the output was read")
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// entryType names the type of a file mode.
func entryType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return TypeFile
	case m.IsDir():
		return TypeDir
	case m&fs.ModeSymlink != 0:
		return TypeSymlink
	case m&fs.ModeNamedPipe != 0:
		return TypeFifo
	case m&fs.ModeSocket != 0:
		return TypeSocket
	case m&fs.ModeCharDevice != 0:
		return TypeChar
	case m&fs.ModeDevice != 0:
		return TypeBlock
	}
	return TypeOther
}

// modeString returns m's mode as the manifest records it, in octal, four
// digits. Permissions are normalised as git and OCI image builders do:
// directories and files with any execute bit are 0755, other files 0644,
// symlinks 0777; the setuid, setgid and sticky bits are kept (so that
// Special finds them). The build's umask and the user it runs as therefore
// do not change the manifest; what they leak into file contents still does.
func modeString(m fs.FileMode) string {
	var u uint32
	switch {
	case m&fs.ModeSymlink != 0:
		u = 0o777
	case m.IsDir() || m.Perm()&0o111 != 0:
		u = 0o755
	default:
		u = 0o644
	}
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return fmt.Sprintf("%04o", u)
}
