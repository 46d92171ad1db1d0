package doctor

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/buildguard/buildguard/internal/harness"
)

// A machine where user namespaces are switched off, made for real: the
// test runs itself again in a user namespace of its own, sets
// user.max_user_namespaces to 0 there (the limit is per namespace, so the
// host and other builds are untouched), and runs doctor's real probe.
func TestUsernsSwitchedOff(t *testing.T) {
	if os.Getenv("BUILDGUARD_DOCTOR_CHILD") == "1" {
		if err := os.WriteFile("/proc/sys/user/max_user_namespaces", []byte("0\n"), 0o644); err != nil {
			t.Fatalf("setting user.max_user_namespaces=0 in the test's namespace: %v", err)
		}
		r := Run(context.Background(), Options{CacheDir: t.TempDir(), Environ: []string{"HOME=" + t.TempDir()}})
		c := find(t, r, CheckUserns)
		b, _ := json.Marshal(c)
		t.Logf("CHECK %s", b)
		return
	}
	harness.RequireRoot(t, "creating a user namespace mapped to root (and seeing that doctor reports it) needs root")
	// First the probe itself, where namespaces are allowed.
	if err := probeUserns(); err != nil {
		t.Fatalf("this machine cannot create a user namespace at all: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestUsernsSwitchedOff$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "BUILDGUARD_DOCTOR_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child: %v\n%s", err, out)
	}
	_, line, ok := strings.Cut(string(out), "CHECK ")
	if !ok {
		t.Fatalf("the child printed no check:\n%s", out)
	}
	line, _, _ = strings.Cut(line, "\n")
	var c Check
	if err := json.Unmarshal([]byte(line), &c); err != nil {
		t.Fatal(err)
	}
	if c.Status != StatusMissing || !strings.Contains(c.Detail, "user.max_user_namespaces=0") ||
		!strings.Contains(c.Fix, "sysctl -w user.max_user_namespaces=15000") {
		t.Errorf("with user namespaces switched off doctor says %+v, want missing, naming the sysctl and its fix", c)
	}
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err != nil || strings.TrimSpace(string(b)) == "0" {
		t.Errorf("the host's user.max_user_namespaces is %q (%v): the test must not change it", b, err)
	}
}
