package builder

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buildguard/buildguard/internal/testimage"
)

// requireLibfaketime returns the host's libfaketime, skipping the test
// without it (failing it in CI, where .ci/run installs it).
func requireLibfaketime(t testing.TB) string {
	t.Helper()
	lib, err := Libfaketime()
	if err == nil {
		return lib
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	}
	t.Skip(err)
	return ""
}

func TestLibfaketimeMissingSaysHowToInstall(t *testing.T) {
	saved := libfaketimePaths
	t.Cleanup(func() { libfaketimePaths = saved })
	libfaketimePaths = []string{filepath.Join(t.TempDir(), "libfaketime.so.1")}
	_, err := Libfaketime()
	if !errors.Is(err, ErrNoLibfaketime) || !strings.Contains(err.Error(), "apt-get install faketime libfaketime") {
		t.Fatalf("Libfaketime() on a host without it = %v, want ErrNoLibfaketime with the install command", err)
	}
}

func TestFakeTime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		397*24*time.Hour + time.Hour + time.Minute + 7*time.Second: "+34304467",
		-90 * time.Second: "-90",
	} {
		if got := FakeTime(d); got != want {
			t.Errorf("FakeTime(%s) = %q, want %q", d, got, want)
		}
	}
}

// hostGlibcRoot writes the host's date with its glibc into a directory, as
// an unpacked image would hold them.
func hostGlibcRoot(t *testing.T) string {
	t.Helper()
	date, err := exec.LookPath("date")
	if err != nil {
		t.Skip("no date on this host")
	}
	date, err = filepath.EvalSymlinks(date)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := testimage.HostPrograms(date)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, e := range ents {
		p := filepath.Join(root, e.Name)
		if e.Dir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, e.Body, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// CanPreload accepts an image with the host's glibc, and refuses, saying
// why, one without a loader (a static image) and one that lacks a library
// libfaketime needs.
func TestCanPreload(t *testing.T) {
	lib := requireLibfaketime(t)
	root := hostGlibcRoot(t)
	if err := CanPreload(root, lib); err != nil {
		t.Fatalf("an image with the host's glibc: %v", err)
	}
	if err := CanPreload(t.TempDir(), lib); err == nil || !strings.Contains(err.Error(), "no glibc dynamic loader") {
		t.Errorf("an image without a loader: %v, want it named", err)
	}
	// libfaketime needs libm, which date does not pull in.
	matches, _ := filepath.Glob(filepath.Join(root, "*/*/libm.so.6"))
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := CanPreload(root, lib); err == nil || !strings.Contains(err.Error(), "libm.so.6") {
		t.Errorf("an image without libm: %v, want libm.so.6 named", err)
	}
}

// A shifted clock reaches a dynamically linked program of a glibc image
// (coreutils' date, also run as another user) but not the static busybox
// beside it; in a busybox-only image it reaches nothing and the result says
// why.
func TestRunClockOffset(t *testing.T) {
	requireLibfaketime(t)
	date, err := exec.LookPath("date")
	if err != nil {
		t.Skip("no date on this host")
	}
	date, err = filepath.EvalSymlinks(date)
	if err != nil {
		t.Fatal(err)
	}
	img, err := testimage.GlibcImage(staticBusybox(t), []string{"sh"}, date)
	if err != nil {
		t.Fatal(err)
	}
	offset := 397*24*time.Hour + time.Hour + time.Minute + 7*time.Second
	forEachRuntime(t, func(t *testing.T, rt string) {
		s := busyboxStep(t, rt, sh(`%s -u +%%s; busybox date -u +%%s`, date)...)
		s.Rootfs, s.ImagePath = unpacked(t, img)
		s.Sandbox = Sandbox{ClockOffset: offset, UID: 1000, GID: 1000}
		before := time.Now().Unix()
		res := mustRun(t, s)
		out := lines(logText(t, res))
		if len(out) != 2 {
			t.Fatalf("output %q, want two times", out)
		}
		dyn, err1 := strconv.ParseInt(out[0], 10, 64)
		static, err2 := strconv.ParseInt(out[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("output %q: %v %v", out, err1, err2)
		}
		if got := time.Duration(dyn-static) * time.Second; got < offset-5*time.Second || got > offset+5*time.Second {
			t.Errorf("coreutils date is %s ahead of busybox date, want %s", got, offset)
		}
		if static < before-1 || static > time.Now().Unix()+1 {
			t.Errorf("busybox date %d is not the real clock", static)
		}
		if res.FakeClock != ClockLibfaketime || len(res.Unreached) != 0 {
			t.Errorf("FakeClock %q, Unreached %q; want libfaketime and nothing unreached", res.FakeClock, res.Unreached)
		}

		bb := busyboxStep(t, rt, "true")
		bb.Sandbox.ClockOffset = offset
		res = mustRun(t, bb)
		if res.FakeClock != "" || len(res.Unreached) != 1 || !strings.Contains(res.Unreached[0], "no glibc dynamic loader") {
			t.Errorf("busybox image: FakeClock %q, Unreached %q; want no fake clock and the loader named", res.FakeClock, res.Unreached)
		}
	})
}
