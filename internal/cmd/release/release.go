package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/releasekit"
)

// DefaultTarget is the package a release builds: buildguard itself.
const DefaultTarget = "./cmd/buildguard"

// The builder's limits. A cold build of buildguard compiles some 1,900
// packages into a Go build cache on the sandbox's /tmp, a tmpfs charged to
// the build's memory; two builds run side by side.
const (
	fullTimeout  = 90 * time.Minute
	smallTimeout = 20 * time.Minute
	memoryLimit  = "8Gi"
)

// ErrDirty is returned when the work tree has uncommitted changes and
// Options.AllowDirty is not set.
var ErrDirty = errors.New("the work tree has uncommitted changes")

// Options are what a release is made from and where it goes.
type Options struct {
	// Repo is a directory of the git work tree; its HEAD commit is built.
	Repo string
	// Target is the main package to build, "./" and a path relative to
	// the module root: DefaultTarget, or a smaller one to check the same
	// path faster.
	Target string
	// Dist receives the binary, NAME.sha256 and evidence/ (and, with
	// Twice, second/ with the same for the second build). The entries the
	// release writes are replaced.
	Dist string
	// Buildguard is the buildguard binary that guards the build.
	Buildguard string
	// AllowDirty releases HEAD although the work tree has uncommitted
	// changes, which are then not in the release.
	AllowDirty bool
	// Twice runs the guarded build a second time, from a fresh copy of
	// the source and a fresh vendor tree, and requires the same binary.
	Twice bool
	// Timeout is builder.timeout; 0 means fullTimeout for DefaultTarget
	// and smallTimeout otherwise.
	Timeout time.Duration
}

// Validate checks the options before anything runs.
func (o *Options) Validate() error {
	var errs []error
	rel, ok := strings.CutPrefix(o.Target, "./")
	if !ok || rel == "" || path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") || strings.Contains(rel, "...") {
		errs = append(errs, fmt.Errorf("--target: want one package as ./PATH inside the module, such as %s, got %q", DefaultTarget, o.Target))
	}
	if d := filepath.Clean(o.Dist); o.Dist == "" || d == "." || d == "/" || d == ".." {
		errs = append(errs, fmt.Errorf("--dist: want a directory of its own, got %q", o.Dist))
	}
	if o.Buildguard == "" {
		errs = append(errs, errors.New("--buildguard: want the buildguard binary"))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("--build-timeout: want a positive duration, got %s", o.Timeout))
	}
	return errors.Join(errs...)
}

// name is the binary's name: the target's last element.
func (o *Options) name() string { return path.Base(o.Target) }

func (o *Options) timeout() time.Duration {
	switch {
	case o.Timeout > 0:
		return o.Timeout
	case o.Target == DefaultTarget:
		return fullTimeout
	}
	return smallTimeout
}

// Binary is a released binary.
type Binary struct {
	Path     string // in Dist
	SHA256   string // hex
	Evidence string // the evidence directory of its guarded build
}

// Result is what a release made.
type Result struct {
	Commit   string
	Binaries []Binary // one, or two with Twice: byte-identical
}

// release holds what the steps share.
type release struct {
	o        Options
	w        io.Writer
	tmp      string
	run      *releasekit.Runner // tools, with caches under tmp
	goRun    *releasekit.Runner // go and git, with the host's caches, offline
	fetchRun *releasekit.Runner // go mod download: the same, with the module proxy
	src      *source            // the commit
	builders builderRefs
	sig      *releasekit.Sigstore
	verified bool // go mod verify passed
}

type builderRefs struct{ goVersion, clean, independent string }

// Release makes the release that o describes, printing its steps to w.
func Release(ctx context.Context, w io.Writer, o Options) (_ *Result, err error) {
	began := time.Now()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	r := &release{o: o, w: w}
	for _, p := range []*string{&r.o.Repo, &r.o.Dist, &r.o.Buildguard} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(r.o.Buildguard); err != nil {
		return nil, fmt.Errorf("the buildguard binary: %w (make build makes it)", err)
	}
	goEnv := append(os.Environ(), "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	r.fetchRun = &releasekit.Runner{Env: append(slices.Clip(goEnv), "GOFLAGS=-mod=readonly"), Out: w}
	r.goRun = &releasekit.Runner{Env: append(slices.Clip(goEnv), "GOPROXY=off"), Out: w}
	if r.src, err = r.commit(ctx); err != nil {
		return nil, err
	}
	if err := releasekit.Preflight("the release"); err != nil {
		return nil, err
	}
	cosign, err := harness.Lookup("cosign")
	if err != nil {
		return nil, err
	}
	if r.tmp, err = os.MkdirTemp("", "buildguard-release-"); err != nil {
		return nil, err
	}
	defer func() {
		if rerr := os.RemoveAll(r.tmp); rerr != nil && err == nil {
			err = fmt.Errorf("removing %s: %w", r.tmp, rerr)
		}
	}()
	// Every cache and configuration the tools write goes under tmp.
	env, err := releasekit.ToolEnv(r.tmp)
	if err != nil {
		return nil, err
	}
	r.run = &releasekit.Runner{Env: env, Out: w}
	if err := r.cleanDist(); err != nil {
		return nil, err
	}

	r.say("Starting a real OCI registry (docker-registry) and a real Rekor v2 transparency log (rekor-tiles) on loopback")
	reg, err := harness.StartRegistry(ctx, filepath.Join(r.tmp, "registry"))
	if err != nil {
		return nil, err
	}
	defer reg.Stop()
	rekor, err := harness.StartRekor(ctx, filepath.Join(r.tmp, "rekor"))
	if err != nil {
		return nil, err
	}
	defer rekor.Stop()
	fmt.Fprintf(w, "  registry  %s\n  Rekor v2  %s\n", reg.Addr, rekor.URL)

	if err := r.builderImages(ctx, reg.Addr); err != nil {
		return nil, err
	}
	r.say("Signing them with the real cosign CLI (a key pair), each signature logged in the Rekor v2 log")
	if r.sig, err = releasekit.NewSigstore(ctx, r.run, cosign, filepath.Join(r.tmp, "sigstore"), "buildguard-release", rekor); err != nil {
		return nil, err
	}
	if err := r.sig.Sign(ctx, r.builders.clean, r.builders.independent); err != nil {
		return nil, err
	}

	res := &Result{Commit: r.src.commit}
	passes := 1
	if o.Twice {
		passes = 2
	}
	for i := 1; i <= passes; i++ {
		dist := r.o.Dist
		if i == 2 {
			dist = filepath.Join(r.o.Dist, "second")
		}
		b, err := r.pass(ctx, i, dist)
		if err != nil {
			return nil, err
		}
		res.Binaries = append(res.Binaries, *b)
	}
	if len(res.Binaries) == 2 && res.Binaries[0].SHA256 != res.Binaries[1].SHA256 {
		return nil, fmt.Errorf("the two guarded builds made different binaries: %s (sha256 %s) and %s (sha256 %s)",
			res.Binaries[0].Path, res.Binaries[0].SHA256, res.Binaries[1].Path, res.Binaries[1].SHA256)
	}

	fmt.Fprintf(w, "\nrelease: PASS, %s of commit %s, in %s.\n", o.Target, r.src.commit, time.Since(began).Round(time.Second))
	for _, b := range res.Binaries {
		fmt.Fprintf(w, "  %s  sha256 %s\n    evidence %s\n", b.Path, b.SHA256, b.Evidence)
	}
	if len(res.Binaries) == 2 {
		fmt.Fprintf(w, "  the two guarded builds, each from a fresh copy of the source and a fresh vendor tree, made byte-identical binaries\n")
	}
	fmt.Fprintf(w, "dist: %s (open evidence/report.html in a browser)\n", r.o.Dist)
	return res, nil
}

// cleanDist removes what an earlier release wrote to Dist.
func (r *release) cleanDist() error {
	if err := os.MkdirAll(r.o.Dist, 0o755); err != nil {
		return err
	}
	name := r.o.name()
	for _, e := range []string{name, name + ".sha256", "evidence", "buildguard.yaml", "vendor-modules.txt", "second"} {
		if err := os.RemoveAll(filepath.Join(r.o.Dist, e)); err != nil {
			return err
		}
	}
	return nil
}

// builderImages makes the clean and the independent builder images and
// pushes them to the registry at addr.
func (r *release) builderImages(ctx context.Context, addr string) error {
	goroot, err := goEnv(ctx, "GOROOT")
	if err != nil {
		return err
	}
	r.say(fmt.Sprintf("Making the builder images from this machine's Go toolchain (%s) and Debian's static busybox", goroot))
	imgs, err := releasekit.MakeGoBuilders(filepath.Join(r.tmp, "images"), "buildguard release")
	if err != nil {
		return err
	}
	r.builders.goVersion = imgs.GoVersion
	tag := strings.TrimPrefix(imgs.GoVersion, "go")
	r.say("Pushing them, pinned by the digests computed here")
	if r.builders.clean, err = releasekit.Push(ctx, addr+"/release/go-builder:"+tag, imgs.Clean); err != nil {
		return err
	}
	if r.builders.independent, err = releasekit.Push(ctx, addr+"/release/go-builder-independent:"+tag, imgs.Independent); err != nil {
		return err
	}
	fmt.Fprintf(r.w, "  clean        %s\n  independent  %s (another applet set and vendor marker, the same %s: it shows the mechanism only)\n",
		r.builders.clean, r.builders.independent, imgs.GoVersion)
	return nil
}

// pass is one guarded build of the commit, from a fresh copy of the
// source, into dist.
func (r *release) pass(ctx context.Context, i int, dist string) (*Binary, error) {
	began := time.Now()
	work := filepath.Join(r.tmp, fmt.Sprintf("pass-%d", i))
	r.say(fmt.Sprintf("Guarded build %d: the source of commit %s, with its dependencies vendored and verified", i, short(r.src.commit)))
	tree, err := r.prepare(ctx, filepath.Join(work, "source"))
	if err != nil {
		return nil, err
	}
	cfg := r.config(tree)
	cfgPath := filepath.Join(work, "buildguard.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil { //nolint:gosec // the configuration is not secret
		return nil, err
	}
	fmt.Fprintf(r.w, "buildguard.yaml:\n%s", indented(cfg))
	evidence := filepath.Join(dist, "evidence")
	r.say(fmt.Sprintf("Guarded build %d: two runs in the clean builder (run 2 with variations) and one in the independent builder; expect PASS (exit 0)", i))
	if _, err := r.run.Run(ctx, work, 0, r.o.Buildguard, "build", "--out", evidence,
		"--trusted-root", r.sig.TrustedRoot(), "--key", r.sig.PublicKey()); err != nil {
		return nil, fmt.Errorf("%w\n(the evidence is in %s)", err, evidence)
	}
	digest, err := checkEvidence(evidence, r.builders.clean, r.builders.independent, tree)
	if err != nil {
		return nil, fmt.Errorf("%w\n(the evidence is in %s)", err, evidence)
	}
	b, err := r.publish(dist, evidence, cfgPath, tree)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(r.w, "  report.json: decision pass; both builders verified; all three runs made %s\n", digest)
	fmt.Fprintf(r.w, "  provenance.json: source %s, vendor/modules.txt %s (%d modules)\n", tree.digest, tree.modulesTxt, len(tree.modules))
	fmt.Fprintf(r.w, "  guarded build %d took %s\n", i, time.Since(began).Round(time.Second))
	return b, nil
}

// publish copies the control run's binary, the configuration and the
// vendor list into dist and writes the binary's sha256sum file.
func (r *release) publish(dist, evidence, cfgPath string, tree *tree) (*Binary, error) {
	name := r.o.name()
	bin := filepath.Join(dist, name)
	sum, err := copyFile(filepath.Join(evidence, "runs", "run-1", "out", name), bin, 0o755)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(bin+".sha256", []byte(sum+"  "+name+"\n"), 0o644); err != nil { //nolint:gosec // a checksum file is public
		return nil, err
	}
	if _, err := copyFile(cfgPath, filepath.Join(dist, "buildguard.yaml"), 0o644); err != nil {
		return nil, err
	}
	if _, err := copyFile(filepath.Join(tree.dir, "vendor", "modules.txt"), filepath.Join(dist, "vendor-modules.txt"), 0o644); err != nil {
		return nil, err
	}
	return &Binary{Path: bin, SHA256: sum, Evidence: evidence}, nil
}

// copyFile copies src to dst and returns the content's hex SHA-256.
func copyFile(src, dst string, mode os.FileMode) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		_ = out.Close()
		return "", fmt.Errorf("copying %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (r *release) say(msg string) { fmt.Fprintf(r.w, "\n== %s\n", msg) }

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// indented puts two spaces before each line of s.
func indented(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString("  " + line)
	}
	return b.String()
}
