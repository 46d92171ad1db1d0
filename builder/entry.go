package builder

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// typeRegA is the pre-POSIX regular-file type flag ('\x00').
const typeRegA = '\x00'

// entry applies one tar entry.
func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	if a.entries++; a.entries > a.limits.MaxEntries {
		return &LimitError{Field: "MaxEntries", Max: a.limits.MaxEntries, What: "number of layer entries"}
	}
	name, err := a.cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		return nil // the root itself keeps the mode the cache gives it
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dir, base)
	}

	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		a.skipped["device nodes"]++
		return nil
	case tar.TypeFifo:
		a.skipped["fifos"]++
		return nil
	case tar.TypeDir, tar.TypeReg, typeRegA, tar.TypeSymlink, tar.TypeLink:
	default:
		a.skipped[fmt.Sprintf("entries of type %q", hdr.Typeflag)]++
		return nil
	}

	uid, gid, err := a.owner(hdr)
	if err != nil {
		return err
	}
	pdir, err := a.resolve(dir, true)
	if err != nil {
		return err
	}
	target := path.Join(pdir, base)
	a.mark(target)

	switch hdr.Typeflag {
	case tar.TypeDir:
		isDir, err := a.clear(target, true)
		if err != nil {
			return err
		}
		if !isDir {
			if err := a.root.Mkdir(target, 0o755); err != nil {
				return err
			}
		}
		a.dirs[target] = dirMeta{mode: mode(hdr.Mode), mtime: hdr.ModTime, uid: uid, gid: gid}
		return nil

	case tar.TypeReg, typeRegA:
		if hdr.Size < 0 {
			return unsafef("negative size %d", hdr.Size)
		}
		if hdr.Size > a.limits.MaxBytes-a.bytes {
			return &LimitError{Field: "MaxBytes", Max: a.limits.MaxBytes, What: fmt.Sprintf("total unpacked size (%d bytes so far, entry declares %d)", a.bytes, hdr.Size)}
		}
		a.bytes += hdr.Size
		if _, err := a.clear(target, false); err != nil {
			return err
		}
		// O_EXCL: never open through whatever might sit at target.
		f, err := a.root.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.CopyBuffer(struct{ io.Writer }{f}, r, a.buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing: %w", err)
		}
		if err := a.chown(target, uid, gid); err != nil {
			return err
		}
		if err := a.root.Chmod(target, mode(hdr.Mode)); err != nil {
			return err
		}
		return a.root.Chtimes(target, hdr.ModTime, hdr.ModTime)

	case tar.TypeSymlink:
		// The target is stored as written: it is resolved later inside the
		// container's root, and by resolve here, never against the host.
		if len(hdr.Linkname) > a.limits.MaxPathLen {
			return &LimitError{Field: "MaxPathLen", Max: int64(a.limits.MaxPathLen), What: fmt.Sprintf("symlink target length %d", len(hdr.Linkname))}
		}
		if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return unsafef("symlink target %q is empty or contains a NUL byte", short(hdr.Linkname))
		}
		if _, err := a.clear(target, false); err != nil {
			return err
		}
		clear(a.resolved)
		if err := a.root.Symlink(hdr.Linkname, target); err != nil {
			return err
		}
		return a.chown(target, uid, gid)

	default: // tar.TypeLink
		return a.hardlink(hdr.Linkname, target)
	}
}

// hardlink links target to the entry linkname names, which must already
// exist inside the root as a regular file or a symlink.
func (a *applier) hardlink(linkname, target string) error {
	ln, err := a.cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	ldir, lbase := path.Split(ln)
	lpdir, err := a.resolve(strings.TrimSuffix(ldir, "/"), false)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	old := path.Join(lpdir, lbase)
	fi, err := a.root.Lstat(old)
	if errors.Is(err, fs.ErrNotExist) {
		return unsafef("hardlink target %q does not exist in the image", short(linkname))
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
		return unsafef("hardlink target %q is not a regular file or symlink", short(linkname))
	}
	if old == target {
		return nil
	}
	if _, err := a.clear(target, false); err != nil {
		return err
	}
	return a.root.Link(old, target)
}

// whiteout applies a whiteout entry in directory dir: ".wh..wh..opq" hides
// everything lower layers put in dir, ".wh.NAME" removes NAME. Neither
// touches what the current layer wrote.
func (a *applier) whiteout(dir, base string) error {
	pdir, err := a.resolve(dir, false)
	if err != nil {
		return err
	}
	switch {
	case base == whiteoutOpaque:
		fi, err := a.root.Lstat(pdir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return nil
		}
		a.mark(pdir)
		return a.opaque(pdir)
	case strings.HasPrefix(base, whiteoutMeta):
		a.skipped["AUFS metadata entries"]++
		return nil
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." {
		return unsafef("whiteout %q names no entry", base)
	}
	p := path.Join(pdir, victim)
	if a.inLayer[p] {
		return nil
	}
	_, err = a.clear(p, false)
	return err
}

// opaque removes what lower layers put under dir, keeping what the current
// layer wrote (and descending into directories it wrote into).
func (a *applier) opaque(dir string) error {
	f, err := a.root.Open(dir)
	if err != nil {
		return err
	}
	ents, err := f.ReadDir(-1)
	_ = f.Close()
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := path.Join(dir, e.Name())
		if !a.inLayer[p] {
			clear(a.resolved)
			if err := a.root.RemoveAll(p); err != nil {
				return err
			}
			continue
		}
		if e.IsDir() {
			if err := a.opaque(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// chown gives p (not following a symlink) to uid and gid; -1 keeps them.
func (a *applier) chown(p string, uid, gid int) error {
	if uid < 0 && gid < 0 {
		return nil
	}
	return a.root.Lchown(p, uid, gid)
}

// finish applies the recorded directory owners, modes and times.
func (a *applier) finish() error {
	for p, m := range a.dirs {
		fi, err := a.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			continue
		}
		if err := a.chown(p, m.uid, m.gid); err != nil {
			return err
		}
		if err := a.root.Chmod(p, m.mode); err != nil {
			return err
		}
		if err := a.root.Chtimes(p, m.mtime, m.mtime); err != nil {
			return err
		}
	}
	return nil
}
