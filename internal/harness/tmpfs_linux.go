package harness

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// MountTmpfs mounts a tmpfs of size (as mount's size=, e.g. "1m") on dir,
// which it creates, and returns what unmounts it. It needs root; tests of
// what a full disk does mount one this way.
func MountTmpfs(dir, size string) (unmount func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mount("buildguard-test", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size="+size); err != nil {
		return nil, fmt.Errorf("mounting a tmpfs of %s on %s: %w", size, dir, err)
	}
	return func() error { return unix.Unmount(dir, unix.MNT_DETACH) }, nil
}

// SmallDisk returns a new directory on a tmpfs of size, unmounted when the
// test ends. It skips the test without root (fails it in CI, as
// RequireRoot).
func SmallDisk(t testing.TB, size string) string {
	t.Helper()
	RequireRoot(t, "a small disk is a tmpfs mounted as root")
	dir := t.TempDir()
	unmount, err := MountTmpfs(dir, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unmount(); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}
