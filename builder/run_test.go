package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The build provably runs inside the image: a file only the image has is
// visible, and files only the host has (its Debian release file, the
// runtime binary itself) are not.
func TestRunInsideImage(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		rtPath := harnessPath(t, rt)
		for _, p := range []string{"/etc/debian_version", rtPath} {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("host file %s must exist for this test: %v", p, err)
			}
		}
		s := busyboxStep(t, rt, sh(`cat /etc/buildguard-marker > /out/marker
for p in /etc/debian_version %s; do test -e "$p" && echo "$p" >> /out/leaked; done
true`, rtPath)...)
		res := mustRun(t, s)
		if got := readFile(t, s.Out, "marker"); got != imageMarker+"\n" {
			t.Errorf("marker = %q, want %q", got, imageMarker)
		}
		if exists(s.Out, "leaked") {
			t.Errorf("host files visible in the build: %s", readFile(t, s.Out, "leaked"))
		}
		if !strings.Contains(res.Runtime, rt) {
			t.Errorf("Runtime = %q, want %s", res.Runtime, rt)
		}
		if res.ExitCode != 0 || res.TimedOut {
			t.Errorf("ExitCode %d, TimedOut %v", res.ExitCode, res.TimedOut)
		}
	})
}

func harnessPath(t *testing.T, rt string) string {
	t.Helper()
	r, err := LookupRuntime(context.Background(), rt)
	if err != nil {
		t.Fatal(err)
	}
	return r.Path
}

// A build cannot reach the host's loopback: its network namespace has only
// its own loopback interface, the connection fails, and the host's
// listener sees nothing.
func TestRunNoNetwork(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan struct{}, 1)
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close() // so that a leaking nc ends and the test fails rather than hangs
				accepted <- struct{}{}
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		s := busyboxStep(t, rt, sh(`ls /sys/class/net > /out/ifaces
echo exfiltrate | nc -w 2 127.0.0.1 %d && echo connected > /out/connected
exit 0`, port)...)
		s.Timeout = 30 * time.Second
		mustRun(t, s)
		if got := lines(readFile(t, s.Out, "ifaces")); !slices.Equal(got, []string{"lo"}) {
			t.Errorf("network interfaces = %q, want only lo", got)
		}
		if exists(s.Out, "connected") {
			t.Error("the build connected to the host's loopback")
		}
		select {
		case <-accepted:
			t.Error("the host's listener accepted a connection from the build")
		case <-time.After(200 * time.Millisecond):
		}
	})
}

// The build sees a private, writable copy of its source: it reads it at
// the workdir, may change and create files there (as npm, make and cargo
// do), owns it as its own uid, each run starts from the pristine source,
// and the host's tree is never written.
func TestRunSourceWritableCopy(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`cat /src/hello.txt > /out/read; pwd > /out/pwd
ls -ln /src/hello.txt | awk '{print $3":"$4}' > /out/owner
test -e /src/new && echo stale > /out/stale
echo changed >> /src/hello.txt && mkdir -p /src/node_modules/x && echo y > /src/node_modules/x/y && echo x > /src/new && cat /src/hello.txt > /out/after`)...)
		if err := os.Chown(s.Source, 4242, 4242); err != nil { // a checkout of another user
			t.Fatal(err)
		}
		before, err := HashTree(t.Context(), s.Source)
		if err != nil {
			t.Fatal(err)
		}
		for run := range 2 {
			if run == 1 {
				s.Out = filepath.Join(t.TempDir(), "out")
				if err := os.Mkdir(s.Out, 0o755); err != nil {
					t.Fatal(err)
				}
				s.Sandbox.UID, s.Sandbox.GID = 1000, 1000
			}
			res := mustRun(t, s)
			if got := readFile(t, s.Out, "read"); got != "hello from the source\n" {
				t.Errorf("run %d read %q from the source", run+1, got)
			}
			if got := readFile(t, s.Out, "after"); got != "hello from the source\nchanged\n" {
				t.Errorf("run %d: the source after its write is %q", run+1, got)
			}
			if got, want := strings.TrimSpace(readFile(t, s.Out, "owner")), fmt.Sprintf("%d:%d", s.Sandbox.UID, s.Sandbox.GID); got != want {
				t.Errorf("run %d: the source copy is owned by %s, want the build's %s", run+1, got, want)
			}
			if exists(s.Out, "stale") {
				t.Errorf("run %d saw a file an earlier run wrote into its source", run+1)
			}
			if res.ScratchBytes <= 0 || res.ScratchExceeded {
				t.Errorf("run %d: scratch %d bytes, exceeded %v", run+1, res.ScratchBytes, res.ScratchExceeded)
			}
		}
		after, err := HashTree(t.Context(), s.Source)
		if err != nil {
			t.Fatal(err)
		}
		if before.Digest() != after.Digest() || exists(s.Source, "new") {
			t.Errorf("the host's source changed: %s before, %s after", before.Digest(), after.Digest())
		}
	})
}

// A build that writes more into its source than Step.Scratch allows is
// killed, with an error that says how to raise the limit.
func TestRunScratchLimit(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`dd if=/dev/zero of=/src/big bs=1M count=64 2>/dev/null; sleep 30`)...)
		s.Scratch = 8 << 20
		s.Timeout = time.Minute
		began := time.Now()
		_, err := Run(t.Context(), s)
		var se *ScratchError
		if !errors.As(err, &se) || !errors.Is(err, ErrScratchExceeded) {
			t.Fatalf("Run: %v, want a ScratchError", err)
		}
		if se.Used <= s.Scratch || !strings.Contains(err.Error(), "builder.limits.scratch") {
			t.Errorf("error %q: used %d, want over %d and the setting to raise", err, se.Used, s.Scratch)
		}
		if d := time.Since(began); d > 20*time.Second {
			t.Errorf("the build ran %s: it was not killed when it passed the limit", d)
		}
	})
}

// The environment is exactly the configured variables plus HOME, PATH
// (from the image) and SOURCE_DATE_EPOCH: nothing from the host.
func TestRunCleanEnvironment(t *testing.T) {
	t.Setenv("BUILDGUARD_HOST_SECRET", "must-not-leak")
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, "env")
		s.Env = map[string]string{"CGO_ENABLED": "0", "LANG": "C.UTF-8"}
		res := mustRun(t, s)
		got := lines(logText(t, res))
		slices.Sort(got)
		want := []string{"CGO_ENABLED=0", "HOME=" + Home, "LANG=C.UTF-8", "PATH=/bin", "SOURCE_DATE_EPOCH=1700000000"}
		if !slices.Equal(got, want) {
			t.Errorf("environment = %q, want %q", got, want)
		}
	})
}

// A build past its timeout is killed, reported as a timeout (not as a
// build that exited non-zero), promptly, with nothing left running.
func TestRunTimeout(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`echo started; sleep 987`)...)
		// The timer starts with the runtime, before the container exists:
		// it must outlast the container's start (runsc takes about half a
		// second idle, more on a loaded machine), or the build is killed
		// before it echoes, or before the runtime wrote its pid file.
		s.Timeout = 3 * time.Second
		begin := time.Now()
		res, err := mustFail(t, s, ErrTimeout)
		if errors.Is(err, ErrBuildFailed) {
			t.Errorf("a timeout also matches ErrBuildFailed: %v", err)
		}
		var te *TimeoutError
		if !errors.As(err, &te) || te.Timeout != s.Timeout || te.ExitCode() != exitIncomplete {
			t.Errorf("error = %#v, want a TimeoutError of %s with exit code 3", err, s.Timeout)
		}
		if !res.TimedOut || res.ExitCode != -1 {
			t.Errorf("TimedOut %v, ExitCode %d; want true, -1", res.TimedOut, res.ExitCode)
		}
		if d := time.Since(begin); d > 15*time.Second {
			t.Errorf("Run took %s after a timeout of %s", d, s.Timeout)
		}
		if !strings.Contains(logText(t, res), "started") {
			t.Errorf("log lost the output before the kill: %q", logText(t, res))
		}
		if p := findProcess(t, "987"); p != "" {
			t.Errorf("the build's sleep is still running: pid %s", p)
		}
	})
}

// findSandbox returns the pid of gVisor's sandbox (its kernel, in which
// the build's processes live), or "".
func findSandbox(t *testing.T) string {
	t.Helper()
	ds, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range ds {
		b, err := os.ReadFile(d)
		if err == nil && bytes.HasPrefix(b, []byte("runsc-sandbox\x00")) {
			return filepath.Base(filepath.Dir(d))
		}
	}
	return ""
}

// findProcess returns the pid of a process whose last argument is arg.
func findProcess(t *testing.T, arg string) string {
	t.Helper()
	ds, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range ds {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 2 && strings.HasSuffix(args[0], "sleep") && args[1] == arg {
			return filepath.Base(filepath.Dir(d))
		}
	}
	return ""
}

// A build that exits non-zero is a BuildError with its status.
func TestRunExitStatus(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		res, err := mustFail(t, busyboxStep(t, rt, sh(`exit 7`)...), ErrBuildFailed)
		var be *BuildError
		if !errors.As(err, &be) || be.Status != 7 || res.ExitCode != 7 || res.TimedOut {
			t.Errorf("err %v, result %+v; want status 7", err, res)
		}
	})
}

// A build that tries to write to / and to the image's files fails, and the
// cached rootfs is unchanged afterwards, although the image lacks every
// mount point the runtime needs (/proc, /dev, /tmp, /src, /out, $HOME).
func TestRunRootfsUnchanged(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`touch /new; echo changed > /etc/buildguard-marker; mkdir /bin/x; rm /bin/sh
test -e /new -o -e /bin/x && exit 9
echo ok`)...)
		before, err := HashTree(context.Background(), s.Rootfs)
		if err != nil {
			t.Fatal(err)
		}
		res := mustRun(t, s)
		after, err := HashTree(context.Background(), s.Rootfs)
		if err != nil {
			t.Fatal(err)
		}
		if before.Digest() != after.Digest() {
			t.Errorf("the cached rootfs changed:\nbefore %s\nafter  %s", before.Canonical(), after.Canonical())
		}
		log := logText(t, res)
		if strings.Count(log, "Read-only file system") < 3 {
			t.Errorf("writes to / did not all fail with EROFS:\n%s", log)
		}
	})
}

// TestRunTimeoutBeforeStart: a timeout that runs out while the runtime is
// still making the container is the build's timeout (exit 3), said so,
// not a runtime failure to fall back from; the runtime stops at once and
// nothing of the build is left.
func TestRunTimeoutBeforeStart(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`sleep 985`)...)
		s.Timeout = time.Millisecond
		res, err := mustFail(t, s, ErrTimeout)
		var te *TimeoutError
		if !errors.As(err, &te) || te.Timeout != s.Timeout || te.ExitCode() != exitIncomplete {
			t.Errorf("error = %#v, want a TimeoutError of %s with exit code 3", err, s.Timeout)
		}
		if !te.BeforeStart || !strings.Contains(err.Error(), "before the runtime had started it") {
			t.Errorf("error %q does not say the build had not started", err)
		}
		if res == nil || !res.TimedOut {
			t.Errorf("result %+v, want TimedOut", res)
		}
		// The kill is sent again until the container it stops exists:
		// the runtime is not left running until stop gives up on it.
		if strings.Contains(err.Error(), "did not return") {
			t.Errorf("the runtime outlived the kill: %v", err)
		}
		if p := findProcess(t, "985"); p != "" {
			t.Errorf("the build's sleep is running: pid %s", p)
		}
	})
}
