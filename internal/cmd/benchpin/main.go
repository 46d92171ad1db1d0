// Command benchpin measures `buildguard pin` against the peer a shell
// pipeline would use (`crane digest`, one call per reference) on the same
// inputs in the same run: a real distribution registry on loopback with 100
// images, and 20 Dockerfiles holding 200 references to them. It prints wall
// times and their ratio; scripts/bench.sh runs it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

func main() {
	bin := flag.String("buildguard", "bin/buildguard", "the buildguard binary")
	rounds := flag.Int("rounds", 5, "timed rounds of each tool (the median is reported)")
	flag.Parse()
	if err := run(*bin, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "benchpin:", err)
		os.Exit(1)
	}
}

func run(bin string, rounds int) error {
	crane, err := harness.Lookup("crane")
	if err != nil {
		return fmt.Errorf("%w (go install github.com/google/go-containerregistry/cmd/crane@v0.22.1)", err)
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "benchpin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ctx := context.Background()
	reg, err := harness.StartRegistry(ctx, filepath.Join(tmp, "registry"))
	if err != nil {
		return err
	}
	defer reg.Stop()

	for i := range 100 {
		if err := push(fmt.Sprintf("%s/bench/img%d:v1", reg.Addr, i), i); err != nil {
			return err
		}
	}
	var files, refs []string
	for f := range 20 {
		var sb strings.Builder
		for r := range 10 {
			ref := fmt.Sprintf("%s/bench/img%d:v1", reg.Addr, (f*10+r)%100)
			refs = append(refs, ref)
			fmt.Fprintf(&sb, "FROM %s AS s%d\n", ref, r)
		}
		p := filepath.Join(tmp, fmt.Sprintf("Dockerfile.%02d", f))
		if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
			return err
		}
		files = append(files, p)
	}

	pinTimes, craneTimes := make([]time.Duration, rounds), make([]time.Duration, rounds)
	for i := range rounds {
		start := time.Now()
		cmd := exec.Command(bin, append([]string{"pin", "--quiet"}, files...)...)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("buildguard pin: %w", err)
		}
		pinTimes[i] = time.Since(start)

		start = time.Now()
		for _, ref := range refs { // what a shell pinner does: one crane call per reference
			out, err := exec.Command(crane, "digest", ref).Output()
			if err != nil {
				return fmt.Errorf("crane digest %s: %w", ref, err)
			}
			if !bytes.HasPrefix(out, []byte("sha256:")) {
				return fmt.Errorf("crane digest %s: unexpected output %q", ref, out)
			}
		}
		craneTimes[i] = time.Since(start)
	}
	p, c := median(pinTimes), median(craneTimes)
	fmt.Printf("pin 200 references in 20 Dockerfiles (100 distinct images), real docker-registry on loopback, median of %d\n", rounds)
	fmt.Printf("  buildguard pin:                 %8.1f ms\n", ms(p))
	fmt.Printf("  crane digest, once per ref:     %8.1f ms\n", ms(c))
	fmt.Printf("  ratio buildguard/crane:         %8.3f\n", float64(p)/float64(c))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// push writes a one-layer image whose content depends on seed.
func push(ref string, seed int) error {
	_, err := testimage.PushFiles(context.Background(), ref, map[string]string{"id": fmt.Sprintf("image %d\n", seed)})
	return err
}
