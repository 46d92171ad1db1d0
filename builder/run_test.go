package builder

import (
	"context"
	"errors"
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

// The source is read-only: writing to it fails and leaves the host's
// source unchanged, while reading it works.
func TestRunSourceReadOnly(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`cat /src/hello.txt; pwd; echo x > /src/new`)...)
		res, _ := mustFail(t, s, ErrBuildFailed)
		log := logText(t, res)
		if !strings.Contains(log, "hello from the source") || !strings.Contains(log, DefaultWorkdir+"\n") {
			t.Errorf("the source is not readable at %s, the working directory:\n%s", DefaultWorkdir, log)
		}
		if !strings.Contains(log, "Read-only file system") {
			t.Errorf("log does not show EROFS:\n%s", log)
		}
		if exists(s.Source, "new") {
			t.Error("the build wrote into the source")
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
		s.Timeout = 500 * time.Millisecond
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
