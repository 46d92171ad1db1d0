package sbom

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fatOnce builds testdata/fatbin, a ~97 MB Go binary that links syft
// (263 modules), once for the whole package.
var fatOnce struct {
	sync.Once
	path string
	err  error
	out  []byte
}

func fatBinary(t testing.TB) string {
	t.Helper()
	fatOnce.Do(func() {
		fatOnce.path = filepath.Join(sharedDir, "fatbin")
		cmd := exec.Command("go", "build", "-o", fatOnce.path, "./testdata/fatbin")
		fatOnce.out, fatOnce.err = cmd.CombinedOutput()
	})
	if fatOnce.err != nil {
		t.Fatalf("building testdata/fatbin: %v\n%s", fatOnce.err, fatOnce.out)
	}
	return fatOnce.path
}

// benchTree is the benchmark's build output: two Go binaries, ~114 MB.
// $SBOM_BENCH_TREE names another tree to measure instead.
func benchTree(b *testing.B) string {
	b.Helper()
	if dir := os.Getenv("SBOM_BENCH_TREE"); dir != "" {
		return dir
	}
	dir := filepath.Join(b.TempDir(), "out")
	copyFile(b, fatBinary(b), filepath.Join(dir, "bin", "app"))
	copyFile(b, goBinary(b), filepath.Join(dir, "bin", "crane"))
	writeFile(b, dir, "requirements.txt", "requests==2.31.0\n")
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			info, ierr := d.Info()
			if ierr == nil {
				size += info.Size()
			}
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("tree: %.0f MB", float64(size)/1e6)
	b.SetBytes(size)
	return dir
}

// BenchmarkGenerate100MB measures Generate (one SPDX document, as the CLI
// writes one) on the benchmark tree.
func BenchmarkGenerate100MB(b *testing.B) {
	dir := benchTree(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := Generate(ctx, dir, Options{Formats: []Format{SPDXJSON}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVsSyftCLI100MB times, in each iteration and on the same tree,
// Generate and the syft CLI (`syft scan dir:TREE -o spdx-json`, found on
// PATH or in a Go bin directory, or named by $SYFT), and reports both and
// their ratio (ours / syft; below 1 is faster). ns/op covers both.
//
// Generate builds syft's license scanner once per process, as the CLI does
// once per run; ours-first-ms is the first call, which pays for it (run the
// benchmark with -count=1 so that the first call is this benchmark's).
func BenchmarkVsSyftCLI100MB(b *testing.B) {
	syft := os.Getenv("SYFT")
	if syft == "" {
		p, err := exec.LookPath("syft")
		if err != nil {
			p = filepath.Join(os.Getenv("HOME"), "go", "bin", "syft")
		}
		syft = p
	}
	if _, err := os.Stat(syft); err != nil {
		b.Skipf("syft CLI not found (%v): run with SYFT=$(go tool -n syft), go.mod's syft %s (scripts/sbom_bench.sh does)", err, SyftVersion)
	}
	dir := benchTree(b)
	ctx := context.Background()
	var ours, theirs, first time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := Generate(ctx, dir, Options{Formats: []Format{SPDXJSON}}); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		if first == 0 {
			first = ours
		}
		start = time.Now()
		cmd := exec.CommandContext(ctx, syft, "scan", "dir:"+dir, "-o", "spdx-json="+os.DevNull, "-q")
		cmd.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("syft: %v\n%s", err, out)
		}
		theirs += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()*1000/n, "ours-ms/op")
	b.ReportMetric(theirs.Seconds()*1000/n, "syft-cli-ms/op")
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "ratio")
	b.ReportMetric(first.Seconds()*1000, "ours-first-ms")
}
