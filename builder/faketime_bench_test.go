package builder

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/buildguard/buildguard/internal/testimage"
)

// BenchmarkClockOffsetStartup measures what the time variation's fake
// clock adds to the start of a run: one sandboxed coreutils `date` in a
// glibc image with crun, without a clock offset and with one (finding the
// host's libfaketime, checking that the image can load it, binding it in
// and preloading it). docs/performance.md gives the ratio.
func BenchmarkClockOffsetStartup(b *testing.B) {
	requireRoot(b)
	requireLibfaketime(b)
	date, err := exec.LookPath("date")
	if err != nil {
		b.Skip("no date on this host")
	}
	if date, err = filepath.EvalSymlinks(date); err != nil {
		b.Fatal(err)
	}
	img, err := testimage.GlibcImage(staticBusybox(b), []string{"sh"}, date)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		offset time.Duration
	}{{"real-clock", 0}, {"libfaketime", 397*24*time.Hour + time.Hour + time.Minute + 7*time.Second}} {
		b.Run(c.name, func(b *testing.B) {
			s := busyboxStep(b, RuntimeCrun, date, "-u")
			s.Rootfs, s.ImagePath = unpacked(b, img)
			s.Log, s.Sandbox.ClockOffset = "", c.offset
			for b.Loop() {
				res, err := Run(context.Background(), s)
				if err != nil {
					b.Fatal(err)
				}
				if (res.FakeClock == ClockLibfaketime) != (c.offset != 0) {
					b.Fatalf("FakeClock %q with offset %s", res.FakeClock, c.offset)
				}
			}
		})
	}
}
