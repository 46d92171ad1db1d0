package builder

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCopySourceVsCp times the private copy of a source tree that
// every run makes (copySource: 2,000 files of 32 KiB in 40 directories,
// 62.5 MiB) against `cp -a` of the same tree in the same run, alternating,
// and reports both and their ratio (ours / cp; below 1 is faster).
func BenchmarkCopySourceVsCp(b *testing.B) {
	cp, err := exec.LookPath("cp")
	if err != nil {
		b.Skipf("cp not found: %v", err)
	}
	src := filepath.Join(b.TempDir(), "src")
	body := make([]byte, 32<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	for d := range 40 {
		dir := filepath.Join(src, fmt.Sprintf("pkg%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 50 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.go", f)), body, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	var ours, theirs time.Duration
	n := 0
	for b.Loop() {
		dst := b.TempDir()
		start := time.Now()
		if err := copySource(src, filepath.Join(dst, "ours"), os.Getuid(), os.Getgid(), 0); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		start = time.Now()
		if out, err := exec.Command(cp, "-a", src, filepath.Join(dst, "cp")).CombinedOutput(); err != nil {
			b.Fatalf("cp -a: %v: %s", err, out)
		}
		theirs += time.Since(start)
		n++
	}
	b.ReportMetric(float64(ours.Milliseconds())/float64(n), "ours-ms")
	b.ReportMetric(float64(theirs.Milliseconds())/float64(n), "cp-ms")
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "ratio")
}
