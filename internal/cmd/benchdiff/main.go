// Command benchdiff measures `buildguard diff` against its peers on the same
// trees in the same run: sha256sum over both trees (one core, as a plain
// shell comparison would do) and diffoscope. Two identical trees of about
// --size bytes are made, then one byte of one file is changed. It prints
// wall times and ratios; scripts/bench.sh runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

func main() {
	bin := flag.String("buildguard", "bin/buildguard", "the buildguard binary")
	size := flag.Int64("size", 1<<30, "bytes in each tree")
	rounds := flag.Int("rounds", 3, "timed rounds of buildguard and sha256sum (median reported)")
	diffoscopeTimeout := flag.Duration("diffoscope-timeout", 10*time.Minute, "give up on diffoscope after this long")
	flag.Parse()
	if err := run(*bin, *size, *rounds, *diffoscopeTimeout); err != nil {
		fmt.Fprintln(os.Stderr, "benchdiff:", err)
		os.Exit(1)
	}
}

func run(bin string, size int64, rounds int, dsTimeout time.Duration) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "benchdiff-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	files, err := makeTrees(a, b, size)
	if err != nil {
		return err
	}
	fmt.Printf("two trees of %d MiB each (%d files) on %s\n", size>>20, len(files), tmp)
	for _, phase := range []string{"identical", "one byte differs"} {
		want := 0
		if phase == "one byte differs" {
			if err := flipByte(files[len(files)/2]); err != nil {
				return err
			}
			want = 1
		}
		bg, err := timeMedian(rounds, func() error { return expect(exec.Command(bin, "diff", "-q", a, b), want) })
		if err != nil {
			return fmt.Errorf("buildguard diff: %w", err)
		}
		sum, err := timeMedian(rounds, func() error {
			return exec.Command("sh", "-c", `find "$1" "$2" -type f -print0 | xargs -0 sha256sum > /dev/null`, "sh", a, b).Run()
		})
		if err != nil {
			return fmt.Errorf("sha256sum: %w", err)
		}
		fmt.Printf("\n%s:\n", phase)
		fmt.Printf("  buildguard diff:         %9.1f ms\n", ms(bg))
		fmt.Printf("  sha256sum, both trees:   %9.1f ms   ratio buildguard/sha256sum %.3f\n", ms(sum), float64(bg)/float64(sum))
		ds, err := diffoscope(a, b, dsTimeout)
		switch {
		case errors.Is(err, exec.ErrNotFound):
			fmt.Println("  diffoscope:              not installed (apt-get install --no-install-recommends diffoscope)")
		case errors.Is(err, context.DeadlineExceeded):
			fmt.Printf("  diffoscope:              > %s (stopped)   ratio buildguard/diffoscope < %.4f\n", dsTimeout, float64(bg)/float64(dsTimeout))
		case err != nil:
			return fmt.Errorf("diffoscope: %w", err)
		default:
			fmt.Printf("  diffoscope:              %9.1f ms   ratio buildguard/diffoscope %.4f\n", ms(ds), float64(bg)/float64(ds))
		}
	}
	return nil
}

// makeTrees writes the same random files under a and b: 4 MiB files and a
// directory of small ones, about size bytes in all.
func makeTrees(a, b string, size int64) ([]string, error) {
	rng := rand.New(rand.NewSource(1)) //nolint:gosec // seeded test data, not secrets
	var files []string
	buf := make([]byte, 4<<20)
	var written int64
	for i := 0; written < size; i++ {
		n := len(buf)
		name := fmt.Sprintf("bin/file-%04d", i)
		if i%4 == 3 {
			n = 4096
			name = fmt.Sprintf("share/doc/%03d/small-%04d.txt", i%100, i)
		}
		_, _ = rng.Read(buf[:n]) // math/rand never fails
		for _, root := range []string{a, b} {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(p, buf[:n], 0o644); err != nil {
				return nil, err
			}
		}
		files = append(files, filepath.Join(b, name))
		written += int64(n)
	}
	return files, nil
}

func flipByte(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	one := make([]byte, 1)
	if _, err := f.ReadAt(one, 1000); err != nil {
		return err
	}
	one[0] ^= 0xff
	_, err = f.WriteAt(one, 1000)
	return err
}

func expect(cmd *exec.Cmd, code int) error {
	err := cmd.Run()
	var ee *exec.ExitError
	got := 0
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		return err
	}
	if got != code {
		return fmt.Errorf("exit %d, want %d", got, code)
	}
	return nil
}

func diffoscope(a, b string, timeout time.Duration) (time.Duration, error) {
	path, err := exec.LookPath("diffoscope")
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err = exec.CommandContext(ctx, path, "--no-progress", "--text", os.DevNull, a, b).Run()
	d := time.Since(start)
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		err = nil // 1 means "differ"
	}
	return d, err
}

func timeMedian(n int, f func() error) (time.Duration, error) {
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds[i] = time.Since(start)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[n/2], nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
