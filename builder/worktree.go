package builder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
)

// The build's view of its source is a private, writable copy: the build may
// create and change files under its workdir (node_modules, object files,
// target/), every run starts from the same pristine source, what a run
// writes there is discarded with the run's directory, and the host's tree
// is never written.
//
// It is a copy, not an overlayfs view of the host tree, because of
// ownership: the build runs without capabilities (no CAP_DAC_OVERRIDE, no
// CAP_FOWNER), so it can write only what its own uid owns, and the host
// tree belongs to whoever checked it out (a CI runner's user, root, a
// developer). An overlay keeps the lower layer's owners, so a build as uid
// 0 could not write into a checkout owned by uid 1001, and the uid
// variation's build could write nowhere. The copy is owned by the build's
// uid, as a checkout made by the build's user would be; modes and
// modification times are kept. It is on disk, in the run's directory,
// bounded by Step.Scratch.

// copySource copies the tree at src into dst (which must not exist), owned
// by uid and gid, with at most maxEntries entries. Regular files,
// directories and symbolic links are copied (links as links, never
// followed); any other file type is refused, naming it. Both trees are
// opened as roots, so nothing is read or written outside them whatever a
// link in either says.
func copySource(src, dst string, uid, gid int, maxEntries int64) error {
	if err := os.Mkdir(dst, 0o700); err != nil {
		return fmt.Errorf("copying the source %s: %w", src, err)
	}
	from, err := os.OpenRoot(src)
	if err != nil {
		return fmt.Errorf("copying the source %s: %w", src, err)
	}
	defer from.Close()
	to, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("copying the source %s: %w", src, err)
	}
	defer to.Close()
	if err := copyEntries(from, to, uid, gid, maxEntries); err != nil {
		return fmt.Errorf("copying the source %s: %w", src, err)
	}
	return nil
}

func copyEntries(from, to *os.Root, uid, gid int, maxEntries int64) error {
	var n int64
	var dirs []string
	chown := os.Geteuid() == 0
	err := fs.WalkDir(from.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		if maxEntries > 0 && n > maxEntries {
			return fmt.Errorf("the source has more than %d entries (raise with %s)", maxEntries, limitSettings["MaxOutputEntries"])
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			// Writable by its owner while the copy is made; its mode and
			// time are set once its entries are in (below).
			if rel != "." {
				if err := to.Mkdir(rel, 0o700); err != nil {
					return err
				}
			}
			dirs = append(dirs, rel)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := from.Readlink(rel)
			if err != nil {
				return err
			}
			if err := to.Symlink(target, rel); err != nil {
				return err
			}
		case d.Type().IsRegular():
			if err := copyRegular(from, to, rel, info.Mode().Perm()); err != nil {
				return err
			}
			if err := to.Chtimes(rel, time.Time{}, info.ModTime()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s is a %s: a source holds only files, directories and symbolic links", rel, fileKind(info.Mode()))
		}
		if chown {
			return to.Lchown(rel, uid, gid)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Directory modes and times last, deepest first: a read-only
	// directory of the source must have received its entries first, and
	// adding them changed its modification time.
	for _, rel := range slices.Backward(dirs) {
		info, err := from.Lstat(rel)
		if err != nil {
			return err
		}
		if err := to.Chmod(rel, info.Mode().Perm()|info.Mode()&(fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return err
		}
		if err := to.Chtimes(rel, time.Time{}, info.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

func copyRegular(from, to *os.Root, rel string, perm fs.FileMode) error {
	in, err := from.Open(rel)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := to.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	// O_CREATE's mode was cut by the umask.
	return to.Chmod(rel, perm)
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// ErrScratchExceeded is a build that wrote more than Step.Scratch bytes
// into its writable source.
var ErrScratchExceeded = errors.New("the build's scratch space exceeded its limit")

// scratchWatch measures a directory's disk usage every interval and calls
// kill once it passes max. It is the bound of Step.Scratch on a machine
// without a usable quota: a build may pass the limit by what it writes in
// one interval, and no more.
type scratchWatch struct {
	dir      string
	max      int64
	interval time.Duration
	peak     atomic.Int64
	exceeded atomic.Bool
	stop     chan struct{}
	done     chan struct{}
}

func watchScratch(dir string, max int64, interval time.Duration, kill func()) *scratchWatch {
	w := &scratchWatch{dir: dir, max: max, interval: interval, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				used := diskUsage(dir)
				if used > w.peak.Load() {
					w.peak.Store(used)
				}
				if used > max {
					w.exceeded.Store(true)
					kill()
					return
				}
			}
		}
	}()
	return w
}

// close stops the watch and returns whether the limit was passed; it
// measures once more, so that a short build is bounded too.
func (w *scratchWatch) close() bool {
	close(w.stop)
	<-w.done
	if used := diskUsage(w.dir); used > w.peak.Load() {
		w.peak.Store(used)
	}
	return w.exceeded.Load() || w.peak.Load() > w.max
}

// diskUsage is the space the files under dir take, in bytes (allocated
// blocks, so that sparse files count what they use); entries that vanish
// while it walks are skipped.
func diskUsage(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil {
			n += blocksOf(info)
		}
		return nil
	})
	return n
}

func blocksOf(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}

// privateCopies copies the source into runDir/writable/source and each
// writable input into runDir/writable/input-N, owned by the build's uid and gid, and
// returns s with those inputs' Source replaced by their copies.
func (s *Step) privateCopies(runDir string) (*Step, error) {
	uid, gid := int(s.IDs.HostUID(s.Sandbox.UID)), int(s.IDs.HostGID(s.Sandbox.GID))
	if err := os.Mkdir(filepath.Join(runDir, "writable"), 0o755); err != nil {
		return nil, err
	}
	if err := copySource(s.Source, filepath.Join(runDir, "writable", "source"), uid, gid, s.MaxOutputEntries); err != nil {
		return nil, err
	}
	v := *s
	v.Inputs = slices.Clone(s.Inputs)
	for i, in := range v.Inputs {
		if !in.Writable {
			continue
		}
		to := filepath.Join(runDir, "writable", fmt.Sprintf("input-%d", i))
		if err := copySource(in.Source, to, uid, gid, s.MaxOutputEntries); err != nil {
			return nil, fmt.Errorf("input %s: %w", in.Destination, err)
		}
		v.Inputs[i].Source = to
	}
	return &v, nil
}

// copiesSize is the disk space the source and the writable inputs take,
// which privateCopies needs again in the run directory.
func (s *Step) copiesSize() int64 {
	n := diskUsage(s.Source)
	for _, in := range s.Inputs {
		if in.Writable {
			n += diskUsage(in.Source)
		}
	}
	return n
}

// ScratchError is a build killed because its writable copies passed
// Step.Scratch.
type ScratchError struct {
	Max, Used int64
}

func (e *ScratchError) Error() string {
	return fmt.Sprintf("%v: the build wrote %d bytes into its source and writable inputs, over the limit of %d (raise with %s)",
		ErrScratchExceeded, e.Used, e.Max, limitSettings["Scratch"])
}

// Is matches ErrScratchExceeded.
func (e *ScratchError) Is(target error) bool { return target == ErrScratchExceeded }

// ExitCode is 1: the build did something it may not, as a build that
// exits non-zero.
func (e *ScratchError) ExitCode() int { return exitFail }
