package doctor

import (
	"os/user"

	"golang.org/x/sys/unix"
)

// currentUser is the effective user's name, "" when it cannot be found.
func currentUser() string {
	u, err := user.Current()
	if err != nil {
		return ""
	}
	return u.Username
}

// freeBytes is the space an unprivileged user may still use on path's file
// system (statfs(2) f_bavail; root may use a little more).
func freeBytes(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil //nolint:gosec // Bsize is a positive block size
}
