// Command benchverify measures `buildguard verify` against `cosign verify`
// on the same images in the same run: a real distribution registry and a
// real Rekor v2 log (rekor-tiles, POSIX storage) on loopback, and 20 images
// each signed with a key by the real cosign v3 CLI, the signature logged in
// the Rekor v2 log and attached as a Sigstore bundle. Both tools verify the
// signature and its log entry offline against the same trusted root; each
// is run once per round on all 20 images. buildguard is measured cold
// (empty result cache), cached (the cache of the cold run), and online
// (--rekor-url: the log's checkpoint and tiles read, consistency and
// inclusion proved) cold and cached. It prints medians and ratios;
// scripts/bench.sh runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

func main() {
	bin := flag.String("buildguard", "bin/buildguard", "the buildguard binary")
	rounds := flag.Int("rounds", 5, "timed rounds of each measurement (the median is reported)")
	images := flag.Int("images", 20, "images to verify")
	flag.Parse()
	if err := run(*bin, *rounds, *images); err != nil {
		fmt.Fprintln(os.Stderr, "benchverify:", err)
		os.Exit(1)
	}
}

// env is the signed images and the files both tools verify them with.
type env struct {
	dir, cosign, bin string
	refs             []string
	tilesURL         string
}

func run(bin string, rounds, images int) error {
	cosign, err := harness.Lookup("cosign")
	if err != nil {
		return err
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "benchverify-")
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
	rekor, err := harness.StartRekor(ctx, filepath.Join(tmp, "rekor"))
	if err != nil {
		return err
	}
	defer rekor.Stop()
	e := &env{dir: tmp, cosign: cosign, bin: bin, tilesURL: rekor.TilesURL}
	if err := e.setup(reg.Addr, rekor, images); err != nil {
		return err
	}

	cosignArgs := append([]string{"verify", "--allow-http-registry", "--key", "cosign.pub", "--trusted-root", "trusted_root.json"}, e.refs...)
	measure := map[string][]time.Duration{}
	for i := range rounds {
		cache := filepath.Join(tmp, fmt.Sprintf("cache-%d", i))
		for _, m := range []struct {
			name string
			bin  string
			args []string
		}{
			{"buildguard cold", bin, e.bgArgs(cache+"/offline", "")},
			{"buildguard cached", bin, e.bgArgs(cache+"/offline", "")},
			{"buildguard online cold", bin, e.bgArgs(cache+"/online", cache+"/checkpoints")},
			{"buildguard online cached", bin, e.bgArgs(cache+"/online", cache+"/checkpoints")},
			{"cosign verify", cosign, cosignArgs},
		} {
			d, err := e.time(m.bin, m.args)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			measure[m.name] = append(measure[m.name], d)
		}
	}
	c := median(measure["cosign verify"])
	fmt.Printf("verify %d images (keyed cosign v3 signatures logged in a real Rekor v2, real docker-registry on loopback), one process each, median of %d\n", len(e.refs), rounds)
	for _, name := range []string{"buildguard cold", "buildguard cached", "buildguard online cold", "buildguard online cached", "cosign verify"} {
		d := median(measure[name])
		fmt.Printf("  %-26s %8.1f ms   ratio to cosign %6.3f\n", name+":", ms(d), float64(d)/float64(c))
	}
	return nil
}

// setup writes the trusted root, signing config and key pair, pushes the
// images and signs each with cosign through the Rekor v2 log.
func (e *env) setup(registry string, rekor *harness.Rekor, images int) error {
	if err := os.WriteFile(filepath.Join(e.dir, "rekor.pub"), rekor.PublicKeyPEM, 0o600); err != nil {
		return err
	}
	start := "start-time=2024-01-01T00:00:00Z"
	for _, args := range [][]string{
		{"trusted-root", "create", "--rekor=url=" + rekor.URL + ",public-key=rekor.pub," + start + ",origin=" + rekor.Origin, "--out", "trusted_root.json"},
		{"signing-config", "create", "--rekor=url=" + rekor.URL + ",api-version=2," + start + ",operator=bench", "--rekor-config=ANY", "--out", "signing_config.json"},
		{"generate-key-pair"},
	} {
		if _, err := e.cosignRun(args...); err != nil {
			return err
		}
	}
	for i := range images {
		ref := fmt.Sprintf("%s/bench/verify%d:v1", registry, i)
		digest, err := testimage.PushFiles(context.Background(), ref, map[string]string{"id": fmt.Sprintf("image %d\n", i)})
		if err != nil {
			return err
		}
		e.refs = append(e.refs, fmt.Sprintf("%s/bench/verify%d@%s", registry, i, digest))
	}
	// Sign four at a time: each waits for the log's next checkpoint.
	var wg sync.WaitGroup
	errs := make([]error, len(e.refs))
	sem := make(chan struct{}, 4)
	for i, ref := range e.refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, errs[i] = e.cosignRun("sign", "--yes", "--allow-http-registry", "--key", "cosign.key",
				"--signing-config", "signing_config.json", "--trusted-root", "trusted_root.json", ref)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (e *env) bgArgs(cache, checkpoints string) []string {
	args := []string{"verify", "--trusted-root", "trusted_root.json", "--key", "cosign.pub", "--verify-cache", cache}
	if checkpoints != "" {
		args = append(args, "--rekor-url", e.tilesURL, "--checkpoints", checkpoints)
	}
	return append(args, e.refs...)
}

// cosignRun runs cosign in the bench directory with no TUF, cache or
// credentials from the host.
func (e *env) cosignRun(args ...string) ([]byte, error) {
	cmd := exec.Command(e.cosign, args...)
	cmd.Dir = e.dir
	cmd.Env = e.environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("cosign %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

func (e *env) environ() []string {
	return append(os.Environ(), "COSIGN_PASSWORD=", "DOCKER_CONFIG="+e.dir, "TUF_ROOT="+filepath.Join(e.dir, "tuf"), "SIGSTORE_NO_CACHE=true")
}

// time runs bin with args in the bench directory and returns the wall
// time; a failure (any image not verified) is an error.
func (e *env) time(bin string, args []string) (time.Duration, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = e.dir
	cmd.Env = e.environ()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%w\n%s", err, out)
	}
	return d, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
