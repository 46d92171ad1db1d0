package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The runtime names Run accepts. RuntimeAuto tries RuntimeOrder.
const (
	RuntimeAuto = "auto"
	RuntimeCrun = "crun"
	RuntimeRunc = "runc"
	// RuntimeRunsc is gVisor: the build's system calls are served by
	// gVisor's own kernel in user space, so a kernel bug outside the
	// seccomp filter is out of the build's reach. Slower to start; never
	// picked by auto, only when named.
	RuntimeRunsc = "runsc"
)

// RuntimeOrder is the order in which RuntimeAuto tries the runtimes found on
// PATH: crun first (it starts a container in about a third of runc's time),
// then runc.
var RuntimeOrder = []string{RuntimeCrun, RuntimeRunc}

// runtimeHints says how to install each runtime on Debian or Ubuntu.
var runtimeHints = map[string]string{
	RuntimeCrun:  "apt-get install -y crun",
	RuntimeRunc:  "apt-get install -y runc",
	RuntimeRunsc: "apt-get install -y runsc",
}

// RuntimeHint says how to install the runtime called name.
func RuntimeHint(name string) string { return runtimeHints[name] }

// Runtime is an OCI runtime binary found on this machine.
type Runtime struct {
	// Name is crun, runc or runsc.
	Name string
	// Path is the binary's absolute path.
	Path string
	// Version is the first line of `Path --version`, e.g. "crun version 1.8.1".
	Version string
}

// String names the runtime and its version, for notes and reports.
func (r *Runtime) String() string {
	if r.Version == "" {
		return r.Name
	}
	return r.Version
}

// setsDomainname reports whether the runtime sets the spec's domainname
// with setdomainname(2); runc before 1.2 ignores the field, and so does
// runsc.
func (r *Runtime) setsDomainname() bool {
	switch r.Name {
	case RuntimeCrun:
		return true
	case RuntimeRunsc:
		// gVisor (2022) keeps no domain name a build can read back.
		return false
	}
	return !strings.Contains(r.Version, " 1.0.") && !strings.Contains(r.Version, " 1.1.")
}

var versionCache sync.Map // path -> version string

// LookupRuntime finds the runtime called name (crun, runc or runsc) on PATH. A
// missing runtime is a *RuntimeError that says how to install it.
func LookupRuntime(ctx context.Context, name string) (*Runtime, error) {
	hint, ok := runtimeHints[name]
	if !ok {
		return nil, &RuntimeError{Runtime: name, Err: fmt.Errorf("%w: want %s (tried in that order by %s), or %s",
			ErrRuntimeUnsupported, strings.Join(RuntimeOrder, ", "), RuntimeAuto, RuntimeRunsc)}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return nil, &RuntimeError{Runtime: name, Err: fmt.Errorf("%w: %s is not on PATH; install it with `%s`", ErrRuntimeMissing, name, hint)}
	}
	if p, err = filepath.Abs(p); err != nil {
		return nil, &RuntimeError{Runtime: name, Err: err}
	}
	rt := &Runtime{Name: name, Path: p}
	if v, ok := versionCache.Load(p); ok {
		rt.Version = v.(string)
		return rt, nil
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(vctx, p, "--version").Output()
	if err != nil {
		return nil, &RuntimeError{Runtime: name, Err: fmt.Errorf("%w: `%s --version` failed (%w); reinstall it with `%s`", ErrRuntimeUnusable, p, err, hint)}
	}
	rt.Version, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	versionCache.Store(p, rt.Version)
	return rt, nil
}

// candidates returns the runtimes to try for name, in order, with a note for
// each runtime that auto skipped. An explicit name that cannot be found is
// an error; auto with none found is an error naming what to install.
func candidates(ctx context.Context, name string) ([]*Runtime, []string, error) {
	if name == "" || name == RuntimeAuto {
		var rts []*Runtime
		var notes, missing []string
		for _, n := range RuntimeOrder {
			rt, err := LookupRuntime(ctx, n)
			if err != nil {
				notes = append(notes, fmt.Sprintf("runtime auto: skipped %s: %v", n, errors.Unwrap(err)))
				missing = append(missing, "`"+runtimeHints[n]+"`")
				continue
			}
			rts = append(rts, rt)
		}
		if len(rts) == 0 {
			return nil, notes, &RuntimeError{Runtime: RuntimeAuto, Err: fmt.Errorf("%w: none of %s is on PATH; install one with %s",
				ErrRuntimeMissing, strings.Join(RuntimeOrder, ", "), strings.Join(missing, " or "))}
		}
		return rts, notes, nil
	}
	rt, err := LookupRuntime(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	return []*Runtime{rt}, nil, nil
}

// Filesystem magic numbers (statfs(2)).
const (
	cgroup2Magic = 0x63677270
	cgroup1Magic = 0x27e0eb
	tmpfsMagic   = 0x01021994
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupMode describes the host's cgroup setup.
type cgroupMode int

const (
	cgroupNone    cgroupMode = iota // no cgroup file system found
	cgroupV1                        // legacy: one v1 hierarchy per controller
	cgroupHybrid                    // v1 hierarchies plus a cgroup2 mount at unified
	cgroupUnified                   // cgroup v2 only
)

func (m cgroupMode) String() string {
	return [...]string{"none", "v1", "hybrid", "v2"}[m]
}

// fsMagic returns the file system type of path, or 0 when it cannot be read.
func fsMagic(path string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0
	}
	return int64(st.Type)
}

// detectCgroups returns the cgroup mode of this host.
func detectCgroups() cgroupMode {
	switch fsMagic(cgroupRoot) {
	case cgroup2Magic:
		return cgroupUnified
	case tmpfsMagic:
		if fsMagic(filepath.Join(cgroupRoot, "unified")) == cgroup2Magic {
			return cgroupHybrid
		}
		return cgroupV1
	}
	return cgroupNone
}

// limitsUsable reports whether the memory and pids controllers can be used
// by a runtime running in cgroup mode m (as the runtime sees it), and if
// not, why not.
func limitsUsable(m cgroupMode) (bool, string) {
	switch m {
	case cgroupV1, cgroupHybrid:
		for _, c := range []string{"memory", "pids"} {
			p := filepath.Join(cgroupRoot, c)
			if fsMagic(p) != cgroup1Magic {
				return false, fmt.Sprintf("the cgroup v1 %s controller is not mounted at %s", c, p)
			}
			if err := unix.Access(p, unix.W_OK); err != nil {
				return false, fmt.Sprintf("%s is not writable (%v)", p, err)
			}
		}
		return true, ""
	case cgroupUnified:
		b, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
		if err != nil {
			return false, fmt.Sprintf("reading the cgroup v2 controllers: %v", err)
		}
		have := strings.Fields(string(b))
		for _, c := range []string{"memory", "pids"} {
			if !contains(have, c) {
				return false, fmt.Sprintf("the cgroup v2 %s controller is not available (%s/cgroup.controllers: %q)", c, cgroupRoot, bytes.TrimSpace(b))
			}
		}
		if err := unix.Access(cgroupRoot, unix.W_OK); err != nil {
			return false, fmt.Sprintf("%s is not writable (%v)", cgroupRoot, err)
		}
		return true, ""
	}
	return false, "no cgroup file system is mounted at " + cgroupRoot
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// removeCgroups removes the empty cgroups named after container id that a
// runtime left behind (runsc leaves its own when the container was killed
// or ran out of memory). A cgroup that still holds a process is kept: the
// kernel refuses to remove it.
func removeCgroups(id string) {
	for _, pattern := range []string{id, "*/" + id} {
		dirs, _ := filepath.Glob(filepath.Join(cgroupRoot, pattern))
		for _, d := range dirs {
			_ = unix.Rmdir(d)
		}
	}
}
