// Package doctor says what a guarded build needs on this machine, and how to
// fix what it lacks. Every check is measured on the machine (a file read, a
// binary found and asked its version, a directory written, a user namespace
// created for true(1)), never assumed; none starts a container or touches
// the network, so that Run is quick and safe to call anywhere.
//
// The checks reuse the detection of the packages that act on the machine
// (builder's runtime look-up, cgroup and libfaketime discovery and seccomp
// architectures, deps' registry resolution), so that doctor and a build
// cannot disagree about what was found.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/deps"
)

// Status is a check's outcome.
type Status string

// The statuses. Only missing makes a machine not ready: a warning names
// something a build does without (and its report says so).
const (
	StatusOK      Status = "ok"
	StatusMissing Status = "missing"
	StatusWarn    Status = "warn"
)

// The check names, in the order Run reports them.
const (
	CheckRoot        = "root"
	CheckRuntime     = "runtime"
	CheckCgroups     = "cgroups"
	CheckOverlayfs   = "overlayfs"
	CheckUserns      = "userns"
	CheckSubids      = "subids"
	CheckUidmap      = "uidmap"
	CheckLibfaketime = "libfaketime"
	CheckSeccomp     = "seccomp"
	CheckCache       = "cache"
	CheckRegistries  = "registries"
	CheckGit         = "git"
)

// Check is the outcome of one check, as plain data.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail says what was found.
	Detail string `json:"detail"`
	// Fix says what to do about a missing or warn status ("" when ok).
	Fix string `json:"fix,omitempty"`
}

// Report is every check, in a fixed order. Ready is true when no check is
// missing.
type Report struct {
	Ready  bool    `json:"ready"`
	Checks []Check `json:"checks"`
}

// Missing returns the names of the missing checks, in order.
func (r *Report) Missing() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Status == StatusMissing {
			out = append(out, c.Name)
		}
	}
	return out
}

// Warnings counts the checks with status warn.
func (r *Report) Warnings() int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == StatusWarn {
			n++
		}
	}
	return n
}

// MinFreeBytes is the free space below which the cache check warns: room
// for a few unpacked builder images and their dependencies.
const MinFreeBytes = 10 << 30

// Options say which machine Run looks at. The zero value looks at this one.
type Options struct {
	// CacheDir is the rootfs cache, as guard.Options.CacheDir; empty means
	// builder.DefaultDir(). The dependency cache is checked beside it, where
	// a build keeps it.
	CacheDir string
	// Environ is the environment the registries and TMPDIR (where each
	// run's directory goes) are read from, as a build reads them; nil means
	// os.Environ().
	Environ []string
	// Host is how the machine is read; nil fields use the real machine.
	// Tests stand in another machine here.
	Host Host
}

// Host is how the checks read the machine. Each nil field is the real
// function named in its comment.
type Host struct {
	// Geteuid is os.Geteuid.
	Geteuid func() int
	// Username is the name of the effective user (os/user), "" if unknown.
	Username func() string
	// LookPath is exec.LookPath.
	LookPath func(file string) (string, error)
	// Output runs a program and returns its standard output (os/exec).
	Output func(ctx context.Context, name string, args ...string) ([]byte, error)
	// ReadFile is os.ReadFile.
	ReadFile func(name string) ([]byte, error)
	// LookupRuntime is builder.LookupRuntime.
	LookupRuntime func(ctx context.Context, name string) (*builder.Runtime, error)
	// CgroupMode is builder.CgroupMode.
	CgroupMode func() string
	// LimitsUsable is builder.LimitsUsable.
	LimitsUsable func() (bool, string)
	// Libfaketime is builder.Libfaketime.
	Libfaketime func() (string, error)
	// SeccompArches is builder.SeccompArches.
	SeccompArches func() ([]string, error)
	// CacheDir is builder.DefaultDir.
	CacheDir func() (string, error)
	// Userns creates a user namespace and reports why it could not
	// (a process started with CLONE_NEWUSER).
	Userns func() error
	// FreeBytes is builder.FreeBytes.
	FreeBytes func(path string) (uint64, error)
}

func (h Host) withDefaults() Host {
	if h.Geteuid == nil {
		h.Geteuid = os.Geteuid
	}
	if h.Username == nil {
		h.Username = currentUser
	}
	if h.LookPath == nil {
		h.LookPath = exec.LookPath
	}
	if h.Output == nil {
		h.Output = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return exec.CommandContext(ctx, name, args...).Output()
		}
	}
	if h.ReadFile == nil {
		h.ReadFile = os.ReadFile
	}
	if h.LookupRuntime == nil {
		h.LookupRuntime = builder.LookupRuntime
	}
	if h.CgroupMode == nil {
		h.CgroupMode = builder.CgroupMode
	}
	if h.LimitsUsable == nil {
		h.LimitsUsable = builder.LimitsUsable
	}
	if h.Libfaketime == nil {
		h.Libfaketime = builder.Libfaketime
	}
	if h.SeccompArches == nil {
		h.SeccompArches = builder.SeccompArches
	}
	if h.CacheDir == nil {
		h.CacheDir = builder.DefaultDir
	}
	if h.FreeBytes == nil {
		h.FreeBytes = builder.FreeBytes
	}
	if h.Userns == nil {
		h.Userns = probeUserns
	}
	return h
}

// Run checks the machine. It never fails: what cannot be read is reported
// in the check it belongs to.
func Run(ctx context.Context, o Options) *Report {
	d := &doctor{o: o, h: o.Host.withDefaults()}
	if d.o.Environ == nil {
		d.o.Environ = os.Environ()
	}
	checks := []func(context.Context) Check{
		d.root, d.runtime, d.cgroups, d.overlayfs, d.userns, d.subids, d.uidmap,
		d.libfaketime, d.seccomp, d.cache, d.registries, d.git,
	}
	r := &Report{Checks: make([]Check, len(checks))}
	for i, c := range checks {
		r.Checks[i] = c(ctx)
	}
	r.Ready = len(r.Missing()) == 0
	return r
}

type doctor struct {
	o Options
	h Host
}

// root says which mode a build would run in for this user: as root, in a
// user namespace mapped to root's subordinate ids; as anyone else, rootless
// in a user namespace of its own (internal/rootless), ranged when the user
// has a subordinate id range and newuidmap and newgidmap, single-id
// otherwise. Neither mode needs root, so the check is never missing: the
// userns, subids and uidmap checks say what a mode lacks.
func (d *doctor) root(context.Context) Check {
	c := Check{Name: CheckRoot, Status: StatusOK}
	uid := d.h.Geteuid()
	if uid == 0 {
		c.Detail = "running as root (uid 0): builds run in a user namespace mapped to root's subordinate id range, never as host root"
		return c
	}
	mode, why := builder.IDMapRanged, "the user's subordinate ids through newuidmap and newgidmap: the image's owners are kept"
	if _, ok := d.subidRanges(); !ok {
		mode, why = builder.IDMapSingle, "the user has no range of subordinate ids"
	} else if _, err := d.h.LookPath("newuidmap"); err != nil {
		mode, why = builder.IDMapSingle, "newuidmap is not installed"
	} else if _, err := d.h.LookPath("newgidmap"); err != nil {
		mode, why = builder.IDMapSingle, "newgidmap is not installed"
	}
	if mode == builder.IDMapSingle {
		why += ": the user alone is mapped, as 0; every file of the image belongs to it and the uid variation is reported unreached"
	}
	c.Detail = fmt.Sprintf("running as uid %d: builds run rootless in a user namespace of their own (%s: %s)", uid, mode, why)
	if d.h.CgroupMode() == "hybrid" {
		c.Detail += "; crun refuses hybrid cgroups rootless, so runtime auto uses runc"
	}
	return c
}

func (d *doctor) runtime(ctx context.Context) Check {
	c := Check{Name: CheckRuntime}
	var found, others []string
	for _, name := range builder.RuntimeOrder {
		rt, err := d.h.LookupRuntime(ctx, name)
		switch {
		case err == nil:
			found = append(found, fmt.Sprintf("%s (%s)", rt, rt.Path))
		case errors.Is(err, builder.ErrRuntimeMissing):
			others = append(others, name+" not found on PATH")
		default:
			others = append(others, fmt.Sprintf("%s unusable: %v", name, errors.Unwrap(err)))
		}
	}
	c.Detail = strings.Join(append(append([]string(nil), found...), others...), "; ")
	if len(found) == 0 {
		c.Status = StatusMissing
		c.Detail = "no OCI runtime: " + c.Detail
		c.Fix = "apt-get install -y crun"
		return c
	}
	c.Status = StatusOK
	// gVisor is only used when named (builder.runtime: runsc): say
	// whether it is there, never fail for it.
	if rt, err := d.h.LookupRuntime(ctx, builder.RuntimeRunsc); err == nil {
		c.Detail += fmt.Sprintf("; %s (%s) for builder.runtime: runsc", rt, rt.Path)
	} else {
		c.Detail += "; runsc (gVisor, builder.runtime: runsc) not found (" + builder.RuntimeHint(builder.RuntimeRunsc) + ")"
	}
	c.Detail += " (presence and version only: no container was started)"
	return c
}

func (d *doctor) cgroups(context.Context) Check {
	c := Check{Name: CheckCgroups}
	mode := d.h.CgroupMode()
	ok, why := d.h.LimitsUsable()
	if ok {
		c.Status, c.Detail = StatusOK, fmt.Sprintf("cgroup %s; memory and pids limits can be applied", mode)
		if mode == "hybrid" {
			c.Detail += " (crun, which refuses hybrid cgroups, runs with the unified mount hidden, so it sees v1)"
		}
		return c
	}
	c.Status = StatusWarn
	c.Detail = fmt.Sprintf("cgroup %s; memory and pids limits cannot be applied through cgroups (%s): RLIMIT_AS (memory, per process) "+
		"and RLIMIT_NPROC (pids) stand in and the sandbox record says so, or, with builder.limits.required, a build that sets them stops (exit 3)", mode, why)
	c.Fix = "run as root on a host with the memory and pids controllers enabled (cgroup v2: both listed in /sys/fs/cgroup/cgroup.controllers)"
	return c
}

func (d *doctor) overlayfs(context.Context) Check {
	c := Check{Name: CheckOverlayfs}
	b, err := d.h.ReadFile("/proc/filesystems")
	if err != nil {
		c.Status, c.Detail = StatusWarn, fmt.Sprintf("cannot tell: %v", err)
		c.Fix = "modprobe overlay"
		return c
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == "overlay" {
			c.Status, c.Detail = StatusOK, "overlay is in /proc/filesystems: the read-only root is an overlay of the cached rootfs"
			return c
		}
	}
	c.Status = StatusWarn
	c.Detail = "overlay is not in /proc/filesystems: the root is then the cached rootfs bind-mounted read-only, and every mount point (/proc, /dev, /sys, /tmp, the output, home and work directories) must already exist in the builder image"
	c.Fix = "modprobe overlay (and add overlay to /etc/modules to keep it)"
	return c
}

func (d *doctor) userns(context.Context) Check {
	c := Check{Name: CheckUserns}
	root := d.h.Geteuid() == 0
	// Every build runs in a user namespace: a machine where this process
	// cannot make one cannot build.
	if err := d.h.Userns(); err != nil {
		c.Status = StatusMissing
		c.Detail = fmt.Sprintf("this process cannot create a user namespace (%v), and every build runs in one", err)
		var fixes []string
		if v, ok := d.sysctl("/proc/sys/user/max_user_namespaces"); ok && v == "0" {
			c.Detail += "; user.max_user_namespaces=0"
			fixes = append(fixes, "sysctl -w user.max_user_namespaces=15000")
		}
		if !root {
			fixes = append(fixes, d.unprivilegedFixes()...)
		}
		if len(fixes) == 0 {
			fixes = append(fixes, "allow user namespaces: a kernel built with CONFIG_USER_NS, and no seccomp or LSM policy around buildguard that refuses unshare(CLONE_NEWUSER)")
		}
		c.Fix = strings.Join(fixes, "; ") + " (persist in /etc/sysctl.d/)"
		return c
	}
	c.Status = StatusOK
	c.Detail = "user namespaces can be created"
	if v, ok := d.sysctl("/proc/sys/user/max_user_namespaces"); ok {
		c.Detail += "; user.max_user_namespaces=" + v
	}
	if fixes := d.unprivilegedFixes(); root && len(fixes) > 0 {
		c.Status = StatusWarn
		c.Detail += "; unprivileged users cannot create them, so builds run only as root here"
		c.Fix = strings.Join(fixes, "; ") + " (persist in /etc/sysctl.d/), for rootless builds"
	}
	return c
}

// unprivilegedFixes are the sysctl changes that let an unprivileged user
// create user namespaces, for each switch that stops it.
func (d *doctor) unprivilegedFixes() []string {
	var fixes []string
	if v, ok := d.sysctl("/proc/sys/kernel/unprivileged_userns_clone"); ok && v == "0" {
		fixes = append(fixes, "sysctl -w kernel.unprivileged_userns_clone=1 (it is 0)")
	}
	if v, ok := d.sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); ok && v == "1" {
		fixes = append(fixes, "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (it is 1), or an AppArmor profile allowing userns for buildguard")
	}
	return fixes
}

// probeUserns starts true(1) in a user namespace of its own.
func probeUserns() error {
	p, err := exec.LookPath("true")
	if err != nil {
		return err
	}
	cmd := exec.Command(p)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	return cmd.Run()
}

// sysctl reads a one-value /proc/sys file; ok is false when it is absent.
func (d *doctor) sysctl(path string) (string, bool) {
	b, err := d.h.ReadFile(path)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// subidRanges reads the effective user's ranges in /etc/subuid and
// /etc/subgid: what was found, or, when ok is false, what is lacking.
func (d *doctor) subidRanges() (_ []string, ok bool) {
	user, uid := d.user()
	var found, lacking []string
	for _, file := range []string{builder.SubUIDFile, builder.SubGIDFile} {
		b, err := d.h.ReadFile(file)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			lacking = append(lacking, fmt.Sprintf("%s: %v", file, err))
			continue
		}
		r, ok := builder.ParseSubIDs(b, user, uid)
		switch {
		case !ok:
			lacking = append(lacking, file)
		case r.Count < builder.MinSubIDs:
			lacking = append(lacking, fmt.Sprintf("%s (only %d ids, fewer than %d)", file, r.Count, builder.MinSubIDs))
		default:
			found = append(found, fmt.Sprintf("%s %d-%d (%d ids)", file, r.Start, uint64(r.Start)+uint64(r.Count)-1, r.Count))
		}
	}
	if len(lacking) > 0 {
		return lacking, false
	}
	return found, true
}

// user is the effective user's name (its uid when it has none) and uid.
func (d *doctor) user() (name, uid string) {
	uid = strconv.Itoa(d.h.Geteuid())
	if name = d.h.Username(); name == "" {
		name = uid
	}
	return name, uid
}

func (d *doctor) subids(context.Context) Check {
	c := Check{Name: CheckSubids}
	user, _ := d.user()
	r, ok := d.subidRanges()
	if ok {
		c.Status = StatusOK
		c.Detail = fmt.Sprintf("%s has subordinate ids: %s; the build's users are mapped there", user, strings.Join(r, ", "))
		return c
	}
	c.Fix = builder.SubIDFix(user)
	if d.h.Geteuid() != 0 {
		// Rootless, the user alone is mapped instead (single-id mode).
		c.Status = StatusWarn
		c.Detail = fmt.Sprintf("%s has no usable subordinate id range in %s: its builds run in a single-id user namespace "+
			"(the user alone, as 0: the image's other owners are lost and the uid variation is reported unreached)", user, strings.Join(r, ", "))
		return c
	}
	c.Status = StatusMissing
	c.Detail = fmt.Sprintf("%s has no usable subordinate id range in %s: every build runs in a user namespace mapped to one "+
		"(as root too: buildguard never picks a range itself, which could be another user's)", user, strings.Join(r, ", "))
	return c
}

func (d *doctor) uidmap(context.Context) Check {
	c := Check{Name: CheckUidmap}
	var found, missing []string
	for _, name := range []string{"newuidmap", "newgidmap"} {
		if p, err := d.h.LookPath(name); err == nil {
			found = append(found, p)
		} else {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		c.Status = StatusWarn
		c.Detail = strings.Join(missing, " and ") + " not found on PATH: an unprivileged user's builds then run in a single-id user namespace " +
			"(the image's other owners lost); root's builds do not use them"
		c.Fix = "apt-get install -y uidmap"
		return c
	}
	c.Status, c.Detail = StatusOK, strings.Join(found, ", ")
	return c
}

func (d *doctor) libfaketime(context.Context) Check {
	c := Check{Name: CheckLibfaketime}
	p, err := d.h.Libfaketime()
	if err != nil {
		c.Status = StatusWarn
		c.Detail = fmt.Sprintf("%v: the time variation then only staggers a run's start, it does not shift the build's clock", err)
		c.Fix = "apt-get install -y faketime libfaketime"
		return c
	}
	c.Status = StatusOK
	c.Detail = p + " (preloaded by the time variation into images whose glibc can load it)"
	return c
}

func (d *doctor) seccomp(context.Context) Check {
	c := Check{Name: CheckSeccomp}
	c.Status = StatusMissing
	c.Fix = "run on an amd64 or arm64 Linux host whose kernel has CONFIG_SECCOMP_FILTER"
	arches, err := d.h.SeccompArches()
	if err != nil {
		c.Detail = fmt.Sprintf("%v: every build would fail", err)
		return c
	}
	status, err := d.h.ReadFile("/proc/self/status")
	if err != nil {
		c.Detail = fmt.Sprintf("cannot tell whether the kernel has seccomp: %v", err)
		return c
	}
	if !hasLine(status, "Seccomp:") {
		c.Detail = "the kernel has no seccomp (no Seccomp: line in /proc/self/status): every build would fail, as it runs behind a seccomp filter"
		return c
	}
	if acts, err := d.h.ReadFile("/proc/sys/kernel/seccomp/actions_avail"); err == nil {
		have := strings.Fields(string(acts))
		for _, want := range []string{"errno", "allow"} {
			if !contains(have, want) {
				c.Detail = fmt.Sprintf("the kernel's seccomp filters lack the %s action the filter uses (actions_avail: %s): every build would fail", want, strings.TrimSpace(string(acts)))
				return c
			}
		}
	}
	c.Status, c.Fix = StatusOK, ""
	c.Detail = "the kernel has seccomp filters; the filter covers " + strings.Join(arches, ", ")
	return c
}

func hasLine(b []byte, prefix string) bool {
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d *doctor) cache(context.Context) Check {
	c := Check{Name: CheckCache}
	rootfs, named := d.o.CacheDir, d.o.CacheDir != ""
	if !named {
		var err error
		if rootfs, err = d.h.CacheDir(); err != nil {
			c.Status, c.Detail = StatusMissing, err.Error()
			c.Fix = "set XDG_CACHE_HOME or HOME to an absolute, writable directory"
			return c
		}
	}
	depsDir := builder.DependencyCacheDir(rootfs, named) // where a build keeps them
	runs := tempDir(d.o.Environ)                         // each run's copy of the source
	var free uint64
	for i, dir := range []string{rootfs, depsDir, runs} {
		if err := writable(dir); err != nil {
			c.Status = StatusMissing
			c.Detail = fmt.Sprintf("%s is not writable: %v", dir, err)
			setting := "XDG_CACHE_HOME"
			if dir == runs {
				setting = "TMPDIR"
			}
			c.Fix = "make " + dir + " writable by the user running buildguard (or set " + setting + " to a directory that is)"
			return c
		}
		n, err := d.h.FreeBytes(dir)
		if err != nil {
			c.Status = StatusWarn
			c.Detail = fmt.Sprintf("%s is writable, but its free space is unknown: %v", dir, err)
			c.Fix = "check the free space there (df -h " + dir + ")"
			return c
		}
		if i == 0 || n < free {
			free = n
		}
	}
	c.Detail = fmt.Sprintf("rootfs cache %s, dependency cache %s and run directories %s (TMPDIR) are writable; %s free", rootfs, depsDir, runs, gib(free))
	if free < MinFreeBytes {
		c.Status = StatusWarn
		c.Detail += fmt.Sprintf(", less than %s: unpacking a builder image, fetching dependencies or copying the source for a run may run out of space", gib(MinFreeBytes))
		c.Fix = "free space there, or set XDG_CACHE_HOME (the caches) or TMPDIR (the run directories) to a larger file system"
		return c
	}
	c.Status = StatusOK
	return c
}

// tempDir is where a build's run directories go: $TMPDIR in environ, as
// os.TempDir reads it, else /tmp.
func tempDir(environ []string) string {
	dir := "/tmp"
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "TMPDIR="); ok {
			dir = v
		}
	}
	if dir == "" {
		dir = "/tmp"
	}
	return dir
}

// writable creates dir if needed, then creates and removes a file in it.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".buildguard-doctor-*")
	if err != nil {
		return err
	}
	name := f.Name()
	cerr := f.Close()
	if err := os.Remove(name); err != nil {
		return err
	}
	return cerr
}

func gib(n uint64) string {
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

func (d *doctor) registries(context.Context) Check {
	c := Check{Name: CheckRegistries, Status: StatusOK}
	var parts, fixes []string
	if ps, err := deps.GoProxies(d.o.Environ); err != nil {
		c.Status = StatusWarn
		parts = append(parts, fmt.Sprintf("Go modules: %v", err))
		fixes = append(fixes, "set GOPROXY to an https module proxy (e.g. "+deps.DefaultGoProxy+")")
	} else {
		for i, p := range ps {
			ps[i] = redact(p)
		}
		parts = append(parts, "Go modules from "+strings.Join(ps, ", "))
	}
	if r, err := deps.NPMRegistry(d.o.Environ); err != nil {
		c.Status = StatusWarn
		parts = append(parts, fmt.Sprintf("npm packages: %v", err))
		fixes = append(fixes, "set npm_config_registry (or registry= in ~/.npmrc) to an https registry URL")
	} else {
		parts = append(parts, "npm packages from "+r)
	}
	c.Detail = strings.Join(parts, "; ") + " (resolved as a build would, not contacted)"
	c.Fix = strings.Join(fixes, "; ")
	return c
}

// redact hides a password in a proxy URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}

func (d *doctor) git(ctx context.Context) Check {
	c := Check{Name: CheckGit}
	p, err := d.h.LookPath("git")
	if err != nil {
		c.Status = StatusWarn
		c.Detail = "git not found on PATH: SOURCE_DATE_EPOCH then comes from the host's $SOURCE_DATE_EPOCH or is 0, not from the source's last commit"
		c.Fix = "apt-get install -y git"
		return c
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := d.h.Output(vctx, p, "--version")
	if err != nil {
		c.Status = StatusWarn
		c.Detail = fmt.Sprintf("%s --version failed (%v): SOURCE_DATE_EPOCH may not come from the source's last commit", p, err)
		c.Fix = "reinstall git: apt-get install --reinstall -y git"
		return c
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	c.Status, c.Detail = StatusOK, fmt.Sprintf("%s (%s): SOURCE_DATE_EPOCH from the source's last commit", v, p)
	return c
}
