package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/deps"
)

// machine is a stand-in host: files by path, binaries on PATH, and the
// builder's findings. Its zero value plus ready() is a ready machine.
type machine struct {
	euid     int
	user     string
	files    map[string]string
	path     map[string]string // name -> path
	outputs  map[string]string // path -> --version output
	cgroup   string
	limits   bool
	faketime string
	arches   []string
	free     uint64
	userns   error // what creating a user namespace fails with
}

func ready() *machine {
	return &machine{
		user: "root",
		files: map[string]string{
			"/proc/filesystems":                          "nodev\tsysfs\nnodev\toverlay\n\text4\n",
			"/proc/sys/user/max_user_namespaces":         "63000\n",
			"/proc/sys/kernel/unprivileged_userns_clone": "1\n",
			"/etc/subuid":                                "root:100000:65536\n",
			"/etc/subgid":                                "root:100000:65536\n",
			"/proc/self/status":                          "Name:\tbuildguard\nSeccomp:\t0\nSeccomp_filters:\t0\n",
			"/proc/sys/kernel/seccomp/actions_avail":     "kill_process kill_thread trap errno user_notif trace log allow\n",
		},
		path: map[string]string{
			"crun": "/usr/bin/crun", "runc": "/usr/sbin/runc", "git": "/usr/bin/git",
			"newuidmap": "/usr/bin/newuidmap", "newgidmap": "/usr/bin/newgidmap",
		},
		outputs: map[string]string{
			"/usr/bin/crun": "crun version 1.8.1\ncommit: x\n", "/usr/sbin/runc": "runc version 1.1.5\n",
			"/usr/bin/git": "git version 2.39.5\n",
		},
		cgroup:   "v2",
		limits:   true,
		faketime: "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
		arches:   []string{"SCMP_ARCH_X86_64"},
		free:     100 << 30,
	}
}

func (m *machine) host() Host {
	return Host{
		Geteuid:  func() int { return m.euid },
		Username: func() string { return m.user },
		LookPath: func(name string) (string, error) {
			if p, ok := m.path[name]; ok {
				return p, nil
			}
			return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
		},
		Output: func(_ context.Context, name string, _ ...string) ([]byte, error) {
			if out, ok := m.outputs[name]; ok {
				return []byte(out), nil
			}
			return nil, errors.New("exit status 1")
		},
		ReadFile: func(name string) ([]byte, error) {
			if s, ok := m.files[name]; ok {
				return []byte(s), nil
			}
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		},
		LookupRuntime: func(_ context.Context, name string) (*builder.Runtime, error) {
			p, ok := m.path[name]
			if !ok {
				return nil, &builder.RuntimeError{Runtime: name, Err: fmt.Errorf("%w: %s is not on PATH", builder.ErrRuntimeMissing, name)}
			}
			out, ok := m.outputs[p]
			if !ok {
				return nil, &builder.RuntimeError{Runtime: name, Err: fmt.Errorf("%w: `%s --version` failed", builder.ErrRuntimeUnusable, p)}
			}
			v, _, _ := strings.Cut(out, "\n")
			return &builder.Runtime{Name: name, Path: p, Version: v}, nil
		},
		CgroupMode: func() string { return m.cgroup },
		LimitsUsable: func() (bool, string) {
			if m.limits {
				return true, ""
			}
			return false, "the cgroup v2 memory controller is not available"
		},
		Libfaketime: func() (string, error) {
			if m.faketime == "" {
				return "", fmt.Errorf("%w (looked in /usr/lib/faketime/libfaketime.so.1)", builder.ErrNoLibfaketime)
			}
			return m.faketime, nil
		},
		SeccompArches: func() ([]string, error) {
			if m.arches == nil {
				return nil, errors.New("no seccomp filter for s390x: buildguard runs builds on amd64 and arm64 hosts")
			}
			return m.arches, nil
		},
		FreeBytes: func(string) (uint64, error) { return m.free, nil },
		Userns:    func() error { return m.userns },
	}
}

func (m *machine) run(t *testing.T) *Report {
	t.Helper()
	return Run(context.Background(), Options{CacheDir: t.TempDir(), Environ: []string{"HOME=" + t.TempDir()}, Host: m.host()})
}

func find(t *testing.T, r *Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, r.Checks)
	return Check{}
}

func TestReadyMachine(t *testing.T) {
	r := ready().run(t)
	want := []string{CheckRoot, CheckRuntime, CheckCgroups, CheckOverlayfs, CheckUserns, CheckSubids, CheckUidmap,
		CheckLibfaketime, CheckSeccomp, CheckCache, CheckRegistries, CheckGit}
	if len(r.Checks) != len(want) {
		t.Fatalf("got %d checks, want %d", len(r.Checks), len(want))
	}
	for i, c := range r.Checks {
		if c.Name != want[i] {
			t.Errorf("check %d is %q, want %q (the order is fixed)", i, c.Name, want[i])
		}
		if c.Status != StatusOK || c.Fix != "" {
			t.Errorf("%s: %s %q fix %q, want ok and no fix", c.Name, c.Status, c.Detail, c.Fix)
		}
	}
	if !r.Ready || len(r.Missing()) != 0 || r.Warnings() != 0 {
		t.Errorf("ready=%v missing=%v warnings=%d", r.Ready, r.Missing(), r.Warnings())
	}
	if d := find(t, r, CheckRuntime).Detail; !strings.Contains(d, "crun version 1.8.1 (/usr/bin/crun)") || !strings.Contains(d, "runc version 1.1.5") {
		t.Errorf("runtime detail %q", d)
	}
	if d := find(t, r, CheckSubids).Detail; !strings.Contains(d, "/etc/subuid 100000-165535 (65536 ids)") {
		t.Errorf("subids detail %q", d)
	}
	if d := find(t, r, CheckRegistries).Detail; !strings.Contains(d, deps.DefaultGoProxy) || !strings.Contains(d, deps.DefaultNPMRegistry) {
		t.Errorf("registries detail %q", d)
	}
}

// TestMachines feeds machines that lack one thing each and checks what a
// user would read: the status, words of the detail and the fix, and
// whether the machine is still ready.
func TestMachines(t *testing.T) {
	tests := []struct {
		name   string
		change func(*machine)
		check  string
		status Status
		detail string
		fix    string
		ready  bool
	}{
		{"not root", func(m *machine) {
			m.euid, m.user = 1000, "dev"
			m.files["/etc/subuid"], m.files["/etc/subgid"] = "dev:100000:65536\n", "dev:100000:65536\n"
		}, CheckRoot, StatusOK,
			"running as uid 1000: builds run rootless in a user namespace of their own (ranged: the user's subordinate ids", "", true},
		{"not root, no subordinate ids", func(m *machine) { m.euid, m.user = 1000, "dev" }, CheckSubids, StatusWarn,
			"dev has no usable subordinate id range in /etc/subuid, /etc/subgid: its builds run in a single-id user namespace",
			"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 dev", true},
		{"no runtime", func(m *machine) { delete(m.path, "crun"); delete(m.path, "runc") }, CheckRuntime, StatusMissing,
			"crun not found on PATH; runc not found on PATH", "apt-get install -y crun", false},
		{"runc only", func(m *machine) { delete(m.path, "crun") }, CheckRuntime, StatusOK,
			"runc version 1.1.5 (/usr/sbin/runc); crun not found on PATH", "", true},
		{"crun broken, runc fine", func(m *machine) { delete(m.outputs, "/usr/bin/crun") }, CheckRuntime, StatusOK,
			"crun unusable: OCI runtime cannot start a container here", "", true},
		{"no runsc", func(m *machine) {}, CheckRuntime, StatusOK,
			"runsc (gVisor, builder.runtime: runsc) not found (apt-get install -y runsc)", "", true},
		{"runsc", func(m *machine) {
			m.path["runsc"], m.outputs["/usr/bin/runsc"] = "/usr/bin/runsc", "runsc version 0.0~20221219.0\nspec: 1.0.2-dev\n"
		}, CheckRuntime, StatusOK, "runsc version 0.0~20221219.0 (/usr/bin/runsc) for builder.runtime: runsc", "", true},
		{"runsc only", func(m *machine) {
			delete(m.path, "crun")
			delete(m.path, "runc")
			m.path["runsc"], m.outputs["/usr/bin/runsc"] = "/usr/bin/runsc", "runsc version 0.0~20221219.0\n"
		}, CheckRuntime, StatusMissing, "no OCI runtime", "apt-get install -y crun", false},
		{"no cgroup limits", func(m *machine) { m.limits = false }, CheckCgroups, StatusWarn,
			"memory and pids limits cannot be applied through cgroups (the cgroup v2 memory controller is not available): RLIMIT_AS (memory, per process) and RLIMIT_NPROC (pids) stand in", "memory and pids controllers", true},
		{"no overlay", func(m *machine) { m.files["/proc/filesystems"] = "nodev\tsysfs\n\text4\n" }, CheckOverlayfs, StatusWarn,
			"must already exist in the builder image", "modprobe overlay", true},
		{"userns disabled for users by sysctl", func(m *machine) { m.files["/proc/sys/kernel/unprivileged_userns_clone"] = "0\n" }, CheckUserns, StatusWarn,
			"unprivileged users cannot create them", "sysctl -w kernel.unprivileged_userns_clone=1", true},
		{"userns max 0", func(m *machine) {
			m.files["/proc/sys/user/max_user_namespaces"] = "0\n"
			m.userns = errors.New("fork/exec /usr/bin/true: no space left on device")
		}, CheckUserns, StatusMissing,
			"cannot create a user namespace (fork/exec /usr/bin/true: no space left on device), and every build runs in one; user.max_user_namespaces=0",
			"sysctl -w user.max_user_namespaces=15000", false},
		{"userns restricted by apparmor", func(m *machine) {
			m.files["/proc/sys/kernel/apparmor_restrict_unprivileged_userns"] = "1\n"
		}, CheckUserns, StatusWarn, "builds run only as root here", "apparmor_restrict_unprivileged_userns=0", true},
		{"no subuid line", func(m *machine) { m.files["/etc/subuid"] = "dev:100000:65536\n"; delete(m.files, "/etc/subgid") }, CheckSubids, StatusMissing,
			"root has no usable subordinate id range in /etc/subuid, /etc/subgid",
			"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 root (or add the line root:100000:65536 to /etc/subuid and /etc/subgid", false},
		{"subuid range too small", func(m *machine) { m.files["/etc/subuid"] = "0:200000:1000\n" }, CheckSubids, StatusMissing,
			"/etc/subuid (only 1000 ids, fewer than 65536)", "usermod --add-subuids", false},
		{"subuid by uid", func(m *machine) { m.files["/etc/subuid"] = "0:200000:65536\n" }, CheckSubids, StatusOK,
			"/etc/subuid 200000-265535 (65536 ids)", "", true},
		{"no newuidmap", func(m *machine) { delete(m.path, "newuidmap") }, CheckUidmap, StatusWarn,
			"newuidmap not found", "apt-get install -y uidmap", true},
		{"no libfaketime", func(m *machine) { m.faketime = "" }, CheckLibfaketime, StatusWarn,
			"only staggers", "apt-get install -y faketime libfaketime", true},
		{"no seccomp in the kernel", func(m *machine) { m.files["/proc/self/status"] = "Name:\tbuildguard\n" }, CheckSeccomp, StatusMissing,
			"the kernel has no seccomp", "CONFIG_SECCOMP_FILTER", false},
		{"seccomp without errno", func(m *machine) { m.files["/proc/sys/kernel/seccomp/actions_avail"] = "kill_process allow\n" }, CheckSeccomp, StatusMissing,
			"lack the errno action", "CONFIG_SECCOMP_FILTER", false},
		{"an architecture without a filter", func(m *machine) { m.arches = nil }, CheckSeccomp, StatusMissing,
			"no seccomp filter for s390x", "amd64 or arm64", false},
		{"little disk", func(m *machine) { m.free = 2 << 30 }, CheckCache, StatusWarn,
			"2.0 GiB free, less than 10.0 GiB", "free space there", true},
		{"no git", func(m *machine) { delete(m.path, "git") }, CheckGit, StatusWarn,
			"SOURCE_DATE_EPOCH then comes from the host's $SOURCE_DATE_EPOCH or is 0", "apt-get install -y git", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ready()
			tt.change(m)
			r := m.run(t)
			c := find(t, r, tt.check)
			if c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) || !strings.Contains(c.Fix, tt.fix) || (tt.fix == "" && c.Fix != "") {
				t.Errorf("%s: got %s %q fix %q\nwant %s %q fix %q", tt.check, c.Status, c.Detail, c.Fix, tt.status, tt.detail, tt.fix)
			}
			if r.Ready != tt.ready {
				t.Errorf("ready = %v, want %v (missing %v)", r.Ready, tt.ready, r.Missing())
			}
			for _, o := range r.Checks {
				if o.Name != tt.check && o.Status != StatusOK {
					t.Errorf("%s: %s %q; only %s should have changed", o.Name, o.Status, o.Detail, tt.check)
				}
			}
		})
	}
}

func TestNonRootWithoutAnything(t *testing.T) {
	m := ready()
	m.euid, m.user = 1000, "dev"
	m.path = map[string]string{}
	m.faketime = ""
	r := m.run(t)
	if r.Ready {
		t.Fatal("a machine without a runtime is ready")
	}
	// Rootless builds need no root and, in single-id mode, no
	// subordinate ids: only the runtime is missing.
	if got := strings.Join(r.Missing(), ","); got != "runtime" {
		t.Errorf("missing %s, want runtime", got)
	}
	if c := find(t, r, CheckSubids); c.Status != StatusWarn || !strings.Contains(c.Fix, "dev:100000:65536") {
		t.Errorf("subids for dev: %+v", c)
	}
	if c := find(t, r, CheckRoot); c.Status != StatusOK || !strings.Contains(c.Detail, "(single: the user has no range of subordinate ids: the user alone is mapped, as 0") {
		t.Errorf("root for dev without subordinate ids: %+v", c)
	}
}

// TestRootlessMode: the root check names the mode an unprivileged user's
// build would use, and why.
func TestRootlessMode(t *testing.T) {
	tests := []struct {
		name   string
		change func(*machine)
		detail string
	}{
		{"root", func(*machine) {}, "running as root (uid 0): builds run in a user namespace mapped to root's subordinate id range"},
		{"ranged", func(*machine) {}, "(ranged: the user's subordinate ids through newuidmap and newgidmap"},
		{"no newuidmap", func(m *machine) { delete(m.path, "newuidmap") }, "(single: newuidmap is not installed: the user alone is mapped"},
		{"no newgidmap", func(m *machine) { delete(m.path, "newgidmap") }, "(single: newgidmap is not installed"},
		{"hybrid cgroups", func(m *machine) { m.cgroup = "hybrid" }, "crun refuses hybrid cgroups rootless, so runtime auto uses runc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ready()
			if tt.name != "root" {
				m.euid, m.user = 1000, "dev"
				m.files["/etc/subuid"], m.files["/etc/subgid"] = "dev:100000:65536\n", "dev:100000:65536\n"
			}
			tt.change(m)
			c := find(t, m.run(t), CheckRoot)
			if c.Status != StatusOK || c.Fix != "" || !strings.Contains(c.Detail, tt.detail) {
				t.Errorf("root: %s %q fix %q, want ok with %q", c.Status, c.Detail, c.Fix, tt.detail)
			}
		})
	}
}

func TestCacheNotWritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m := ready()
	r := Run(context.Background(), Options{CacheDir: filepath.Join(dir, "rootfs"), Environ: []string{}, Host: m.host()})
	c := find(t, r, CheckCache)
	if c.Status != StatusMissing || !strings.Contains(c.Detail, "is not writable") || r.Ready {
		t.Errorf("cache under a file: %+v, ready %v", c, r.Ready)
	}
}

// The run directories, where each run's copy of the source goes, are
// checked where the build will make them: in $TMPDIR.
func TestCacheChecksTheRunDirectories(t *testing.T) {
	m := ready()
	tmp := t.TempDir()
	r := Run(context.Background(), Options{CacheDir: t.TempDir(), Environ: []string{"TMPDIR=" + tmp}, Host: m.host()})
	if c := find(t, r, CheckCache); c.Status != StatusOK || !strings.Contains(c.Detail, "run directories "+tmp+" (TMPDIR) are writable") {
		t.Errorf("cache with TMPDIR=%s: %+v", tmp, c)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = Run(context.Background(), Options{CacheDir: t.TempDir(), Environ: []string{"TMPDIR=" + filepath.Join(file, "tmp")}, Host: m.host()})
	c := find(t, r, CheckCache)
	if c.Status != StatusMissing || !strings.Contains(c.Detail, "is not writable") || !strings.Contains(c.Fix, "set TMPDIR to a directory that is") || r.Ready {
		t.Errorf("cache with TMPDIR under a file: %+v, ready %v", c, r.Ready)
	}
}

func TestCacheDefaultDirAndDepsBeside(t *testing.T) {
	base := t.TempDir()
	m := ready()
	h := m.host()
	h.CacheDir = func() (string, error) { return filepath.Join(base, "buildguard", "rootfs"), nil }
	r := Run(context.Background(), Options{Environ: []string{}, Host: h})
	c := find(t, r, CheckCache)
	if c.Status != StatusOK || !strings.Contains(c.Detail, filepath.Join(base, "buildguard", "deps")) {
		t.Errorf("cache: %+v", c)
	}
	for _, d := range []string{"rootfs", "deps"} {
		ents, err := os.ReadDir(filepath.Join(base, "buildguard", d))
		if err != nil || len(ents) != 0 {
			t.Errorf("%s: created %v, left %d entries (%v)", d, err == nil, len(ents), err)
		}
	}
}

func TestRegistriesAsABuildResolvesThem(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".npmrc"), []byte("registry=https://npm.example.com/r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := ready()
	r := Run(context.Background(), Options{CacheDir: t.TempDir(), Host: m.host(),
		Environ: []string{"HOME=" + home, "GOPROXY=https://user:secret@goproxy.example.com,direct"}})
	c := find(t, r, CheckRegistries)
	want := "Go modules from https://user:xxxxx@goproxy.example.com; npm packages from https://npm.example.com/r/"
	if c.Status != StatusOK || !strings.Contains(c.Detail, want) || strings.Contains(c.Detail, "secret") {
		t.Errorf("registries: %+v\nwant %q", c, want)
	}

	r = Run(context.Background(), Options{CacheDir: t.TempDir(), Host: m.host(), Environ: []string{"GOPROXY=direct"}})
	if c := find(t, r, CheckRegistries); c.Status != StatusWarn || !strings.Contains(c.Fix, "GOPROXY") || !r.Ready {
		t.Errorf("GOPROXY=direct: %+v ready %v", c, r.Ready)
	}
}

// TestThisMachine runs the real checks: whatever the machine, every check
// reports, in order, with a fix wherever it is not ok.
func TestThisMachine(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	r := Run(context.Background(), Options{})
	if len(r.Checks) != 12 {
		t.Fatalf("%d checks", len(r.Checks))
	}
	for _, c := range r.Checks {
		t.Logf("%-8s %s: %s", c.Status, c.Name, c.Detail)
		if c.Status != StatusOK && c.Fix == "" {
			t.Errorf("%s is %s without a fix: %s", c.Name, c.Status, c.Detail)
		}
	}
	if r.Ready != (len(r.Missing()) == 0) {
		t.Errorf("ready %v with missing %v", r.Ready, r.Missing())
	}
}
