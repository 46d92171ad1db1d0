package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/buildguard/buildguard/evidence"
)

// The build always runs in a user namespace (Step.IDs): uid 0 inside is
// an unprivileged host id, so a process that escapes the other namespaces
// is nobody on the host. The image's files keep their owners through a
// shifted unpack (Cache.UnpackMapped) rather than an idmapped mount: it
// works with runc 1.1, which has no idmapped mounts, and without root,
// where an idmapped mount of the host's files cannot be made; the price is
// a rootfs per mapping in the cache (one mapping per user, in practice).

// fillIDs sets s.IDs to HostIDMap when it is unset.
func (s *Step) fillIDs() error {
	if s.IDs.Size == 0 {
		m, err := HostIDMap()
		if err != nil {
			name := s.Runtime
			if name == "" {
				name = RuntimeAuto
			}
			return &RuntimeError{Runtime: name, Err: fmt.Errorf("the build's user namespace: %w", err)}
		}
		s.IDs = m
	}
	return nil
}

// checkIDs checks that the step fits s.IDs (fillIDs has set it): the
// build's uid and gid are mapped, and the root was unpacked for the
// mapping.
func (s *Step) checkIDs() error {
	if err := s.IDs.validate(); err != nil {
		return &StepError{Field: "IDs", Err: err}
	}
	if !s.IDs.Contains(s.Sandbox.UID, s.Sandbox.GID) {
		if s.IDs.Mode == IDMapSingle {
			return stepErrorf("Sandbox", "the build cannot run as uid %d: only the invoking user is mapped (as 0), "+
				"since newuidmap or a subordinate id range is missing", s.Sandbox.UID)
		}
		return stepErrorf("Sandbox", "uid %d or gid %d is outside the %d ids mapped (%s)", s.Sandbox.UID, s.Sandbox.GID, s.IDs.Size, s.IDs)
	}
	fi, err := os.Lstat(s.Rootfs)
	if err != nil {
		return &StepError{Field: "Rootfs", Err: err}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != s.IDs.HostUID(0) || st.Gid != s.IDs.HostGID(0) {
		return stepErrorf("Rootfs", "%s was not unpacked for the id mapping %s (its root belongs to %d:%d, want %d:%d): "+
			"unpack it with Cache.UnpackMapped", s.Rootfs, s.IDs, st.Uid, st.Gid, s.IDs.HostUID(0), s.IDs.HostGID(0))
	}
	return nil
}

// giveBack gives every entry under dir (not following symlinks, and at
// most max+1 of them; 0 means DefaultMaxOutputEntries) to the invoking
// user: what the build left in its output belongs to whoever ran it.
func giveBack(dir string, max int64) error {
	if max <= 0 {
		max = DefaultMaxOutputEntries
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	uid, gid := os.Geteuid(), os.Getegid()
	var n int64
	errStop := errors.New("stop")
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n > max+1 {
			return errStop // too many: the output is refused for that
		}
		return root.Lchown(p, uid, gid)
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// record says what isolation the run had, for the report.
func (s *Step) record(rt *Runtime, res *Result) *evidence.Sandbox {
	version := rt.Version
	if f := strings.Fields(version); len(f) > 0 {
		version = f[len(f)-1] // "crun version 1.8.1" -> "1.8.1"
	}
	r := &evidence.Sandbox{
		Runtime: rt.Name, Version: version, Rootless: RootlessMode() != nil,
		UserNamespace: true, IDMapping: s.IDs.Mode,
		UIDMap:  fmt.Sprintf("0:%d:%d", s.IDs.UID, s.IDs.Size),
		GIDMap:  fmt.Sprintf("0:%d:%d", s.IDs.GID, s.IDs.Size),
		Network: "none", Seccomp: SeccompProfile, ReadOnlyRoot: true,
		Limits: evidence.SandboxLimits{Applied: []string{}},
	}
	if res.Memory > 0 {
		r.Limits.Applied = append(r.Limits.Applied, fmt.Sprintf("memory=%d (cgroup)", res.Memory))
	}
	if res.Pids > 0 {
		r.Limits.Applied = append(r.Limits.Applied, fmt.Sprintf("pids=%d (cgroup)", res.Pids))
	}
	switch {
	case s.Memory == 0 && s.Pids == 0:
		r.Limits.Reason = "none configured"
	case res.Memory == 0 && res.Pids == 0:
		// The rlimits stood in (Spec without limits).
		if s.Memory > 0 {
			r.Limits.Applied = append(r.Limits.Applied, fmt.Sprintf("memory=%d (RLIMIT_AS, per process)", s.Memory))
		}
		if s.Pids > 0 {
			r.Limits.Applied = append(r.Limits.Applied, fmt.Sprintf("pids=%d (RLIMIT_NPROC)", s.Pids))
		}
		r.Limits.Reason = "cgroups could not be used, so rlimits stand in" // runWith says why
	}
	return r
}
