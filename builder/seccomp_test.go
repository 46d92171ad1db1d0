package builder

import (
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The config carries the filter: allow by default, EPERM for the deny
// list, ENOSYS for clone3, EPERM for clone with a namespace flag, on the
// native architecture and its compat ones.
func TestSpecSeccomp(t *testing.T) {
	s := plainStep(t)
	sp, err := s.Spec("/run/x/rootfs", "/run/x/src", false)
	if err != nil {
		t.Fatal(err)
	}
	sc := sp.Linux.Seccomp
	if sc == nil {
		t.Fatal("no seccomp filter in the config")
	}
	if sc.DefaultAction != specs.ActAllow {
		t.Errorf("default action %s, want %s", sc.DefaultAction, specs.ActAllow)
	}
	want := map[string][]specs.Arch{
		"amd64": {specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		"arm64": {specs.ArchAARCH64, specs.ArchARM},
	}[runtime.GOARCH]
	if !slices.Equal(sc.Architectures, want) {
		t.Errorf("architectures %v, want %v", sc.Architectures, want)
	}
	errno := map[string]uint{}      // a call refused whatever its arguments
	cloneFlags := map[uint64]bool{} // clone refused with this flag
	for _, r := range sc.Syscalls {
		if r.Action != specs.ActErrno || r.ErrnoRet == nil {
			t.Errorf("rule %+v: want SCMP_ACT_ERRNO with an errnoRet", r)
			continue
		}
		if len(r.Args) == 0 {
			for _, n := range r.Names {
				errno[n] = *r.ErrnoRet
			}
			continue
		}
		a := r.Args[0]
		if !slices.Equal(r.Names, []string{"clone"}) || len(r.Args) != 1 || a.Index != 0 || a.Op != specs.OpMaskedEqual || a.Value != a.ValueTwo || *r.ErrnoRet != uint(unix.EPERM) {
			t.Errorf("argument rule %+v: want clone, EPERM when flags&f == f", r)
		}
		cloneFlags[a.Value] = true
	}
	for _, n := range []string{"unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "keyctl", "add_key",
		"request_key", "bpf", "perf_event_open", "ptrace", "process_vm_readv", "process_vm_writev", "kexec_load",
		"kexec_file_load", "init_module", "finit_module", "delete_module", "open_by_handle_at", "name_to_handle_at",
		"userfaultfd", "iopl", "ioperm", "swapon", "swapoff", "reboot", "settimeofday", "clock_settime",
		"clock_adjtime", "adjtimex", "acct", "quotactl", "lookup_dcookie", "vhangup", "syslog", "fsopen", "io_uring_setup"} {
		if got, ok := errno[n]; !ok || got != uint(unix.EPERM) {
			t.Errorf("%s: errno %d (listed %v), want EPERM", n, got, ok)
		}
	}
	if errno["clone3"] != uint(unix.ENOSYS) {
		t.Errorf("clone3: errno %d, want ENOSYS (so that glibc falls back to clone)", errno["clone3"])
	}
	for _, n := range []string{"clone", "personality", "read", "execve"} {
		if _, ok := errno[n]; ok {
			t.Errorf("%s is refused outright; builds need it", n)
		}
	}
	var mask uint64
	for f := range cloneFlags {
		mask |= f
	}
	if mask != 0x7e020000 || len(cloneFlags) != 7 {
		t.Errorf("clone refused for flags %#x (%d rules), want each of Docker's 0x7e020000", mask, len(cloneFlags))
	}
}

func TestSeccompArchesUnknown(t *testing.T) {
	if _, err := seccompArches("mips"); err == nil || !strings.Contains(err.Error(), "mips") {
		t.Errorf("err = %v, want one naming mips", err)
	}
}

// A build runs under the filter with both runtimes: /proc/self/status says
// so, true and an ordinary shell pipeline work, and a new user namespace
// (allowed to an unprivileged process by this kernel without the filter)
// and a mount fail with EPERM: "Operation not permitted" in the log, in
// the words of busybox's mount "permission denied (are you root?)".
func TestRunSeccomp(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`grep '^Seccomp:' /proc/self/status > /out/status; true`)...)
		res := mustRun(t, s)
		if got := readFile(t, s.Out, "status"); got != "Seccomp:\t2\n" {
			t.Errorf("/proc/self/status: %q, want filter mode (2)", got)
		}
		if res.Sandbox == nil || res.Sandbox.Seccomp != SeccompProfile {
			t.Errorf("Result.Sandbox = %+v, want seccomp %q", res.Sandbox, SeccompProfile)
		}
		for _, c := range []struct {
			argv []string
			want string
		}{
			{[]string{"busybox", "unshare", "-U", "true"}, "Operation not permitted"},
			{[]string{"busybox", "unshare", "-r", "true"}, "Operation not permitted"},
			{sh(`mkdir -p /tmp/x && busybox mount -t tmpfs none /tmp/x`), "permission denied"},
		} {
			res, _ := mustFail(t, busyboxStep(t, rt, c.argv...), ErrBuildFailed)
			if log := logText(t, res); !strings.Contains(log, c.want) {
				t.Errorf("%q: log %q, want %q", c.argv, log, c.want)
			}
		}
	})
}
