//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/evidence"
	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

// TestRootless runs `buildguard build` as unprivileged users (made by the
// test) with the real runtimes and registry: one with a subordinate id
// range and newuidmap (ranged), one without (single id); and as root. For
// each: the
// clean build passes; inside, `id -u` is 0 while on the host the build's
// processes hold the user's subordinate id (ranged) or the user's own uid
// (single), never 0; a host loopback listener sees nothing; the build
// rewrites a file of a source that belongs to another uid and the host's
// copy is unchanged; /out's files belong to the user; report.json's
// sandbox record says what was used.
func TestRootless(t *testing.T) {
	harness.RequireRoot(t, "the test creates unprivileged users and runs buildguard as them")
	harness.Require(t, "docker-registry")
	harness.Require(t, "newuidmap")
	reg, err := harness.StartRegistry(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	bin, err := harness.Lookup("busybox")
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Addr + "/rootless/busybox:1"
	dig, err := testimage.PushBusybox(t.Context(), ref, bin, []string{"sh", "cat", "echo", "mkdir", "sleep", "touch", "nc", "id", "cp"})
	if err != nil {
		t.Fatal(err)
	}
	image := ref + "@" + dig

	for _, mode := range []string{"ranged", "single"} {
		t.Run(mode, func(t *testing.T) {
			u := rootlessUser(t, "bgrootless-"+mode, mode == "ranged")
			rootlessBuild(t, u, mode, image, "")
		})
	}
	// gVisor, rootless with a range: the same promises; the build's
	// processes live in gVisor's kernel, so on the host only runsc's
	// sandbox and gofer are seen, neither holding host root.
	t.Run("ranged-runsc", func(t *testing.T) {
		harness.Require(t, "runsc")
		u := rootlessUser(t, "bgrootless-ranged", true)
		rootlessBuild(t, u, "ranged", image, "runsc")
	})
	// Without a range gVisor cannot start (its sandbox runs as nobody, whom
	// a single-id namespace does not map): exit 3, saying what to do.
	t.Run("single-runsc", func(t *testing.T) {
		harness.Require(t, "runsc")
		u := rootlessUser(t, "bgrootless-single", false)
		rootlessRunscSingle(t, u, image)
	})
	// The same checks as root: the build's processes hold root's first
	// subordinate uid, never 0.
	t.Run("root", func(t *testing.T) {
		u := testUser{name: "root", subuid: firstSubUID(t, "root", 0)}
		if u.subuid == 0 {
			t.Fatal("root has no subordinate uid range (.ci/run and make demo run scripts/subids.sh root)")
		}
		rootlessBuild(t, u, "root", image, "")
	})
}

type testUser struct {
	name     string
	uid, gid int
	subuid   int // the first subordinate uid, 0 when none
}

// rootlessUser creates the user when missing, and gives it a subordinate
// id range (scripts/subids.sh) or takes its ranges away.
func rootlessUser(t *testing.T, name string, ranged bool) testUser {
	t.Helper()
	if _, err := user.Lookup(name); err != nil {
		run(t, "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name)
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		var keep []string
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "" && !strings.HasPrefix(l, name+":") {
				keep = append(keep, l)
			}
		}
		if !ranged && len(keep) > 0 {
			keep = append(keep, "")
		}
		if !ranged {
			if err := os.WriteFile(f, []byte(strings.Join(keep, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ranged {
		run(t, "../scripts/subids.sh", name)
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	tu := testUser{name: name}
	tu.uid, _ = strconv.Atoi(u.Uid)
	tu.gid, _ = strconv.Atoi(u.Gid)
	if ranged {
		if tu.subuid = firstSubUID(t, name, tu.uid); tu.subuid == 0 {
			t.Fatalf("%s has no subordinate uids after scripts/subids.sh", name)
		}
	}
	return tu
}

// passableTempDir makes a temporary directory (mode 0755) that the test's
// unprivileged users can pass through and read, outside the test's own
// 0700 temporary directories; it is removed when the test ends.
func passableTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// firstSubUID is where the user's subordinate uids start in /etc/subuid
// (its first range of 65536 or more), 0 when it has none.
func firstSubUID(t *testing.T, name string, uid int) int {
	t.Helper()
	b, err := os.ReadFile(builder.SubUIDFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	r, ok := builder.ParseSubIDs(b, name, strconv.Itoa(uid))
	if !ok || r.Count < builder.MinSubIDs {
		return 0
	}
	return int(r.Start)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// rootlessCommand writes cfg as home/buildguard.yaml and returns
// `buildguard build` of it as u (as itself when u is root), with --runtime
// when runtime is set, and its work directory (u's HOME, TMPDIR, evidence
// and cache).
func rootlessCommand(t *testing.T, u testUser, home, cfg, runtime string) (*exec.Cmd, string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(home, "buildguard.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	bg := filepath.Join(home, "buildguard")
	copyExecutable(t, bgBin, bg)
	work := filepath.Join(home, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(work, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	args := []string{"build", "--file", filepath.Join(home, "buildguard.yaml"), "--out", filepath.Join(work, "ev"), "--cache", filepath.Join(work, "cache")}
	if runtime != "" {
		args = append(args, "--runtime", runtime)
	}
	cmd := exec.Command(bg, args...)
	cmd.Dir = home
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + work, "TMPDIR=" + work}
	if u.name != "root" {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	}
	return cmd, work
}

func rootlessBuild(t *testing.T, u testUser, mode, image, runtime string) {
	home := passableTempDir(t, "bg-rootless-")
	// The source belongs to root (another uid than the user's), read-only
	// to everyone else.
	src := filepath.Join(home, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A host listener on loopback that the build tries to reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var reached atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			_ = c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	marker := fmt.Sprintf("bg-rootless-probe-%s-%d", mode, time.Now().UnixNano())
	script := fmt.Sprintf(`id -u > /out/uid
echo changed >> hello.txt && cp hello.txt /out/hello.txt
if echo probe | nc -w 2 127.0.0.1 %d; then echo reached > /out/reach; else echo unreachable > /out/reach; fi
: %s
sleep 2
echo done > /out/done`, port, marker)
	cfg := fmt.Sprintf(`apiVersion: buildguard/v1
source: src
sourceDateEpoch: "1700000000"
builder:
  image: %s
  command: ["sh", "-c", %q]
reproduce:
  variations: [path, umask, hostname]
policy:
  waive: [verified]
`, image, script)
	cmd, work := rootlessCommand(t, u, home, cfg, runtime)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// While the builds run, read the host ids of every process whose
	// command line holds the marker (the build's shell, which a command
	// after the sleep keeps from exec'ing it).
	var mu sync.Mutex
	hostUIDs := map[string]bool{}
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			uids := harness.ProcessUIDs(marker)
			if runtime == "runsc" {
				if len(uids) > 0 {
					t.Errorf("under gVisor a host process runs the build's shell (Uid %q)", uids)
				}
				uids = append(harness.ProcessUIDs("runsc-sandbox"), harness.ProcessUIDs("runsc-gofer")...)
			}
			for _, uid := range uids {
				mu.Lock()
				hostUIDs[uid] = true
				mu.Unlock()
			}
		}
	}()
	err = cmd.Wait()
	close(stop)
	<-watched
	if err != nil {
		t.Fatalf("buildguard build as %s (%s): %v\n%s", u.name, mode, err, out.String())
	}
	t.Logf("%s", out.String())
	want := strconv.Itoa(u.uid)
	if mode != "single" {
		want = strconv.Itoa(u.subuid)
	}
	if len(hostUIDs) == 0 {
		t.Errorf("never saw the build's processes on the host")
	}
	for uid := range hostUIDs {
		if runtime == "runsc" {
			// gVisor's gofer runs as the mapped 0, its sandbox as an
			// unprivileged id of its own (nobody): never host root.
			if uid == "0" {
				t.Errorf("a runsc process held host uid 0: %v", hostUIDs)
			}
			continue
		}
		if uid != want {
			t.Errorf("a build process held host uid %s, want only %s (%s mode): %v", uid, want, mode, hostUIDs)
		}
	}
	ev := filepath.Join(work, "ev")
	var rep evidence.Report
	b, err := os.ReadFile(filepath.Join(ev, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Decision != evidence.Pass {
		t.Errorf("decision %s, want pass: %v %v", rep.Decision, rep.Violations, rep.Errors)
	}
	for _, r := range rep.Runs {
		s := r.Sandbox
		wantMapping := mode
		if mode == "root" {
			wantMapping = "ranged"
		}
		if s == nil || s.Rootless != (mode != "root") || !s.UserNamespace || s.IDMapping != wantMapping || s.Network != "none" || s.Seccomp == "" || !s.ReadOnlyRoot {
			t.Errorf("run %d: sandbox %+v, want rootless %v, a %s user namespace, no network, seccomp, a read-only root", r.Index, s, mode != "root", wantMapping)
		}
	}
	// On a hybrid-cgroup host (v1, with cgroup2 at /sys/fs/cgroup/unified,
	// as here) crun needs that mount gone, which a rootless build cannot
	// do: auto says so and runs runc.
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.procs"); err == nil && runtime == "" && mode != "root" {
		if !strings.Contains(strings.Join(rep.Notes, "\n"), "a rootless build cannot remove that mount") {
			t.Errorf("a rootless build on a hybrid-cgroup host: notes %q do not say why crun was not used", rep.Notes)
		}
		for _, r := range rep.Runs {
			if r.Sandbox != nil && r.Sandbox.Runtime != "runc" {
				t.Errorf("run %d ran in %s, want runc", r.Index, r.Sandbox.Runtime)
			}
		}
	}
	outDir := filepath.Join(ev, "runs", "run-1", "out")
	for file, content := range map[string]string{"uid": "0\n", "hello.txt": "hello\nchanged\n", "reach": "unreachable\n"} {
		p := filepath.Join(outDir, file)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != content {
			t.Errorf("/out/%s = %q (%v), want %q", file, got, err, content)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err == nil && (int(st.Uid) != u.uid || int(st.Gid) != u.gid) {
			t.Errorf("/out/%s belongs to %d:%d on the host, want %s's %d:%d", file, st.Uid, st.Gid, u.name, u.uid, u.gid)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the host's loopback listener saw %d connection(s) from the build", n)
	}
	if got, err := os.ReadFile(filepath.Join(src, "hello.txt")); err != nil || string(got) != "hello\n" {
		t.Errorf("the host's source file is now %q (%v): the build wrote through to it", got, err)
	}
}

// TestDemoUnprivileged runs the demo (make demo's program) as an
// unprivileged user with a subordinate id range: the clean builders pass,
// the compromised builder fails, and the demo removes its rootfs cache
// (files of the user's subordinate ids) with buildguard clean.
func TestDemoUnprivileged(t *testing.T) {
	harness.RequireRoot(t, "the test creates an unprivileged user and runs the demo as it")
	for _, tool := range []string{"docker-registry", "newuidmap", "busybox", "cosign", "posix"} {
		harness.Require(t, tool)
	}
	u := rootlessUser(t, "bgrootless-ranged", true)
	home := passableTempDir(t, "bg-demo-user-")
	bin := filepath.Join(home, "bin")
	copyExecutable(t, bgBin, filepath.Join(bin, "buildguard"))
	for _, tool := range []string{"cosign", "posix"} {
		p, err := harness.Lookup(tool)
		if err != nil {
			t.Fatal(err)
		}
		copyExecutable(t, p, filepath.Join(bin, tool))
	}
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "demo"), "github.com/buildguard/buildguard/internal/cmd/demo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the demo: %v\n%s", err, out)
	}
	run(t, "cp", "-r", "../examples", filepath.Join(home, "examples"))
	userHome := filepath.Join(home, "home")
	if err := os.Mkdir(userHome, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "chown", "-R", fmt.Sprintf("%d:%d", u.uid, u.gid), userHome)
	goPath, err := exec.LookPath("go") // the demo makes its builders from the host's Go
	if err != nil {
		t.Fatal(err)
	}
	goBin := filepath.Dir(goPath)
	cmd := exec.Command(filepath.Join(bin, "demo"), "--buildguard", filepath.Join(bin, "buildguard"), "--example", filepath.Join(home, "examples/hello"))
	cmd.Dir = userHome
	cmd.Env = []string{"PATH=" + bin + ":" + goBin + ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + userHome}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	out, err := cmd.CombinedOutput()
	if _, ev, ok := strings.Cut(string(out), "remove the evidence with: rm -rf "); ok {
		ev, _, _ = strings.Cut(ev, "\n")
		t.Cleanup(func() { _ = os.RemoveAll(ev) })
	}
	if err != nil {
		t.Fatalf("the demo as %s: %v\n%s", u.name, err, out)
	}
	for _, want := range []string{"1. clean builder + independent builder:       PASS (exit 0)", "2. compromised builder + independent builder: FAIL (exit 1), diverse-agree"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the demo's summary lacks %q:\n%s", want, out)
		}
	}
}

// rootlessRunscSingle runs a build under runsc as a user without a
// subordinate id range: refused before any container starts, exit 3, with
// the range to add.
func rootlessRunscSingle(t *testing.T, u testUser, image string) {
	home := passableTempDir(t, "bg-rootless-")
	if err := os.Mkdir(filepath.Join(home, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`apiVersion: buildguard/v1
source: src
sourceDateEpoch: "1700000000"
builder:
  image: %s
  command: ["sh", "-c", "echo x > /out/x"]
policy:
  waive: [verified]
`, image)
	cmd, _ := rootlessCommand(t, u, home, cfg, "runsc")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("buildguard build --runtime runsc as %s: %v, want exit 3\n%s", u.name, err, out)
	}
	for _, want := range []string{"runsc needs a subordinate id range", "usermod --add-subuids", "buildguard doctor"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
