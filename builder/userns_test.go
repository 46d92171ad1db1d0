package builder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buildguard/buildguard/internal/harness"
)

// The build runs in a user namespace: uid 0 inside is the mapping's first
// host id, never host root; the image's owners and modes are what the
// build sees (a 0700 /root it owns, a directory of uid 1000); and on the
// host its processes hold only mapped ids.
func TestRunUserNamespace(t *testing.T) {
	requireRoot(t)
	ids, err := HostIDMap()
	if err != nil {
		t.Fatal(err)
	}
	img := image(t, busyboxLayer(t), layer(t,
		dir("root", 0o700), file("root/secret", "only root reads this\n", 0o600),
		owned(dir("home", 0o755), 0, 0), owned(dir("home/app", 0o755), 1000, 1000),
		owned(file("home/app/owned", "app's\n", 0o640), 1000, 1001)))
	img = withPath(t, img, "/bin")
	root, _ := unpacked(t, img)
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(root, "home/app/owned"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != ids.UID+1000 || st.Gid != ids.GID+1001 {
		t.Errorf("cached home/app/owned belongs to %d:%d on the host, want %d:%d (shifted by %s)", st.Uid, st.Gid, ids.UID+1000, ids.GID+1001, ids)
	}
	forEachRuntime(t, func(t *testing.T, rt string) {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		probe := "buildguard-userns-probe-" + hex.EncodeToString(b)
		s := busyboxStep(t, rt, "sh", "-c", `id -u; id -g
stat -c '%u:%g %a' /root /root/secret /home/app /home/app/owned
cat /root/secret
cat /proc/self/uid_map /proc/self/gid_map
touch /out/started
i=0; while [ ! -e /out/stop ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
echo made > /out/made`, probe)
		s.Rootfs = root
		type ran struct {
			res *Result
			err error
		}
		done := make(chan ran, 1)
		go func() { r, err := Run(context.Background(), s); done <- ran{r, err} }()
		var uids []string
		if rt == RuntimeRunsc {
			// The build's processes live in gVisor's kernel: on the host
			// there are only gVisor's sandbox and file proxy.
			waitStarted(t, s.Out)
			if p := harness.ProcessUIDs(probe); len(p) > 0 {
				t.Errorf("under gVisor a host process runs the build's shell (Uid %q)", p)
			}
			uids = append(harness.ProcessUIDs("runsc-sandbox"), harness.ProcessUIDs("runsc-gofer")...)
			if len(uids) == 0 {
				t.Fatal("no runsc-sandbox or runsc-gofer process on the host")
			}
		} else {
			uids = hostUIDs(t, s.Out, probe)
		}
		if err := os.WriteFile(filepath.Join(s.Out, "stop"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil {
			t.Fatalf("Run: %v\nlog:\n%s", r.err, logText(t, r.res))
		}
		for _, u := range uids {
			if u == "0" || rt != RuntimeRunsc && u != fmt.Sprint(ids.UID) {
				t.Errorf("a build process holds host uid %s, want %d (the mapped 0): Uid line %q", u, ids.UID, uids)
				break
			}
		}
		want := []string{"0", "0",
			"0:0 700", "0:0 600", "1000:1000 755", "1000:1001 640",
			"only root reads this",
			fmt.Sprintf("0 %d %d", ids.UID, ids.Size), fmt.Sprintf("0 %d %d", ids.GID, ids.Size)}
		got := lines(logText(t, r.res))
		if rt == RuntimeRunsc {
			// gVisor's kernel shows its own identity map; the host's
			// mapping was checked on its processes above.
			want = want[:7]
		}
		for i, w := range want {
			if i >= len(got) || strings.Join(strings.Fields(got[i]), " ") != w {
				t.Fatalf("line %d = %q, want %q (output %q)", i, at(got, i), w, got)
			}
		}
		for _, name := range []string{"started", "made", "stop"} {
			if err := syscall.Lstat(filepath.Join(s.Out, name), &st); err != nil {
				t.Fatal(err)
			}
			if int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() {
				t.Errorf("/out/%s belongs to %d:%d on the host, want the invoking user's %d:%d", name, st.Uid, st.Gid, os.Geteuid(), os.Getegid())
			}
		}
	})
}

// waitStarted waits for the build to write /out/started.
func waitStarted(t *testing.T, out string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(out, "started")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the build never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hostUIDs waits for the build to write /out/started, then returns the
// four ids of the Uid: line of /proc/PID/status of each host process whose
// command line holds probe (the build's shell).
func hostUIDs(t *testing.T, out, probe string) []string {
	t.Helper()
	waitStarted(t, out)
	uids := harness.ProcessUIDs(probe)
	if len(uids) == 0 {
		t.Fatalf("no host process runs the build's shell (%s)", probe)
	}
	return uids
}

// The build's user (an unprivileged host id) cannot pass through a 0700
// $TMPDIR, which is where the run directory lives: the runtime sees it
// through a view in /tmp, and the build runs.
func TestRunWithPrivateTmpdir(t *testing.T) {
	requireRoot(t)
	tmp := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, "sh", "-c", "cat hello.txt > /out/copy")
		res := mustRun(t, s)
		if res.Output == nil || len(res.Output.Entries) == 0 {
			t.Fatalf("no output: %+v", res)
		}
	})
}

// A source that cannot be copied (a named pipe in it) is the step's fault,
// not the runtime's: a StepError (exit 2) at once, and no other runtime
// tried.
func TestRunUncopyableSource(t *testing.T) {
	requireRoot(t)
	s := busyboxStep(t, RuntimeAuto, "true")
	if err := syscall.Mkfifo(filepath.Join(s.Source, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), s)
	var se *StepError
	if !errors.As(err, &se) || se.Field != "Source" || !strings.Contains(err.Error(), "pipe is a named pipe") {
		t.Fatalf("Run with a fifo in the source: %v, want a StepError on Source naming it", err)
	}
	if strings.Contains(err.Error(), RuntimeRunc) {
		t.Errorf("the error names another runtime tried: %v", err)
	}
}
