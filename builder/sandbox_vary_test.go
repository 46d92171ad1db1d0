package builder

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// The sandbox properties a reproducibility rebuild varies reach the build:
// host and domain name, umask, user, environment order; and a build run as
// another user can still write its output and $HOME.
func TestRunSandboxVariations(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		umask := uint32(0o002)
		s := busyboxStep(t, rt, sh(`hostname; cat /proc/sys/kernel/domainname; umask; id -u; id -g; tr '\0' '\n' < /proc/1/environ; echo x > $HOME/h && echo home-ok; echo y > /out/f && echo out-ok`)...)
		s.Env = map[string]string{"A_FIRST": "1", "Z_LAST": "2"}
		s.Sandbox = Sandbox{Hostname: "varied-host", Domainname: "varied.example", Umask: &umask, UID: 1000, GID: 1000, ReverseEnv: true}
		res := mustRun(t, s)
		out := lines(logText(t, res))
		domain := "varied.example"
		if rt == RuntimeRunsc {
			// gVisor's kernel has no /proc/sys/kernel/domainname to read
			// it back: the run says it was not varied.
			domain = "cat: can't open '/proc/sys/kernel/domainname': No such file or directory"
			if !slices.ContainsFunc(res.Unreached, func(u string) bool { return strings.Contains(u, "domain name was not set") }) {
				t.Errorf("runsc: Unreached = %q does not say the domain name was not set", res.Unreached)
			}
		}
		if rt == RuntimeRunc && strings.Contains(res.Runtime, " 1.1.") {
			// runc 1.1 sets it only through a sysctl a user namespace
			// cannot write: the run must say it was not varied.
			domain = "(none)"
			if !slices.ContainsFunc(res.Unreached, func(u string) bool { return strings.Contains(u, "domain name was not set") }) {
				t.Errorf("runc 1.1 left the domain name unset, and Unreached = %q does not say so", res.Unreached)
			}
		}
		mask := "0002"
		if rt == RuntimeRunsc {
			mask = "0022" // runsc ignores the spec's umask, and says so
			if !slices.ContainsFunc(res.Unreached, func(u string) bool { return strings.Contains(u, "umask was not varied") }) {
				t.Errorf("runsc: Unreached = %q does not say the umask was not varied", res.Unreached)
			}
		}
		for i, want := range []string{"varied-host", domain, mask, "1000", "1000"} {
			if i >= len(out) || out[i] != want {
				t.Fatalf("line %d = %q, want %q (output %q)", i, at(out, i), want, out)
			}
		}
		var envs []string
		for _, l := range out[5:] {
			if strings.Contains(l, "=") {
				envs = append(envs, l)
			}
		}
		if rt == RuntimeRunsc {
			if !slices.ContainsFunc(res.Unreached, func(u string) bool { return strings.Contains(u, "order was not reversed") }) {
				t.Errorf("runsc: Unreached = %q does not say the environment's order was not reversed", res.Unreached)
			}
		} else if !slices.IsSortedFunc(envs, func(a, b string) int { return strings.Compare(b, a) }) {
			t.Errorf("environment not in reverse order: %q", envs)
		}
		if !slices.Contains(out, "home-ok") || !slices.Contains(out, "out-ok") {
			t.Errorf("the build user could not write $HOME or /out: %q", out)
		}
		st, err := os.Stat(filepath.Join(s.Out, "f"))
		if mode := map[string]os.FileMode{"0002": 0o664, "0022": 0o644}[mask]; err != nil || st.Mode().Perm() != mode {
			t.Errorf("output file mode under umask 002: %v %v", st, err)
		}
		// Written by uid 1000 inside; the invoking user's on the host.
		if err == nil {
			if sys := st.Sys().(*syscall.Stat_t); int(sys.Uid) != os.Geteuid() || int(sys.Gid) != os.Getegid() {
				t.Errorf("/out/f belongs to %d:%d on the host, want the invoking user %d:%d", sys.Uid, sys.Gid, os.Geteuid(), os.Getegid())
			}
		}
	})
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}
