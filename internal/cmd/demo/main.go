// Command demo runs buildguard's main job, `buildguard build`, on the
// bundled example (examples/hello) against real parts it starts on
// loopback, and checks that every step ends the way it should. It is what
// `make demo` runs; docs/demo.md describes it.
//
// It starts Debian's docker-registry and a Rekor v2 log (rekor-tiles),
// makes three builder images from this machine's Go toolchain and Debian's
// static busybox (a clean one, an "independent" one and a compromised one
// whose go injects a payload into every binary it builds), signs them with
// the real cosign CLI through the Rekor v2 log, and runs the guarded build
// twice: clean builder and independent builder must pass (exit 0);
// compromised builder and independent builder must fail (exit 1), naming
// both builder digests. The evidence directories are kept in a temporary
// directory it prints; everything else it started or wrote is stopped and
// removed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

// exampleRegistry is the registry the example's files name; the demo
// substitutes the address of the registry it starts.
const exampleRegistry = "127.0.0.1:5000"

// The repositories of the example's images.
const (
	builderRepo     = "demo/go-builder:1.26"
	independentRepo = "demo/go-builder-independent:1.26"
	baseRepo        = "demo/static:1"
)

// payload is what the compromised builder appends to every binary.
const payload = "\n#buildguard-demo-payload: a crypto-miner would start here\n"

func main() {
	bin := flag.String("buildguard", "bin/buildguard", "the buildguard binary to run")
	example := flag.String("example", "examples/hello", "the example directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *bin, *example)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted {
		fmt.Fprintf(os.Stderr, "\ndemo: interrupted; everything it started is stopped (%v)\n", err)
		os.Exit(1)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo: FAILED: %v\n", err)
		os.Exit(1)
	}
}

// demo holds what the steps share.
type demo struct {
	bin      string // buildguard
	cosign   string
	tmp      string // removed at the end
	work     string // the copy of the example the demo pins and builds
	sigstore string // trusted root, signing config, cosign key pair
	env      []string
}

func run(ctx context.Context, bin, example string) (err error) {
	began := time.Now()
	d := &demo{}
	if d.bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	if err := preflight(); err != nil {
		return err
	}
	if d.cosign, err = harness.Lookup("cosign"); err != nil {
		return err
	}
	if d.tmp, err = os.MkdirTemp("", "buildguard-demo-"); err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(d.tmp); rerr != nil && err == nil {
			err = fmt.Errorf("removing %s: %w", d.tmp, rerr)
		}
	}()
	evidence, err := os.MkdirTemp("", "buildguard-demo-evidence-")
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			return
		}
		if entries, rerr := os.ReadDir(evidence); rerr == nil && len(entries) == 0 {
			_ = os.Remove(evidence)
		} else {
			err = fmt.Errorf("%w\n(the evidence so far is in %s)", err, evidence)
		}
	}()
	d.work, d.sigstore = filepath.Join(d.tmp, "hello"), filepath.Join(d.tmp, "sigstore")
	for _, dir := range []string{d.sigstore, filepath.Join(d.tmp, "docker")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	// Every cache and configuration the tools write goes under tmp.
	d.env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(d.tmp, "cache"), "DOCKER_CONFIG="+filepath.Join(d.tmp, "docker"),
		"TUF_ROOT="+filepath.Join(d.tmp, "tuf"), "SIGSTORE_NO_CACHE=true", "COSIGN_PASSWORD=")

	say("Starting a real OCI registry (docker-registry) and a real Rekor v2 transparency log (rekor-tiles) on loopback")
	reg, err := harness.StartRegistry(ctx, filepath.Join(d.tmp, "registry"))
	if err != nil {
		return err
	}
	defer reg.Stop()
	rekor, err := harness.StartRekor(ctx, filepath.Join(d.tmp, "rekor"))
	if err != nil {
		return err
	}
	defer rekor.Stop()
	fmt.Printf("  registry  %s\n  Rekor v2  %s (tiles at %s)\n", reg.Addr, rekor.URL, rekor.TilesURL)

	imgs, err := makeImages(filepath.Join(d.tmp, "images"))
	if err != nil {
		return err
	}
	say("Pushing them, and the base image the release ships on")
	refs := map[string]string{}
	for _, p := range []struct {
		name, repo string
		img        v1.Image
	}{
		{"clean", builderRepo, imgs.clean},
		{"independent", independentRepo, imgs.independent},
		{"base", baseRepo, imgs.base},
	} {
		if refs[p.name], err = push(ctx, reg.Addr+"/"+p.repo, p.img); err != nil {
			return err
		}
		fmt.Printf("  %-12s %s\n", p.name, refs[p.name])
	}

	say("Signing them with the real cosign CLI (a key pair), each signature logged in the Rekor v2 log")
	if err := d.sigstoreSetUp(ctx, rekor); err != nil {
		return err
	}
	if err := d.sign(ctx, refs["clean"], refs["independent"], refs["base"]); err != nil {
		return err
	}

	if err := copyExample(example, d.work, reg.Addr); err != nil {
		return err
	}
	files := []string{"buildguard.yaml", "Dockerfile"}
	say("The example names its images by tag: the offline check refuses them (exit 1)")
	if err := d.bg(ctx, 1, append([]string{"pin", "--check"}, files...)...); err != nil {
		return err
	}
	say("Pin them to the digests the registry serves")
	if err := d.bg(ctx, 0, append([]string{"pin", "--write"}, files...)...); err != nil {
		return err
	}

	trustFlags := []string{"--trusted-root", "../sigstore/trusted_root.json", "--key", "../sigstore/cosign.pub"}
	clean := filepath.Join(evidence, "1-clean")
	say("1. The guarded build: clean builder and independent builder. Expect PASS (exit 0)")
	if err := d.bg(ctx, 0, append([]string{"build", "--out", clean}, trustFlags...)...); err != nil {
		return err
	}
	if err := checkPass(clean, digestOf(refs["clean"]), digestOf(refs["independent"])); err != nil {
		return err
	}

	say("2. The builder vendor's pipeline is compromised: it publishes a go-builder:1.26 whose go appends a payload to every binary it builds, signed with the vendor's key as always")
	if refs["compromised"], err = push(ctx, reg.Addr+"/"+builderRepo, imgs.compromised); err != nil {
		return err
	}
	fmt.Printf("  %-12s %s\n", "compromised", refs["compromised"])
	if err := d.sign(ctx, refs["compromised"]); err != nil {
		return err
	}
	say("   The pin holds it off until someone (or a bot) moves the pin to the vendor's new release")
	if err := d.bg(ctx, 0, append([]string{"pin", "--update", "--write"}, files...)...); err != nil {
		return err
	}
	compromised := filepath.Join(evidence, "2-compromised")
	say("   The guarded build again: signed, pinned and reproducible, but the independent builder disagrees. Expect FAIL (exit 1)")
	out, err := d.bgOut(ctx, 1, append([]string{"build", "--out", compromised}, trustFlags...)...)
	if err != nil {
		return err
	}
	cd, id := digestOf(refs["compromised"]), digestOf(refs["independent"])
	if err := checkFail(compromised, out, cd, id); err != nil {
		return err
	}

	fmt.Printf("\ndemo: both decisions were as expected, in %s.\n", time.Since(began).Round(time.Second))
	fmt.Printf("  1. clean builder + independent builder:       PASS (exit 0)\n")
	fmt.Printf("  2. compromised builder + independent builder: FAIL (exit 1), diverse-agree:\n")
	fmt.Printf("       compromised builder %s\n       independent builder %s\n", cd, id)
	fmt.Printf("Evidence, kept in %s (open report.html in a browser):\n", evidence)
	for _, dir := range []string{clean, compromised} {
		fmt.Printf("  %s\n  %s\n  %s\n", filepath.Join(dir, "report.html"), filepath.Join(dir, "report.json"), filepath.Join(dir, "decision.md"))
	}
	fmt.Printf("Nothing was published: the example sets no publish.image.\n")
	fmt.Printf("The registry and the Rekor log are stopped and the rest of the demo's files removed; remove the evidence with: rm -rf %s\n", evidence)
	return nil
}

// preflight fails early, naming every missing tool with how to get it.
func preflight() error {
	var missing []string
	for _, tool := range []string{"docker-registry", "posix", "cosign", "busybox"} {
		if _, err := harness.Lookup(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", tool, harness.InstallHint(tool)))
		}
	}
	_, crunErr := harness.Lookup("crun")
	_, runcErr := harness.Lookup("runc")
	if crunErr != nil && runcErr != nil {
		missing = append(missing, "crun or runc ("+harness.InstallHint("crun")+")")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the demo needs: %s; `sudo bash .ci/run` installs them all", strings.Join(missing, ", "))
	}
	if os.Geteuid() != 0 {
		return errors.New("the hermetic builds run through crun or runc as root: run the demo as root")
	}
	return nil
}

type images struct{ clean, independent, compromised, base v1.Image }

// makeImages makes the builder images from the host's Go toolchain and
// static busybox, and the base image.
func makeImages(dir string) (*images, error) {
	goroot, err := testimage.HostGoRoot()
	if err != nil {
		return nil, err
	}
	bbPath, err := harness.Lookup("busybox")
	if err != nil {
		return nil, err
	}
	bb, err := testimage.StaticBusybox(bbPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("Making builder images from this machine's Go toolchain (%s) and Debian's static busybox (%s)", goroot, bbPath))
	tc, err := testimage.NewToolchain(goroot, dir)
	if err != nil {
		return nil, err
	}
	vendor := func(name string) map[string]string {
		return map[string]string{"org.opencontainers.image.vendor": name, "org.opencontainers.image.title": tc.Version + " builder"}
	}
	clean := testimage.GoBuilder{Toolchain: tc, Busybox: bb, Labels: vendor("buildguard demo: the usual vendor"),
		Files: map[string]string{"etc/vendor": "the usual vendor\n"}}
	independent := testimage.GoBuilder{Toolchain: tc, Busybox: bb, Labels: vendor("buildguard demo: another vendor"),
		Applets: []string{"sh", "ash", "cat", "ls", "env", "printf", "true", "false", "wc", "od"},
		Files:   map[string]string{"etc/vendor": "another vendor\n"}}
	compromised := clean
	compromised.Payload = payload
	var imgs images
	for _, m := range []struct {
		dst  *v1.Image
		b    testimage.GoBuilder
		what string
	}{
		{&imgs.clean, clean, "clean        busybox and " + tc.Version + ", as the usual vendor ships it"},
		{&imgs.independent, independent, "independent  another applet set and vendor marker, the same " + tc.Version + ": it shows the mechanism only"},
		{&imgs.compromised, compromised, "compromised  the clean image plus a layer whose go runs the real go, then appends a payload to the binary"},
	} {
		if *m.dst, err = m.b.Image(); err != nil {
			return nil, err
		}
		fmt.Printf("  %s\n", m.what)
	}
	base, err := testimage.Files(map[string]string{"etc/os-release": "NAME=\"buildguard demo static base\"\n"})
	if err != nil {
		return nil, err
	}
	imgs.base = base
	return &imgs, nil
}

// push pushes img to ref and returns ref@digest.
func push(ctx context.Context, ref string, img v1.Image) (string, error) {
	d, err := testimage.Push(ctx, ref, img)
	if err != nil {
		return "", err
	}
	return ref + "@" + d, nil
}

// digestOf returns the digest of a ref@digest.
func digestOf(ref string) string {
	_, d, _ := strings.Cut(ref, "@")
	return d
}

// sigstoreSetUp makes a trusted root and a signing config for the Rekor v2
// log, and a cosign key pair, with the real cosign CLI.
func (d *demo) sigstoreSetUp(ctx context.Context, rekor *harness.Rekor) error {
	if err := os.WriteFile(filepath.Join(d.sigstore, "rekor.pub"), rekor.PublicKeyPEM, 0o600); err != nil {
		return err
	}
	start := "start-time=2024-01-01T00:00:00Z"
	for _, args := range [][]string{
		{"trusted-root", "create", "--rekor=url=" + rekor.URL + ",public-key=rekor.pub," + start + ",origin=" + rekor.Origin, "--out", "trusted_root.json"},
		{"signing-config", "create", "--rekor=url=" + rekor.URL + ",api-version=2," + start + ",operator=buildguard-demo", "--rekor-config=ANY", "--out", "signing_config.json"},
		{"generate-key-pair"},
	} {
		if _, err := d.cmd(ctx, d.sigstore, d.cosign, 0, args...); err != nil {
			return err
		}
	}
	return nil
}

// sign signs refs with the key pair, logging each signature in the log.
func (d *demo) sign(ctx context.Context, refs ...string) error {
	args := append([]string{"sign", "--yes", "--allow-http-registry", "--key", "cosign.key",
		"--signing-config", "signing_config.json", "--trusted-root", "trusted_root.json"}, refs...)
	_, err := d.cmd(ctx, d.sigstore, d.cosign, 0, args...)
	return err
}

// bg runs buildguard in the example's copy, showing the command and its
// output, and checks its exit code.
func (d *demo) bg(ctx context.Context, want int, args ...string) error {
	_, err := d.cmd(ctx, d.work, d.bin, want, args...)
	return err
}

// bgOut is bg that also returns the output.
func (d *demo) bgOut(ctx context.Context, want int, args ...string) (string, error) {
	return d.cmd(ctx, d.work, d.bin, want, args...)
}

// cmd runs bin in dir, shows the command and its output indented, and
// checks its exit code. On an interrupt the command gets SIGINT first, so
// that buildguard stops its containers.
func (d *demo) cmd(ctx context.Context, dir, bin string, want int, args ...string) (string, error) {
	line := filepath.Base(bin) + " " + strings.Join(args, " ")
	fmt.Printf("$ %s\n", line)
	c := exec.CommandContext(ctx, bin, args...)
	c.Dir, c.Env = dir, d.env
	c.Cancel = func() error { return c.Process.Signal(os.Interrupt) }
	c.WaitDelay = 30 * time.Second
	var out bytes.Buffer
	w := io.MultiWriter(&out, &indent{w: os.Stdout, start: true})
	c.Stdout, c.Stderr = w, w
	err := c.Run()
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		return out.String(), fmt.Errorf("%s: %w", line, err)
	}
	if !bytes.HasSuffix(out.Bytes(), []byte("\n")) && out.Len() > 0 {
		fmt.Println()
	}
	fmt.Printf("  (exit %d)\n", got)
	if ctx.Err() != nil {
		return out.String(), ctx.Err()
	}
	if got != want {
		return out.String(), fmt.Errorf("%s exited %d, want %d", line, got, want)
	}
	return out.String(), nil
}

// indent writes what it is given with two spaces before each line, as it
// comes, so that a long build shows its progress.
type indent struct {
	w     io.Writer
	start bool // at the start of a line
}

func (i *indent) Write(p []byte) (int, error) {
	var b bytes.Buffer
	for _, c := range p {
		if i.start {
			b.WriteString("  ")
		}
		b.WriteByte(c)
		i.start = c == '\n'
	}
	if _, err := i.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// report is the part of report.json the demo checks.
type report struct {
	Decision   string `json:"decision"`
	Violations []struct {
		Rule    string `json:"rule"`
		Message string `json:"message"`
	} `json:"violations"`
	Images []struct {
		Role       string            `json:"role"`
		Ref        string            `json:"ref"`
		Verified   bool              `json:"verified"`
		Signers    []json.RawMessage `json:"signers"`
		LogEntries []json.RawMessage `json:"logEntries"`
	} `json:"images"`
	Runs []struct {
		Index        int    `json:"index"`
		Builder      string `json:"builder"`
		Diverse      bool   `json:"diverse"`
		OutputDigest string `json:"outputDigest"`
	} `json:"runs"`
}

func readReport(dir string) (*report, error) {
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, "report.json"), err)
	}
	return &r, nil
}

// checkVerified checks that every image (builder, diverse, base) was
// verified: signed by the key and logged in the transparency log.
func (r *report) checkVerified() error {
	if len(r.Images) != 3 {
		return fmt.Errorf("report.json has %d images, want builder, diverse and base", len(r.Images))
	}
	for _, im := range r.Images {
		if !im.Verified || len(im.Signers) == 0 || len(im.LogEntries) == 0 {
			return fmt.Errorf("report.json: %s image %s is not verified with a signer and a log entry", im.Role, im.Ref)
		}
	}
	return nil
}

// checkRuns checks that the report has the two runs of builder and one of
// diverse, in that order.
func (r *report) checkRuns(builder, diverse string) error {
	want := []string{builder, builder, diverse}
	if len(r.Runs) != len(want) {
		return fmt.Errorf("report.json has %d runs, want %d", len(r.Runs), len(want))
	}
	for i, run := range r.Runs {
		if run.Builder != want[i] || run.Diverse != (i == 2) {
			return fmt.Errorf("report.json run %d was built by %s (diverse %t), want %s", run.Index, run.Builder, run.Diverse, want[i])
		}
	}
	return nil
}

// checkPass checks the first build's report: pass, no violation, the
// three runs agreeing.
func checkPass(dir, builder, diverse string) error {
	r, err := readReport(dir)
	if err != nil {
		return err
	}
	if r.Decision != "pass" || len(r.Violations) != 0 {
		return fmt.Errorf("report.json says %s with %d violation(s), want pass with none", r.Decision, len(r.Violations))
	}
	if err := r.checkVerified(); err != nil {
		return err
	}
	if err := r.checkRuns(builder, diverse); err != nil {
		return err
	}
	for _, run := range r.Runs {
		if run.OutputDigest == "" || run.OutputDigest != r.Runs[0].OutputDigest {
			return fmt.Errorf("report.json: run %d made %q, run 1 %q", run.Index, run.OutputDigest, r.Runs[0].OutputDigest)
		}
	}
	fmt.Printf("  report.json: decision pass; all three images verified (key and log entry); all three runs made %s\n", r.Runs[0].OutputDigest)
	return nil
}

// checkFail checks the second build: fail, and only because the
// independent builder disagrees, named with both digests in the report and
// in what buildguard printed; the compromised binary carries the payload
// and the independent builder's does not.
func checkFail(dir, out, compromised, independent string) error {
	r, err := readReport(dir)
	if err != nil {
		return err
	}
	if r.Decision != "fail" || len(r.Violations) != 1 || r.Violations[0].Rule != "diverse-agree" {
		return fmt.Errorf("report.json says %s with %v, want fail with the one violation diverse-agree", r.Decision, r.Violations)
	}
	msg := r.Violations[0].Message
	for _, d := range []string{compromised, independent} {
		if !strings.Contains(msg, d) || !strings.Contains(out, d) {
			return fmt.Errorf("the diverse-agree violation does not name builder %s: %s", d, msg)
		}
	}
	if err := r.checkVerified(); err != nil {
		return err
	}
	if err := r.checkRuns(compromised, independent); err != nil {
		return err
	}
	if r.Runs[0].OutputDigest != r.Runs[1].OutputDigest {
		return errors.New("the compromised builder's two runs differ: the demo expects a reproducible compromise")
	}
	for _, c := range []struct {
		run     int
		payload bool
	}{{1, true}, {3, false}} {
		bin, err := os.ReadFile(filepath.Join(dir, "runs", fmt.Sprintf("run-%d", c.run), "out", "hello"))
		if err != nil {
			return err
		}
		if bytes.HasSuffix(bin, []byte(payload)) != c.payload {
			return fmt.Errorf("run %d's hello: payload present is %t, want %t", c.run, !c.payload, c.payload)
		}
	}
	fmt.Printf("  report.json: decision fail; all three images verified, runs 1 and 2 agree (reproducible); the one violation is diverse-agree, naming both builders\n")
	fmt.Printf("  runs/run-1/out/hello (compromised builder) ends with the payload %q; runs/run-3/out/hello (independent builder) does not\n", strings.TrimSpace(payload))
	return nil
}

func say(msg string) { fmt.Printf("\n== %s\n", msg) }

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
