package builder

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Paths and values every build sees.
const (
	// DefaultWorkdir is where the source is mounted when Step.Workdir is empty.
	DefaultWorkdir = "/src"
	// OutDir is the writable, initially empty directory the build writes
	// its output to; Step.Out is mounted there.
	OutDir = "/out"
	// Home is $HOME inside the build: an empty tmpfs.
	Home = "/home/build"
	// DefaultPath is $PATH when the image config sets none.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// Hostname is the build's host name, in its own UTS namespace.
	Hostname = "buildguard"
	// maxNoFile caps RLIMIT_NOFILE; the host's hard limit caps it further,
	// since a runtime without CAP_SYS_RESOURCE cannot raise it.
	maxNoFile = 1 << 20
	// ociVersion is the runtime-spec version config.json declares. Every
	// field Spec sets is in 1.0; crun 1.8 refuses versions it does not know
	// (such as the Go types' own 1.3.0), and runc 1.1 implements 1.0.2.
	ociVersion = "1.0.2"
)

// reservedDirs are mounted by the sandbox; the workdir may not be one of
// them or lie below one.
var reservedDirs = []string{"/proc", "/dev", "/sys", "/tmp", OutDir, Home}

// Spec returns the OCI runtime configuration that runs s with root (an
// absolute directory the runtime mounts as /, read-only) as its root
// filesystem and source (the run's private, writable copy of s.Source; see
// worktree.go) at the workdir. It holds:
//
//   - new pid, network (loopback only), ipc, uts, mount and user
//     namespaces, the user namespace mapping s.IDs;
//   - the root read-only, the source copy read-write at the workdir,
//     Step.Out read-write at /out, tmpfs at /tmp, $HOME and /dev/shm, and
//     each of s.Inputs read-only;
//   - uid 0 (an unprivileged host id) with no capabilities at all,
//     noNewPrivileges, umask 022;
//   - a seccomp filter (SeccompProfile, see seccomp.go) that allows every
//     system call but those a build never needs and an attacker uses to
//     reach the kernel or escape (new namespaces, mounts, the keyring, bpf,
//     ptrace, modules, the clock...), which fail with EPERM, on the native
//     architecture and its 32-bit compat ones;
//   - RLIMIT_NOFILE at the host's hard limit (at most 2^20), no core dumps;
//   - memory and pids limits when s sets them and withLimits is true;
//   - the environment of s.Environ, nothing from the host.
//
// s must have passed Validate.
func (s *Step) Spec(root, source string, withLimits bool) (*specs.Spec, error) {
	env, err := s.Environ()
	if err != nil {
		return nil, err
	}
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		return nil, fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	n := min(nofile.Max, maxNoFile)
	filter, err := seccomp()
	if err != nil {
		return nil, err
	}
	umask := uint32(0o022)
	if s.Sandbox.Umask != nil {
		umask = *s.Sandbox.Umask
	}
	hostname := Hostname
	if s.Sandbox.Hostname != "" {
		hostname = s.Sandbox.Hostname
	}
	if s.Sandbox.ReverseEnv {
		slices.Reverse(env)
	}
	sp := &specs.Spec{
		Version:    ociVersion,
		Root:       &specs.Root{Path: root, Readonly: true},
		Hostname:   hostname,
		Domainname: s.Sandbox.Domainname,
		Process: &specs.Process{
			User: specs.User{UID: s.Sandbox.UID, GID: s.Sandbox.GID, Umask: &umask},
			Args: append([]string(nil), s.Command...),
			Env:  env,
			Cwd:  s.workdir(),
			// Non-nil and empty: no capability in any set.
			Capabilities:    &specs.LinuxCapabilities{},
			NoNewPrivileges: true,
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: n, Soft: n},
				{Type: "RLIMIT_CORE", Hard: 0, Soft: 0},
			},
		},
		Mounts: s.mounts(source),
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.UserNamespace},
			},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: s.IDs.UID, Size: s.IDs.Size}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: s.IDs.GID, Size: s.IDs.Size}},
			Seccomp:     filter,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
				"/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
	// The domain name is set by the runtime with setdomainname(2), which
	// works in the build's user namespace; the kernel.domainname sysctl
	// would not (/proc/sys is writable by host root only).
	if !withLimits {
		// No cgroup: the rlimits that stand in. RLIMIT_AS bounds each
		// process's address space (not the build's total, and it counts
		// mappings never touched); RLIMIT_NPROC counts the processes of
		// the build's host uid, which only the build's processes hold.
		if s.Memory > 0 {
			m := uint64(s.Memory)
			sp.Process.Rlimits = append(sp.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_AS", Hard: m, Soft: m})
		}
		if s.Pids > 0 {
			p := uint64(s.Pids)
			sp.Process.Rlimits = append(sp.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NPROC", Hard: p, Soft: p})
		}
	}
	if withLimits {
		if s.Memory > 0 {
			m := s.Memory
			sp.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &m}
		}
		if s.Pids > 0 {
			p := s.Pids
			sp.Linux.Resources.Pids = &specs.LinuxPids{Limit: &p}
		}
	}
	return sp, nil
}

// mounts returns the build's mounts; the runtime mounts them in order.
func (s *Step) mounts(source string) []specs.Mount {
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		{Destination: Home, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=700",
			fmt.Sprintf("uid=%d", s.Sandbox.UID), fmt.Sprintf("gid=%d", s.Sandbox.GID)}},
		{Destination: s.workdir(), Type: "bind", Source: source, Options: []string{"rbind", "rw", "nosuid", "nodev"}},
		{Destination: OutDir, Type: "bind", Source: s.Out, Options: []string{"rbind", "rw", "nosuid", "nodev"}},
	}
	for _, in := range s.Inputs {
		mode := "ro"
		if in.Writable {
			mode = "rw" // Run has made Source the run's private copy
		}
		ms = append(ms, specs.Mount{Destination: s.inputDest(in), Type: "bind", Source: in.Source, Options: []string{"rbind", mode, "nosuid", "nodev"}})
	}
	return ms
}

// inputDest is where the build sees in: relative destinations are under
// the workdir.
func (s *Step) inputDest(in Input) string {
	if path.IsAbs(in.Destination) {
		return path.Clean(in.Destination)
	}
	return path.Join(s.workdir(), in.Destination)
}

// validateInputs refuses an input that is not an absolute existing host
// path, or whose destination is / or escapes the workdir, or lies in a
// directory the sandbox mounts itself (other than the workdir).
func (s *Step) validateInputs() error {
	for i, in := range s.Inputs {
		field := fmt.Sprintf("Inputs[%d]", i)
		if !path.IsAbs(in.Source) {
			return stepErrorf(field, "want an absolute host path, got %q", in.Source)
		}
		if _, err := os.Stat(in.Source); err != nil {
			return &StepError{Field: field, Err: err}
		}
		d := in.Destination
		if d == "" || (!path.IsAbs(d) && !filepath.IsLocal(d)) {
			return stepErrorf(field, "want an absolute destination or one inside the workdir, got %q", d)
		}
		d = s.inputDest(in)
		if d == "/" || d == s.workdir() {
			return stepErrorf(field, "destination %s would hide the root or the source", d)
		}
		for _, r := range reservedDirs {
			if d == r || strings.HasPrefix(d, r+"/") {
				return stepErrorf(field, "destination %s lies in %s, which the sandbox mounts itself", d, r)
			}
		}
	}
	return nil
}

func (s *Step) workdir() string {
	if s.Workdir == "" {
		return DefaultWorkdir
	}
	return s.Workdir
}

// Environ returns the build's whole environment, sorted by name: the
// variables of s.Env, then SOURCE_DATE_EPOCH, HOME and, unless s.Env sets
// it, PATH from the image config (DefaultPath when the image sets none).
// Nothing comes from the host's environment.
func (s *Step) Environ() ([]string, error) {
	env := map[string]string{"PATH": s.ImagePath}
	if env["PATH"] == "" {
		env["PATH"] = DefaultPath
	}
	for k, v := range s.Env {
		if err := checkEnv(k, v); err != nil {
			return nil, err
		}
		env[k] = v
	}
	env["SOURCE_DATE_EPOCH"] = strconv.FormatInt(s.SourceDateEpoch, 10)
	env["HOME"] = Home
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// checkEnv refuses a variable the build cannot be given as asked.
func checkEnv(k, v string) error {
	switch {
	case k == "" || strings.ContainsAny(k, "=\x00"):
		return stepErrorf("Env", "variable name %q: want a name without '=' or NUL", k)
	case strings.ContainsRune(v, 0):
		return stepErrorf("Env", "variable %s: the value contains a NUL byte", k)
	case k == "SOURCE_DATE_EPOCH":
		return stepErrorf("Env", "SOURCE_DATE_EPOCH is set by buildguard: set sourceDateEpoch in buildguard.yaml instead")
	case k == "HOME":
		return stepErrorf("Env", "HOME is set by buildguard to %s (an empty tmpfs)", Home)
	}
	return nil
}

// Validate checks s before anything runs; it is called by Run.
func (s *Step) Validate() error {
	if !path.IsAbs(s.Rootfs) {
		return stepErrorf("Rootfs", "want the absolute path of an unpacked root (Cache.Unpack), got %q", s.Rootfs)
	}
	if len(s.Command) == 0 || s.Command[0] == "" {
		return stepErrorf("Command", "want the command to run, as argv")
	}
	if w := s.workdir(); !path.IsAbs(w) || path.Clean(w) != w || w == "/" {
		return stepErrorf("Workdir", "want a clean absolute path other than /, got %q", w)
	}
	for _, r := range reservedDirs {
		w := s.workdir()
		if w == r || strings.HasPrefix(w, r+"/") || strings.HasPrefix(r, w+"/") {
			return stepErrorf("Workdir", "%s overlaps %s, which the sandbox mounts itself", w, r)
		}
	}
	for _, d := range []struct{ field, p string }{{"Rootfs", s.Rootfs}, {"Source", s.Source}, {"Out", s.Out}} {
		if !path.IsAbs(d.p) {
			return stepErrorf(d.field, "want an absolute path, got %q", d.p)
		}
		fi, err := os.Stat(d.p)
		if err != nil {
			return &StepError{Field: d.field, Err: err}
		}
		if !fi.IsDir() {
			return stepErrorf(d.field, "%s is not a directory", d.p)
		}
	}
	ents, err := os.ReadDir(s.Out)
	if err != nil {
		return &StepError{Field: "Out", Err: err}
	}
	if len(ents) > 0 {
		return stepErrorf("Out", "%s is not empty: the build must start from an empty output directory", s.Out)
	}
	for k, v := range s.Env {
		if err := checkEnv(k, v); err != nil {
			return err
		}
	}
	if err := s.validateInputs(); err != nil {
		return err
	}
	switch {
	case s.SourceDateEpoch < 0:
		return stepErrorf("SourceDateEpoch", "must not be negative, got %d", s.SourceDateEpoch)
	case s.Timeout < 0:
		return stepErrorf("Timeout", "must not be negative, got %s", s.Timeout)
	case s.Memory < 0 || s.Pids < 0:
		return stepErrorf("Memory", "limits must not be negative, got memory %d, pids %d", s.Memory, s.Pids)
	case s.MaxLog < 0:
		return stepErrorf("MaxLog", "must not be negative, got %d", s.MaxLog)
	}
	if s.Memory > 0 && s.Memory < 4<<20 {
		return stepErrorf("Memory", "%d bytes is too little to start a process; want at least 4Mi", s.Memory)
	}
	return nil
}
