package builder

import (
	"runtime"
)

// What `buildguard doctor` asks of this package: the same detection Run
// uses, exported so that the machine is described by the code that acts on
// it, not by a second copy of its rules.

// CgroupMode names this host's cgroup setup as Run detects it: "v2" (cgroup
// v2 only), "hybrid" (v1 hierarchies plus a cgroup2 mount at
// /sys/fs/cgroup/unified), "v1", or "none".
func CgroupMode() string { return detectCgroups().String() }

// LimitsUsable reports whether Run can apply memory and pids limits on this
// host, and if not, why not (Run then runs without them and a note says
// so). It depends on the caller's privileges: the cgroup hierarchy must be
// writable.
func LimitsUsable() (bool, string) { return limitsUsable(detectCgroups()) }

// SeccompArches names the architectures the seccomp filter covers on this
// host (native first), or an error when Run has no filter for it (every
// build would then fail).
func SeccompArches() ([]string, error) {
	arches, err := seccompArches(runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(arches))
	for i, a := range arches {
		out[i] = string(a)
	}
	return out, nil
}
