// Command ddc builds buildguard's diverse double-compiling chain: a Go
// toolchain bootstrapped from GCC's gccgo, release by release (gccgo-12 →
// go1.20.14 → go1.22.12 → go1.24.6 → go1.26.8), each release's make.bash a
// guarded build (`buildguard build`) in a builder image pinned by digest,
// and compares the final toolchain, file by file, with the official
// release. It is the first half of `make demo-ddc`; docs/demo.md describes
// it.
//
// Each stage is cached under --cache by its key (internal/ddc: the digest
// of its buildguard.yaml, which pins the builder image and the source
// zip, and its script), so a second run rebuilds nothing. The evidence
// goes to --out: chain.json (each stage's key, builder digest, source and
// decision), stages/N-goX.Y.Z/ (each stage's buildguard evidence:
// report.json, provenance.json, vsa.json, SBOMs, the build log),
// comparison.json (the final toolchain against the official one, with
// `buildguard diff`'s explanation of any difference), lineage.json (the
// SLSA provenance predicate of a builder image holding the toolchain,
// internal/ddc.Lineage, for cosign attest), timings.json, and go, a link
// to the bootstrapped GOROOT. internal/ddc.Lineage makes, from
// that directory, the provenance the demo attests on a builder image that
// holds the toolchain.
//
// --stages N builds the first N stages only and compares nothing: CI builds
// stage 1 (gccgo-12 → go1.20.14, e2e TestDDCFirstStage), which fits its
// time where the whole chain does not.
package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/internal/ddc"
	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/releasekit"
	"github.com/buildguard/buildguard/internal/rootless"
	"github.com/buildguard/buildguard/internal/testimage"
)

func main() {
	bin := flag.String("buildguard", "bin/buildguard", "the buildguard binary to run")
	cache := flag.String("cache", defaultCache(), "where the chain's stages, root file systems and zips are kept between runs")
	out := flag.String("out", "ddc-evidence", "the evidence directory (written anew)")
	stages := flag.Int("stages", len(ddc.Chain), fmt.Sprintf("build the first N stages only (1 to %d): fewer than all builds an intermediate release and compares nothing (CI builds stage 1)", len(ddc.Chain)))
	flag.Parse()
	if *stages < 1 || *stages > len(ddc.Chain) {
		fmt.Fprintf(os.Stderr, "ddc: --stages %d: the chain has stages 1 to %d\n", *stages, len(ddc.Chain))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *bin, *cache, *out, *stages)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted {
		fmt.Fprintf(os.Stderr, "\nddc: interrupted; the stages built so far are kept in %s (%v)\n", *cache, err)
		os.Exit(1)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nddc: FAILED: %v\n", err)
		os.Exit(1)
	}
}

// defaultCache is $XDG_CACHE_HOME/buildguard-ddc, else
// ~/.cache/buildguard-ddc.
func defaultCache() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "buildguard-ddc")
	}
	return ".buildguard-ddc"
}

// chain holds what the steps share.
type chain struct {
	bin, cache, out string
	tmp             string // under cache (so a stage's evidence is renamed into place), removed at the end
	env             []string
	run             *releasekit.Runner
	reg             *harness.Registry // started when a stage has to be built
}

// Timing is one line of timings.json.
type Timing struct {
	Step    string  `json:"step"`
	Seconds float64 `json:"seconds"`
	Cached  bool    `json:"cached"`
}

func run(ctx context.Context, bin, cache, out string, stages int) (err error) {
	began := time.Now()
	c := &chain{}
	if c.bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	if c.cache, err = filepath.Abs(cache); err != nil {
		return err
	}
	if c.out, err = filepath.Abs(out); err != nil {
		return err
	}
	if err := ddc.CheckChain(ddc.Chain, ddc.GccgoImplements); err != nil {
		return err
	}
	if err := canRunAs(os.Geteuid()); err != nil {
		return err
	}
	var missing []string
	for _, tool := range []string{"mmdebstrap", "docker-registry"} {
		if _, err := harness.Lookup(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the chain needs %s: `sudo bash .ci/run` installs them (apt-get install -y mmdebstrap docker-registry)", strings.Join(missing, " and "))
	}
	for _, d := range []string{c.cache, filepath.Join(c.cache, "stages"), filepath.Join(c.cache, "debian"), filepath.Join(c.cache, "zips")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(c.out); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(c.out, "stages"), 0o755); err != nil {
		return err
	}
	if c.tmp, err = os.MkdirTemp(c.cache, "tmp-"); err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(c.tmp); rerr != nil && err == nil {
			err = fmt.Errorf("removing %s: %w", c.tmp, rerr)
		}
	}()
	if c.env, err = releasekit.ToolEnv(c.tmp); err != nil {
		return err
	}
	c.run = &releasekit.Runner{Env: c.env}
	defer func() {
		// Run as an unprivileged user, the builds' rootfs cache under
		// c.tmp holds files of the user's subordinate ids: only
		// buildguard clean, in the builds' user namespace, can remove
		// them (before the RemoveAll above).
		q := &releasekit.Runner{Env: c.env, Quiet: true}
		if _, cerr := q.Run(context.WithoutCancel(ctx), c.tmp, 0, c.bin, "clean"); cerr != nil && err == nil {
			err = cerr
		}
	}()
	defer func() {
		if c.reg != nil {
			c.reg.Stop()
		}
	}()

	var timings []Timing
	step := func(name string, cached bool, since time.Time) {
		d := time.Since(since)
		timings = append(timings, Timing{Step: name, Seconds: d.Round(100 * time.Millisecond).Seconds(), Cached: cached})
		fmt.Printf("  %s: %s%s\n", name, d.Round(time.Second), map[bool]string{true: " (cached)"}[cached])
	}

	say("The root file systems: Debian bookworm by mmdebstrap, with gccgo-12 (stage 1) and without (later stages)")
	var debTars [2]string
	for i, d := range []ddc.Debian{ddc.GccgoDebian, ddc.BaseDebian} {
		t := time.Now()
		var cached bool
		if debTars[i], cached, err = c.debian(ctx, d); err != nil {
			return err
		}
		step("debian "+strings.Join(d.Packages, ","), cached, t)
	}

	var records []ddc.StageRecord
	var goroot, lastKey string
	for _, s := range ddc.Plan(ddc.Chain)[:stages] {
		t := time.Now()
		var layers []v1.Layer
		var parts []string
		deb, debian := debTars[1], ddc.BaseDebian
		if s.Bootstrap == ddc.Gccgo {
			deb, debian = debTars[0], ddc.GccgoDebian
		}
		l, ld, err := fileLayer(deb)
		if err != nil {
			return err
		}
		layers = append(layers, l)
		parts = append(parts, fmt.Sprintf("debian %s (mmdebstrap %s), layer %s", debian.Suite, strings.Join(debian.Args("OUT.tar"), " "), ld))
		env := []string{"PATH=" + ddc.DebianPath}
		if goroot != "" {
			tc := filepath.Join(c.cache, "stages", lastKey, "toolchain.tar")
			if _, err := os.Stat(tc); err != nil {
				if err := testimage.WriteGoRoot(goroot, tc+".tmp"); err != nil {
					return err
				}
				if err := os.Rename(tc+".tmp", tc); err != nil {
					return err
				}
			}
			l, ld, err := fileLayer(tc)
			if err != nil {
				return err
			}
			layers = append(layers, l)
			parts = append(parts, fmt.Sprintf("%s at %s, built by stage %d (key %s), layer %s", s.Bootstrap, testimage.GoRoot, s.Index-1, lastKey, ld))
			env = []string{"PATH=" + testimage.GoRoot + "/bin:" + ddc.DebianPath}
		}
		img, err := testimage.Image(env, map[string]string{
			"org.opencontainers.image.title": fmt.Sprintf("buildguard ddc stage %d builder: %s", s.Index, s.Bootstrap),
		}, layers...)
		if err != nil {
			return err
		}
		dg, err := img.Digest()
		if err != nil {
			return err
		}
		s.BuilderDigest = dg.String()
		key := s.Key()
		say(fmt.Sprintf("Stage %d: %s built by %s, in builder %s (key %s)", s.Index, s.Release.Version, s.Bootstrap, s.BuilderDigest, key[:16]))
		dir := filepath.Join(c.cache, "stages", key)
		cached := true
		if _, err := os.Stat(filepath.Join(dir, "done")); err != nil {
			cached = false
			if err := c.build(ctx, s, img, dir); err != nil {
				return err
			}
		}
		ev := filepath.Join(dir, "evidence")
		r, err := releasekit.ReadReport(ev)
		if err != nil {
			return err
		}
		if r.Decision != "pass" {
			return fmt.Errorf("stage %d's cached evidence says %s: remove %s and run again", s.Index, r.Decision, dir)
		}
		name := fmt.Sprintf("%d-%s", s.Index, s.Release.Version)
		if err := copyEvidence(ev, filepath.Join(c.out, "stages", name)); err != nil {
			return err
		}
		records = append(records, ddc.StageRecord{Index: s.Index, Version: s.Release.Version, Bootstrap: s.Bootstrap, Key: key,
			Builder: s.BuilderDigest, BuilderParts: parts, Source: ddc.ZipURL(s.Release.Version), SourceSHA256: s.Release.SHA256,
			Decision: r.Decision, Evidence: "stages/" + name})
		goroot, lastKey = filepath.Join(ev, "runs", "run-1", "out", "go"), key
		step(fmt.Sprintf("stage %d %s", s.Index, s.Release.Version), cached, t)
	}
	if err := writeJSON(filepath.Join(c.out, "chain.json"), ddc.ChainRecord{APIVersion: ddc.ChainAPIVersion, Root: ddc.Gccgo, Stages: records}); err != nil {
		return err
	}
	if err := os.Symlink(goroot, filepath.Join(c.out, "go")); err != nil {
		return err
	}

	if stages < len(ddc.Chain) {
		last := ddc.Chain[stages-1]
		timings = append(timings, Timing{Step: "total", Seconds: time.Since(began).Round(100 * time.Millisecond).Seconds()})
		if err := writeJSON(filepath.Join(c.out, "timings.json"), timings); err != nil {
			return err
		}
		fmt.Printf("\nddc: stages 1 to %d (%s → %s) are built, in %s; %s is not a release the chain compares (--stages %d of %d).\n",
			stages, ddc.Gccgo, last.Version, time.Since(began).Round(time.Second), last.Version, stages, len(ddc.Chain))
		fmt.Printf("Evidence in %s: chain.json, stages/*/report.json, timings.json; the toolchain: %s\n", c.out, goroot)
		return nil
	}
	final := ddc.Chain[len(ddc.Chain)-1]
	say(fmt.Sprintf("Comparing the bootstrapped %s with the official one (the toolchain module zip), file by file: %s", final.Version, strings.Join(ddc.CompareDirs, ", ")))
	t := time.Now()
	identical, err := c.compare(ctx, final, goroot, lastKey)
	if err != nil {
		return err
	}
	step("comparison", false, t)
	// The lineage of any builder image made from the toolchain, for
	// cosign attest --type slsaprovenance1 --predicate lineage.json.
	lineage, err := ddc.Lineage(c.out)
	if err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(c.out, "lineage.json"), lineage); err != nil {
		return err
	}
	timings = append(timings, Timing{Step: "total", Seconds: time.Since(began).Round(100 * time.Millisecond).Seconds()})
	if err := writeJSON(filepath.Join(c.out, "timings.json"), timings); err != nil {
		return err
	}
	verdict := "BIT-IDENTICAL to"
	if !identical {
		verdict = "DIFFERENT from"
	}
	fmt.Printf("\nddc: the chain %s → %s is built, in %s; the bootstrapped %s is %s the official release.\n",
		ddc.Gccgo, final.Version, time.Since(began).Round(time.Second), final.Version, verdict)
	fmt.Printf("Evidence in %s: chain.json, comparison.json, lineage.json, stages/*/report.json, timings.json; the toolchain: %s\n", c.out, goroot)
	if !identical {
		return fmt.Errorf("the bootstrapped %s differs from the official one: see %s", final.Version, filepath.Join(c.out, "comparison.json"))
	}
	return nil
}

// fileLayer is the image layer of a tar file and its digest.
func fileLayer(tar string) (v1.Layer, v1.Hash, error) {
	l, err := testimage.FileLayer(tar)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	d, err := l.Digest()
	return l, d, err
}

// canRunAs says whether the chain can run as uid. Root can. Another user
// needs a subordinate id range and newuidmap: mmdebstrap then makes the
// root file systems in a user namespace of its own (its unshare mode,
// which gives the same tar as root: measured), and buildguard builds
// rootless with the image's owners kept.
func canRunAs(uid int) error {
	if uid == 0 {
		return nil
	}
	p, err := rootless.Decide()
	if err != nil {
		return err
	}
	if p.Mode != builder.IDMapRanged {
		// p.Why says what is missing and how to add it.
		return fmt.Errorf("the chain needs root or a subordinate id range, since mmdebstrap and the stages' builds map the Debian images' owners into a user namespace: %s; or run it as root (sudo make demo-ddc)", p.Why)
	}
	return nil
}

// debian returns the cached root file system tar of d, made by mmdebstrap
// when missing.
func (c *chain) debian(ctx context.Context, d ddc.Debian) (string, bool, error) {
	p := filepath.Join(c.cache, "debian", "debian-"+d.Key()+".tar")
	if _, err := os.Stat(p); err == nil {
		fmt.Printf("  %s (cached)\n", p)
		return p, true, nil
	}
	mm, err := harness.Lookup("mmdebstrap")
	if err != nil {
		return "", false, err
	}
	env := append(os.Environ(), "SOURCE_DATE_EPOCH="+ddc.DebianEpoch)
	r := &releasekit.Runner{Env: env}
	// mmdebstrap picks its output format by the name's extension: the
	// partial file ends in .tar too.
	partial := strings.TrimSuffix(p, ".tar") + ".partial.tar"
	if _, err := r.Run(ctx, c.tmp, 0, mm, d.Args(partial)...); err != nil {
		return "", false, fmt.Errorf("mmdebstrap (it needs the Debian archive, %s): %w", d.Mirror, err)
	}
	return p, false, os.Rename(partial, p)
}

// build runs stage s as a guarded build and keeps its evidence in dir.
func (c *chain) build(ctx context.Context, s ddc.Stage, img v1.Image, dir string) error {
	if c.reg == nil {
		reg, err := harness.StartRegistry(ctx, filepath.Join(c.tmp, "registry"))
		if err != nil {
			return err
		}
		c.reg = reg
	}
	ref, err := releasekit.Push(ctx, c.reg.Addr+"/"+s.Repository()+":"+s.Release.Version, img)
	if err != nil {
		return err
	}
	fmt.Printf("  pushed %s\n", ref)
	src := filepath.Join(c.tmp, fmt.Sprintf("stage-%d", s.Index))
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "buildguard.yaml"), s.Config(c.reg.Addr), 0o644); err != nil { //nolint:gosec // our own directory
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "stage.sh"), []byte(ddc.Script), 0o755); err != nil { //nolint:gosec // a script the build runs
		return err
	}
	ev := filepath.Join(c.tmp, fmt.Sprintf("evidence-%d", s.Index))
	if _, err := c.run.Run(ctx, src, 0, c.bin, "build", "--out", ev); err != nil {
		// Kept apart from the stages that passed, and out of the
		// temporary directory, for the reader.
		failed := filepath.Join(c.cache, "failed", fmt.Sprintf("stage-%d-%s", s.Index, s.Release.Version))
		if rerr := os.RemoveAll(failed); rerr != nil {
			return errors.Join(err, rerr)
		}
		if rerr := os.MkdirAll(filepath.Dir(failed), 0o755); rerr != nil {
			return errors.Join(err, rerr)
		}
		if rerr := os.Rename(ev, failed); rerr != nil {
			return errors.Join(err, rerr)
		}
		return fmt.Errorf("stage %d (%s built by %s): %w; its evidence (logs/run-1.log, decision.md) is in %s", s.Index, s.Release.Version, s.Bootstrap, err, failed)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Rename(ev, filepath.Join(dir, "evidence")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "done"), []byte(s.Key()+"\n"), 0o644) //nolint:gosec // a marker
}

// compare compares the bootstrapped GOROOT with the official release
// (its toolchain module zip, fetched and checked here) and writes
// comparison.json, with `buildguard diff`'s explanation when they differ.
func (c *chain) compare(ctx context.Context, rel ddc.Release, goroot, key string) (bool, error) {
	official := filepath.Join(c.cache, "official-"+rel.SHA256[:16])
	if _, err := os.Stat(filepath.Join(official, "VERSION")); err != nil {
		if err := c.unpackOfficial(ctx, rel, official); err != nil {
			return false, err
		}
	}
	files, extra, identical, err := ddc.Compare(goroot, official, ddc.CompareDirs)
	if err != nil {
		return false, err
	}
	cmp := ddc.Comparison{APIVersion: ddc.ChainAPIVersion, Release: rel.Version,
		Official:     fmt.Sprintf("%s (sha256 %s): %s", ddc.ModulePrefix(rel.Version), rel.SHA256, strings.Join(ddc.CompareDirs, ", ")),
		Bootstrapped: fmt.Sprintf("the chain's stage %d (key %s)", len(ddc.Chain), key),
		Dirs:         ddc.CompareDirs, Identical: identical, Files: files, NotShipped: extra}
	// buildguard diff explains two trees: the files the distribution
	// ships, from each.
	a, b := filepath.Join(c.tmp, "compare", "bootstrapped"), filepath.Join(c.tmp, "compare", "official")
	for _, f := range files {
		for _, p := range []struct{ from, to string }{{goroot, a}, {official, b}} {
			from := filepath.Join(p.from, filepath.FromSlash(f.Path))
			if _, err := os.Stat(from); errors.Is(err, os.ErrNotExist) {
				continue
			}
			to := filepath.Join(p.to, filepath.FromSlash(f.Path))
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return false, err
			}
			if err := os.Link(from, to); err != nil {
				return false, err
			}
		}
	}
	want := 0
	if !identical {
		want = 1
	}
	out, err := (&releasekit.Runner{Env: c.env, Quiet: true}).Run(ctx, c.tmp, want, c.bin, "diff", a, b)
	if err != nil {
		return false, fmt.Errorf("buildguard diff disagrees with the comparison: %w", err)
	}
	if !identical {
		cmp.Explanation = out
	}
	fmt.Printf("  buildguard diff: %s", out)
	n := 0
	for _, f := range files {
		if f.Identical {
			n++
		}
	}
	fmt.Printf("  %d of the %d files the distribution ships identical\n", n, len(files))
	if len(extra) > 0 {
		fmt.Printf("  made by make.bash but not shipped (cmd/distpack keeps only the tools a build runs), not compared: %s\n", strings.Join(extra, ", "))
	}
	return identical, writeJSON(filepath.Join(c.out, "comparison.json"), cmp)
}

// unpackOfficial fetches the release's toolchain module zip from the
// module proxy, checks its sha256, and unpacks the compared parts into
// dir.
func (c *chain) unpackOfficial(ctx context.Context, rel ddc.Release, dir string) error {
	zp := filepath.Join(c.cache, "zips", rel.Version+".zip")
	if err := fetchChecked(ctx, ddc.ZipURL(rel.Version), rel.SHA256, zp); err != nil {
		return err
	}
	zr, err := zip.OpenReader(zp)
	if err != nil {
		return err
	}
	defer zr.Close()
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	prefix := ddc.ModulePrefix(rel.Version) + "/"
	for _, f := range zr.File {
		rest, ok := strings.CutPrefix(f.Name, prefix)
		if !ok || !f.Mode().IsRegular() {
			continue
		}
		keep := rest == "VERSION"
		for _, d := range ddc.CompareDirs {
			keep = keep || strings.HasPrefix(rest, d+"/")
		}
		if !keep || !filepath.IsLocal(rest) || path.Clean(rest) != rest {
			continue
		}
		if err := unzipFile(f, filepath.Join(tmp, filepath.FromSlash(rest))); err != nil {
			return err
		}
	}
	return os.Rename(tmp, dir)
}

func unzipFile(f *zip.File, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	r, err := f.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, f.Mode().Perm()) //nolint:gosec // a local name, checked above
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, io.LimitReader(r, 1<<30)); err != nil {
		return errors.Join(err, w.Close())
	}
	return w.Close()
}

// fetchChecked downloads url to path unless path is there, and checks its
// sha256 either way.
func fetchChecked(ctx context.Context, url, sum, path string) error {
	if _, err := os.Stat(path); err != nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("fetching %s: %w", url, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("fetching %s: %s", url, resp.Status)
		}
		f, err := os.Create(path + ".tmp")
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, io.LimitReader(resp.Body, 1<<30)); err != nil {
			return fmt.Errorf("fetching %s: %w", url, errors.Join(err, f.Close()))
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	d, _, err := v1.SHA256(f)
	if err != nil {
		return err
	}
	if got := d.Hex; got != sum {
		return fmt.Errorf("%s (from %s) has sha256 %s, want %s: remove it and run again", path, url, got, sum)
	}
	return nil
}

// evidenceFiles are what chain evidence keeps of each stage's buildguard
// evidence (its output tree stays in the cache).
var evidenceFiles = []string{"report.json", "decision.md", "provenance.json", "vsa.json", "sbom.spdx.json", "sbom.cdx.json", "timings.json", "logs/run-1.log"}

func copyEvidence(from, to string) error {
	for _, f := range evidenceFiles {
		data, err := os.ReadFile(filepath.Join(from, f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		p := filepath.Join(to, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil { //nolint:gosec // evidence, world-readable
			return err
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644) //nolint:gosec // evidence, world-readable
}

func say(msg string) { fmt.Printf("\n== %s\n", msg) }
