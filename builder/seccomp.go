package builder

import (
	"fmt"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// SeccompProfile names the seccomp filter Spec installs; Result.Sandbox.Seccomp
// records it for every build that ran. Change the version whenever the
// filter changes, so that two reports naming the same profile were made
// under the same filter.
const SeccompProfile = "buildguard-deny-list-v1"

// The filter is a deny list, as Docker's and Podman's default profiles are
// in effect for a container without capabilities: every system call is
// allowed (SCMP_ACT_ALLOW) but those below, which fail with EPERM
// (SCMP_ACT_ERRNO, errnoRet 1), so a program that probes for one sees the
// same error it would see without the privilege, and falls back. An allow
// list would be tighter, but every new glibc or toolchain release that uses
// a new system call would then break builds; the deny list names what a
// build never needs and an attacker uses to reach the kernel or escape.
//
// Most of these already fail without capabilities. The filter refuses them
// before the kernel parses a single argument, so a bug in a capability
// check or in the code behind it (the usual shape of a container escape)
// is out of reach, and they stay refused if a capability is ever granted.
//
//   - unshare, setns: new namespaces, above all a user namespace, in which
//     an unprivileged process is root and reaches mount, netfilter and
//     other code written for root (most kernel escapes of recent years
//     start there). The runtime makes the build's namespaces; the build
//     needs no more. clone with a namespace flag is refused the same way
//     (see seccompCloneNamespaces), and clone3, whose flags sit in memory
//     a filter cannot read, fails with ENOSYS so that glibc falls back to
//     clone, as Docker does.
//   - mount, umount, umount2, pivot_root, chroot and the new mount API
//     (fsopen, fsconfig, fsmount, fspick, move_mount, open_tree,
//     mount_setattr): the runtime lays out every mount. chroot needs
//     CAP_SYS_CHROOT, which the build lacks; it is listed anyway, since no
//     build needs it and a listed call stays refused whatever the
//     capabilities (fakechroot-style tools intercept it in libc and never
//     make the call).
//   - keyctl, add_key, request_key: the kernel keyring is not namespaced,
//     so the build would share it with the host.
//   - bpf, perf_event_open, userfaultfd, io_uring_setup, io_uring_enter,
//     io_uring_register: large kernel surfaces behind many privilege
//     escalations; userfaultfd is the usual tool to win a kernel race.
//     Programs that try io_uring (libuv) fall back to threads on an error.
//   - ptrace, process_vm_readv, process_vm_writev, pidfd_getfd: reading or
//     changing another process of the build. This also stops debuggers,
//     strace and LeakSanitizer (on by default with AddressSanitizer on
//     x86-64): a build that runs sanitized tests needs
//     ASAN_OPTIONS=detect_leaks=0.
//   - kexec_load, kexec_file_load, init_module, finit_module,
//     delete_module, reboot, swapon, swapoff, acct, quotactl,
//     lookup_dcookie, vhangup, iopl, ioperm: the host's kernel, devices and
//     disks, never a build's business.
//   - open_by_handle_at, name_to_handle_at: file handles open a file by
//     inode, past the mount namespace (the "shocker" escape).
//   - settimeofday, clock_settime, clock_adjtime, adjtimex: the clock is
//     the host's. adjtimex and clock_adjtime are refused even for reading
//     (ntp_gettime), which no build needs.
//   - syslog: the kernel log holds kernel addresses.
//
// personality is not filtered. Docker allows only the values 0, 0x8,
// 0x20000, 0x20008 and 0xffffffff (a query), but "none of these values"
// cannot be written as a deny rule (libseccomp takes one comparison per
// argument in a rule, and rules add up), and a rule per flag bit would
// refuse the query that setarch and linux32 make. The flags only change
// the caller's own processes: without capabilities MMAP_PAGE_ZERO cannot
// map below mmap_min_addr, and a set-id program clears the dangerous ones;
// ADDR_NO_RANDOMIZE (setarch -R) is even a reproducibility aid.
var seccompDenied = []string{
	"unshare", "setns",
	"mount", "umount", "umount2", "pivot_root", "chroot",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	"keyctl", "add_key", "request_key",
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
	"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "acct", "quotactl", "lookup_dcookie", "vhangup", "iopl", "ioperm",
	"open_by_handle_at", "name_to_handle_at",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"syslog",
}

// seccompCloneNamespaces are the clone flags that make a namespace; clone
// with any of them fails with EPERM. Docker's profile allows clone when
// (flags & 0x7e020000) == 0; a deny list says the same with one rule per
// flag (SCMP_CMP_MASKED_EQ: flags & f == f), since rules for one call add
// up. Only the first argument is compared: it holds the flags on every
// architecture Spec supports (not on s390).
var seccompCloneNamespaces = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWCGROUP, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC,
	unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET,
}

// seccompArches returns the architectures the filter covers for goarch:
// the native one and those its kernel also runs (x86 and x32 on x86-64, arm
// on arm64). A binary of an architecture the filter does not name is
// killed at its first system call, so listing the compat ones lets a
// 32-bit build run, under the same rules.
func seccompArches(goarch string) ([]specs.Arch, error) {
	switch goarch {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, nil
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}, nil
	}
	return nil, fmt.Errorf("no seccomp filter for %s: buildguard runs builds on amd64 and arm64 hosts", goarch)
}

// seccomp returns the filter described above for this host's architecture.
func seccomp() (*specs.LinuxSeccomp, error) {
	arches, err := seccompArches(runtime.GOARCH)
	if err != nil {
		return nil, err
	}
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	sc := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: arches,
		Syscalls: []specs.LinuxSyscall{
			{Names: append([]string(nil), seccompDenied...), Action: specs.ActErrno, ErrnoRet: &eperm},
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		},
	}
	for _, f := range seccompCloneNamespaces {
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{
			Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: &eperm,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: f, ValueTwo: f, Op: specs.OpMaskedEqual}},
		})
	}
	return sc, nil
}
