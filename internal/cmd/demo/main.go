// Command demo runs buildguard on the bundled example (examples/hello)
// against a real OCI registry it starts on loopback, and checks that every
// step ends the way it should. It is what `make demo` runs.
//
// Today it shows the pin stage of the guarded pipeline: the offline check
// that refuses unpinned builder and base images, pinning them by digest,
// and a tag that moves under a pin (what an attacker who can push to the
// registry does) being caught. It stops and cleans up whatever it started.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

// exampleRegistry is the registry the example's files name; the demo
// substitutes the address of the registry it starts.
const exampleRegistry = "127.0.0.1:5000"

func main() {
	bin := flag.String("buildguard", "bin/buildguard", "the buildguard binary to run")
	example := flag.String("example", "examples/hello", "the example directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *bin, *example)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo: FAILED: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, example string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "buildguard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	say("Starting a real OCI registry (Debian's docker-registry) on loopback")
	reg, err := harness.StartRegistry(ctx, filepath.Join(tmp, "registry"))
	if err != nil {
		return fmt.Errorf("%w (the demo needs: apt-get install -y docker-registry)", err)
	}
	defer reg.Stop()
	fmt.Printf("  registry at %s\n", reg.Addr)

	say("Pushing the builder images and the base image the example uses")
	for _, img := range []struct{ repo, content string }{
		{"demo/go-builder:1.26", "the Go toolchain image the example builds with"},
		{"demo/go-builder-independent:1.26", "an independently produced Go toolchain image"},
		{"demo/static:1", "the base image the release ships on"},
	} {
		d, err := push(reg.Addr+"/"+img.repo, img.content)
		if err != nil {
			return err
		}
		fmt.Printf("  %s/%s  %s\n", reg.Addr, img.repo, d)
	}

	work := filepath.Join(tmp, "hello")
	if err := copyExample(example, work, reg.Addr); err != nil {
		return err
	}
	files := []string{"Dockerfile", "buildguard.yaml"}
	bg := func(want int, args ...string) error { return step(ctx, work, bin, want, args...) }

	say("1. The offline check refuses the unpinned builder and base images (exit 1)")
	if err := bg(1, append([]string{"pin", "--check"}, files...)...); err != nil {
		return err
	}
	say("2. Pin them to the digests the registry serves now, and record a lockfile")
	if err := bg(0, append([]string{"pin", "--write", "--lock", "buildguard.lock"}, files...)...); err != nil {
		return err
	}
	if err := show(work, "Dockerfile"); err != nil {
		return err
	}
	say("3. The check now passes, offline")
	if err := bg(0, append([]string{"pin", "--check"}, files...)...); err != nil {
		return err
	}
	say("4. Someone pushes a different image under the builder's tag (a compromised toolchain)")
	d, err := push(reg.Addr+"/demo/go-builder:1.26", "a toolchain that injects a payload")
	if err != nil {
		return err
	}
	fmt.Printf("  demo/go-builder:1.26 now names %s\n", d)
	say("   The pinned files still name the reviewed digest: the check passes, nothing moved")
	if err := bg(0, append([]string{"pin", "--check"}, files...)...); err != nil {
		return err
	}
	say("   and --update shows exactly which pin the moved tag would change")
	if err := bg(0, append([]string{"pin", "--update"}, files...)...); err != nil {
		return err
	}

	fmt.Println("\ndemo: every step ended as expected. Next in the pipeline (not built yet): verify signatures, hermetic build, diverse rebuild, SBOM, policy, publish.")
	return nil
}

func say(msg string) { fmt.Printf("\n== %s\n", msg) }

// step runs buildguard in dir, shows the command and its output, and
// checks its exit code.
func step(ctx context.Context, dir, bin string, want int, args ...string) error {
	fmt.Printf("$ buildguard %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, werr := (indent{os.Stdout}).Write(out.Bytes()); werr != nil {
		return werr
	}
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		return err
	}
	fmt.Printf("  (exit %d)\n", got)
	if got != want {
		return fmt.Errorf("buildguard %s exited %d, want %d", strings.Join(args, " "), got, want)
	}
	return nil
}

type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s := strings.TrimSuffix(string(p), "\n")
	_, err := fmt.Fprintf(i.w, "  %s\n", strings.ReplaceAll(s, "\n", "\n  "))
	return len(p), err
}

func show(dir, file string) error {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return err
	}
	fmt.Printf("  --- %s after pinning ---\n", file)
	_, err = indent{os.Stdout}.Write(data)
	return err
}

// copyExample copies the example's files, pointing them at the registry
// the demo started.
func copyExample(src, dst, addr string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("reading the example: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		data = bytes.ReplaceAll(data, []byte(exampleRegistry), []byte(addr))
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil { //nolint:gosec // names come from ReadDir of the example directory
			return err
		}
	}
	return nil
}

// push writes a one-layer image holding a description file and returns its
// digest.
func push(ref, content string) (string, error) {
	return testimage.PushFiles(context.Background(), ref, map[string]string{"etc/buildguard-demo": content + "\n"})
}
