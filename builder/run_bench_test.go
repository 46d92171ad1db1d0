package builder

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/buildguard/buildguard/internal/harness"
)

// BenchmarkStartup measures the whole cost of one sandboxed `true` (the
// overlay root, config.json, the runtime's run and delete, the output
// manifest of an empty /out) per runtime, against running the same busybox
// `true` directly.
func BenchmarkStartup(b *testing.B) {
	bb := harness.Require(b, "busybox")
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command(bb, "true").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	requireRoot(b)
	for _, rt := range testRuntimes {
		b.Run(rt, func(b *testing.B) {
			harness.Require(b, rt)
			s := busyboxStep(b, rt, "true")
			s.Log = ""
			for b.Loop() {
				if _, err := Run(context.Background(), s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// hashBenchTree writes a tree of 256 MiB: 48 files of 5 MiB and 4096 files
// of 4 KiB, and returns its directory and size.
func hashBenchTree(b *testing.B) (string, int64) {
	b.Helper()
	dir := b.TempDir()
	var total int64
	big := randomBytes(1, 5<<20)
	for i := range 48 {
		big[0] = byte(i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("big%02d", i)), big, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(big))
	}
	small := randomBytes(2, 4<<10)
	for i := range 4096 {
		d := filepath.Join(dir, fmt.Sprintf("d%02d", i%64))
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		small[0], small[1] = byte(i), byte(i>>8)
		if err := os.WriteFile(filepath.Join(d, fmt.Sprint(i)), small, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(small))
	}
	return dir, total
}

// BenchmarkHashTree hashes a 256 MiB tree (page cache warm) with HashTree,
// one worker and one per core, against sha256sum over the same files, one
// process and one per core (xargs -P). MB/s is the figure to compare.
func BenchmarkHashTree(b *testing.B) {
	dir, total := hashBenchTree(b)
	for _, jobs := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("HashTree/jobs=%d", jobs), func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				if _, err := hashTree(context.Background(), dir, jobs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	if _, err := exec.LookPath("sha256sum"); err != nil {
		b.Skip("sha256sum is not installed")
	}
	for _, jobs := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("sha256sum/jobs=%d", jobs), func(b *testing.B) {
			b.SetBytes(total)
			script := fmt.Sprintf("find . -type f -print0 | xargs -0 -n 512 -P %d sha256sum > /dev/null", jobs)
			for b.Loop() {
				cmd := exec.Command("sh", "-c", script)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
			}
		})
	}
}
