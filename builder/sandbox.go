package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// sandbox is one run's private state: a directory on the host that holds
// the bundle (config.json), the runtime's state and the mount point of the
// root, and an OS thread with a private mount namespace in which the root is
// mounted and every runtime command is started.
//
// The root is an overlay whose lower layer is the cached rootfs and whose
// upper layer is a small tmpfs, so that the runtime can create the mount
// points it needs (/proc, /out, the workdir...) without ever writing to the
// cache; the runtime then makes it read-only for the build. Where overlayfs
// cannot be used, the cached rootfs is bind-mounted read-only instead, and
// every mount point must already exist in the image.
//
// The mount namespace lives only as long as the thread and the runtime
// processes started from it: nothing is mounted in the host's namespace,
// and nothing needs unmounting afterwards.
type sandbox struct {
	dir string // the run's directory, free of symlinks
	// view is where the runtime sees dir: dir itself when every directory
	// above it lets others pass, else an empty directory in /tmp onto
	// which dir is bind-mounted in the private mount namespace. The
	// runtime opens the root and the mounts' sources as the build's user
	// (an unprivileged host id), who may not pass through $TMPDIR's
	// parents (a CI workspace, a test's 0700 directory).
	view  string
	root  string // dir/rootfs: the build's root as the runtime sees it
	notes []string
	work  chan func()
	quit  chan struct{}
}

// sandboxOptions say how the private mount namespace is prepared.
type sandboxOptions struct {
	// rootfs is the cached root filesystem (read, never written).
	rootfs string
	// mountpoints must exist in the root when it cannot be overlaid.
	mountpoints []string
	// owner is the host uid and gid of the build's root (the mapped 0):
	// the root's upper layer belongs to it, so that the runtime, in the
	// build's user namespace, can create the mount points.
	uid, gid int
	// hideUnified unmounts /sys/fs/cgroup/unified in the namespace, so that
	// crun (which refuses hybrid cgroups) sees a plain cgroup v1 host.
	hideUnified bool
	// rootFlags are the flags of the root's mount (nosuid, nodev). runsc
	// remounts the root read-only from inside the build's user namespace
	// without carrying them over, which the kernel refuses for flags a
	// more privileged namespace set; under runsc the build's exec and
	// device files are gVisor's kernel's, not the host's.
	rootFlags uintptr
}

// lockedRootFlags are the root mount's flags for crun and runc.
const lockedRootFlags = unix.MS_NOSUID | unix.MS_NODEV

// newSandbox creates the run directory and the namespace thread. It fails
// when this process may not create a mount namespace (it must be root, or
// root of its own user namespace: internal/rootless).
func newSandbox(o sandboxOptions) (*sandbox, error) {
	tmp, err := os.MkdirTemp("", fmt.Sprintf("buildguard-run-%d-", os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("creating the run directory: %w", err)
	}
	// runc wants a root path that is absolute and free of symlinks.
	dir, err := filepath.EvalSymlinks(tmp)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("creating the run directory: %w", err)
	}
	// The build's user (an unprivileged host id) must reach the root and
	// the mounts' sources through this directory: it may pass, not list.
	if err := os.Chmod(dir, 0o711); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("creating the run directory: %w", err)
	}
	sb := &sandbox{dir: dir, view: dir, root: filepath.Join(dir, "rootfs"), work: make(chan func()), quit: make(chan struct{})}
	if !passable(dir) {
		if sb.view, err = os.MkdirTemp("/tmp", "buildguard-view-"); err == nil {
			err = os.Chmod(sb.view, 0o711)
		}
		if err != nil {
			_ = os.RemoveAll(dir)
			_ = os.Remove(sb.view)
			return nil, fmt.Errorf("creating the run directory's view in /tmp: %w", err)
		}
	}
	for _, d := range []string{sb.root, filepath.Join(dir, "scratch"), filepath.Join(dir, "state"), filepath.Join(dir, "mnt")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("creating the run directory: %w", err)
		}
	}
	// The mounts' sources are reached as the build's user: runsc's gofer
	// opens them from inside the build's user namespace. Nobody else may.
	if err := os.Lchown(filepath.Join(dir, "mnt"), o.uid, o.gid); err != nil {
		_ = os.RemoveAll(dir)
		_ = os.Remove(sb.view)
		return nil, fmt.Errorf("creating the run directory: %w", err)
	}
	ready := make(chan error, 1)
	go sb.thread(o, ready)
	if err := <-ready; err != nil {
		_ = os.RemoveAll(dir)
		_ = os.Remove(sb.view)
		return nil, err
	}
	return sb, nil
}

// thread prepares the mount namespace on a locked OS thread, then runs the
// functions sent to it until quit is closed. The thread is never unlocked,
// so when this goroutine returns the Go runtime ends the thread, and with it
// the thread's hold on the namespace.
func (sb *sandbox) thread(o sandboxOptions, ready chan<- error) {
	runtime.LockOSThread()
	if err := sb.prepare(o); err != nil {
		ready <- err
		return
	}
	ready <- nil
	for {
		select {
		case f := <-sb.work:
			f()
		case <-sb.quit:
			return
		}
	}
}

// prepare runs on the locked thread: it unshares the mount namespace and
// mounts the root.
func (sb *sandbox) prepare(o sandboxOptions) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("creating a private mount namespace (buildguard runs builds as root or, unprivileged, in a user namespace of its own): %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the mount namespace private: %w", err)
	}
	if o.hideUnified {
		if err := unix.Unmount(filepath.Join(cgroupRoot, "unified"), unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting %s/unified in the private mount namespace: %w", cgroupRoot, err)
		}
	}
	err := sb.overlay(o.rootfs, o.uid, o.gid, o.rootFlags)
	if err != nil {
		if berr := sb.bindReadOnly(o.rootfs, o.mountpoints, o.rootFlags); berr != nil {
			return fmt.Errorf("mounting the root read-only: overlay: %w; bind: %w", err, berr)
		}
		sb.notes = append(sb.notes, fmt.Sprintf("the root is the cached rootfs bind-mounted read-only (overlayfs: %v)", err))
	}
	if sb.view != sb.dir {
		if err := unix.Mount(sb.dir, sb.view, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mounting the run directory at %s: %w", sb.view, err)
		}
	}
	return nil
}

// seen returns where the runtime sees p, a path under sb.dir.
func (sb *sandbox) seen(p string) string {
	rel, err := filepath.Rel(sb.dir, p)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return p
	}
	return filepath.Join(sb.view, rel)
}

// passable reports whether others may pass through every directory above
// dir (the execute bit for others).
func passable(dir string) bool {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

// overlay mounts rootfs under a tmpfs upper layer at sb.root.
func (sb *sandbox) overlay(rootfs string, uid, gid int, flags uintptr) error {
	if strings.ContainsAny(rootfs+sb.dir, ",:\\") {
		return fmt.Errorf("path %q or %q holds a character overlayfs options cannot carry", rootfs, sb.dir)
	}
	scratch := filepath.Join(sb.dir, "scratch")
	if err := unix.Mount("buildguard", scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700,size=16m"); err != nil {
		return fmt.Errorf("mounting a tmpfs: %w", err)
	}
	upper, work := filepath.Join(scratch, "upper"), filepath.Join(scratch, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		if err := os.Lchown(d, uid, gid); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", rootfs, upper, work)
	if err := unix.Mount("overlay", sb.root, "overlay", flags, opts); err != nil {
		return fmt.Errorf("mounting overlayfs: %w", err)
	}
	return nil
}

// bindReadOnly bind-mounts rootfs read-only at sb.root, and checks that
// every mount point exists in it (the runtime cannot create them).
func (sb *sandbox) bindReadOnly(rootfs string, mountpoints []string, flags uintptr) error {
	if err := unix.Mount(rootfs, sb.root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Mount("", sb.root, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|flags, ""); err != nil {
		return err
	}
	r, err := os.OpenRoot(sb.root)
	if err != nil {
		return err
	}
	defer r.Close()
	var missing []string
	for _, m := range mountpoints {
		fi, err := r.Stat(strings.TrimPrefix(m, "/"))
		if err != nil || !fi.IsDir() {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the image lacks the directories %s, and a read-only root cannot gain them", strings.Join(missing, ", "))
	}
	return nil
}

// bind bind-mounts the host path src (a file or a directory, symlinks
// followed) at dir/mnt/name in the private mount namespace and returns
// that path as the runtime sees it. The build's mounts name these paths, never the host's own:
// the build's user may not be able to reach a host path (a directory
// under /root, a test's 0700 temporary directory), and the runtime opens
// mount sources as that user.
func (sb *sandbox) bind(src, name string) (string, error) {
	dst := filepath.Join(sb.dir, "mnt", name)
	at := sb.seen(dst)
	errc := make(chan error, 1)
	sb.work <- func() {
		fi, err := os.Stat(src)
		if err != nil {
			errc <- err
			return
		}
		if fi.IsDir() {
			err = os.Mkdir(dst, 0o755)
		} else {
			err = os.WriteFile(dst, nil, 0o644)
		}
		if err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount(src, at, "", unix.MS_BIND|unix.MS_REC, "")
	}
	if err := <-errc; err != nil {
		return "", fmt.Errorf("mounting %s in the run directory: %w", src, err)
	}
	return at, nil
}

// start starts cmd from the namespace thread, so that the runtime runs in
// the private mount namespace.
func (sb *sandbox) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	sb.work <- func() { errc <- cmd.Start() }
	return <-errc
}

// close ends the namespace thread and removes the run directory.
// writable is the run's directory of private copies (the source, the
// writable inputs): on disk, bounded by Step.Scratch.
func (sb *sandbox) writable() string { return filepath.Join(sb.dir, "writable") }

func (sb *sandbox) close() error {
	close(sb.quit)
	if sb.view != sb.dir {
		_ = os.Remove(sb.view) // empty outside the private mount namespace
	}
	err := os.RemoveAll(sb.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the run directory: %w", err)
	}
	return nil
}
