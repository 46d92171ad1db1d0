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
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildguard/buildguard/attest"
	"github.com/buildguard/buildguard/internal/ddc"
	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/releasekit"
	"github.com/buildguard/buildguard/internal/testimage"
)

// The repositories of the example's images.
const (
	builderRepo     = "demo/go-builder:1.26"
	independentRepo = "demo/go-builder-independent:1.26"
	baseRepo        = "demo/static:1"
)

// The independent builder's toolchain, when not this machine's (flags).
var independentGoRoot, independentLineage string

// lineagePath is where the independent builder holds the chain.json of
// --independent-lineage, and lineageLabel the label that carries its
// sha256. The lineage itself is an attestation attached to the image
// (ddc.Lineage), which the guarded build verifies.
const (
	lineagePath  = "etc/buildguard-ddc/chain.json"
	lineageLabel = "org.buildguard.ddc.chain.sha256"
)

// payload is what the compromised builder appends to every binary.
const payload = "\n#buildguard-demo-payload: a crypto-miner would start here\n"

func main() {
	bin := flag.String("buildguard", "bin/buildguard", "the buildguard binary to run")
	example := flag.String("example", "examples/hello", "the example directory")
	flag.StringVar(&independentGoRoot, "independent-goroot", "", "the Go tree the independent builder holds instead of this machine's (make demo-ddc: the toolchain bootstrapped from gccgo)")
	flag.StringVar(&independentLineage, "independent-lineage", "", "the evidence directory of the chain that made that tree (make demo-ddc's ddc-evidence): its provenance is attested on the independent builder with cosign, and its chain.json put in the image at "+lineagePath)
	flag.Parse()
	if independentLineage != "" && independentGoRoot == "" {
		fmt.Fprintln(os.Stderr, "demo: --independent-lineage describes --independent-goroot: give both")
		os.Exit(2)
	}
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
	bin  string // buildguard
	tmp  string // removed at the end
	work string // the copy of the example the demo pins and builds
	run  *releasekit.Runner
	sig  *releasekit.Sigstore
}

func run(ctx context.Context, bin, example string) (err error) {
	began := time.Now()
	d := &demo{}
	if d.bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	if err := releasekit.Preflight("the demo"); err != nil {
		return err
	}
	cosign, err := harness.Lookup("cosign")
	if err != nil {
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
	d.work = filepath.Join(d.tmp, "hello")
	env, err := releasekit.ToolEnv(d.tmp)
	if err != nil {
		return err
	}
	d.run = &releasekit.Runner{Env: env}
	defer func() {
		// Run as an unprivileged user, the rootfs cache under d.tmp holds
		// files of the user's subordinate ids: only buildguard clean, in
		// the builds' user namespace, can remove them.
		q := &releasekit.Runner{Env: env, Quiet: true}
		if _, cerr := q.Run(context.WithoutCancel(ctx), d.tmp, 0, d.bin, "clean"); cerr != nil && err == nil {
			err = cerr
		}
	}()

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
		if refs[p.name], err = releasekit.Push(ctx, reg.Addr+"/"+p.repo, p.img); err != nil {
			return err
		}
		fmt.Printf("  %-12s %s\n", p.name, refs[p.name])
	}

	say("Signing them with the real cosign CLI (a key pair), each signature logged in the Rekor v2 log")
	if d.sig, err = releasekit.NewSigstore(ctx, d.run, cosign, filepath.Join(d.tmp, "sigstore"), "buildguard-demo", rekor); err != nil {
		return err
	}
	if err := d.sig.Sign(ctx, refs["clean"], refs["independent"], refs["base"]); err != nil {
		return err
	}
	if imgs.lineage != nil {
		say("Attesting the independent builder's lineage (the chain from gccgo, as SLSA provenance) with cosign, logged in the Rekor v2 log")
		if err := d.sig.Attest(ctx, refs["independent"], "slsaprovenance1", imgs.lineage); err != nil {
			return err
		}
	}

	if _, err := releasekit.CopyExample(example, d.work, reg.Addr); err != nil {
		return err
	}
	if imgs.lineage != nil {
		if err := requireLineage(filepath.Join(d.work, "buildguard.yaml")); err != nil {
			return err
		}
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
	report, err := checkPass(clean, releasekit.DigestOf(refs["clean"]), releasekit.DigestOf(refs["independent"]))
	if err != nil {
		return err
	}
	if imgs.lineage != nil {
		if err := checkLineage(report, refs["independent"]); err != nil {
			return err
		}
	}

	say("2. The builder vendor's pipeline is compromised: it publishes a go-builder:1.26 whose go appends a payload to every binary it builds, signed with the vendor's key as always")
	if refs["compromised"], err = releasekit.Push(ctx, reg.Addr+"/"+builderRepo, imgs.compromised); err != nil {
		return err
	}
	fmt.Printf("  %-12s %s\n", "compromised", refs["compromised"])
	if err := d.sig.Sign(ctx, refs["compromised"]); err != nil {
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
	cd, id := releasekit.DigestOf(refs["compromised"]), releasekit.DigestOf(refs["independent"])
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

type images struct {
	clean, independent, compromised, base v1.Image
	// lineage is the independent builder's provenance predicate
	// (ddc.Lineage), when --independent-lineage is given.
	lineage map[string]any
}

// makeImages makes the builder images from the host's Go toolchain and
// static busybox, and the base image.
func makeImages(dir string) (*images, error) {
	var opts releasekit.BuilderOptions
	if independentGoRoot != "" {
		opts.IndependentGoRoot = independentGoRoot
		if independentLineage != "" {
			data, err := os.ReadFile(filepath.Join(independentLineage, "chain.json"))
			if err != nil {
				return nil, fmt.Errorf("--independent-lineage names the chain's evidence directory: %w", err)
			}
			sum := sha256.Sum256(data)
			opts.IndependentFiles = map[string]string{lineagePath: string(data)}
			opts.IndependentLabels = map[string]string{lineageLabel: hex.EncodeToString(sum[:])}
		}
	}
	b, err := releasekit.MakeGoBuildersWith(dir, "buildguard demo", opts)
	if err != nil {
		return nil, err
	}
	say(fmt.Sprintf("Making builder images from this machine's Go toolchain (%s) and Debian's static busybox (%s)", b.GoRoot, b.Busybox))
	imgs := images{clean: b.Clean, independent: b.Independent}
	if independentLineage != "" {
		bb, err := os.Open(b.Busybox)
		if err != nil {
			return nil, err
		}
		bbSum, _, err := v1.SHA256(bb)
		if cerr := bb.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		busybox := attest.ResourceDescriptor{Name: "busybox", Digest: map[string]string{"sha256": bbSum.Hex},
			Annotations: map[string]any{"role": "image-part", "from": "Debian busybox-static", "path": "/bin/busybox"}}
		if imgs.lineage, err = ddc.Lineage(independentLineage, busybox); err != nil {
			return nil, fmt.Errorf("--independent-lineage: %w", err)
		}
	}
	if imgs.compromised, err = b.Compromised(payload); err != nil {
		return nil, err
	}
	fmt.Printf("  clean        busybox and %s, as the usual vendor ships it\n", b.GoVersion)
	if independentGoRoot != "" {
		fmt.Printf("  independent  another applet set and vendor marker, and %s from %s: a toolchain made another way\n", b.IndependentGoVersion, independentGoRoot)
		if independentLineage != "" {
			fmt.Printf("               its lineage (the chain in %s) attested as SLSA provenance, its chain.json at /%s, sha256 in the label %s\n", independentLineage, lineagePath, lineageLabel)
		}
	} else {
		fmt.Printf("  independent  another applet set and vendor marker, the same %s: it shows the mechanism only\n", b.GoVersion)
	}
	fmt.Printf("  compromised  the clean image plus a layer whose go runs the real go, then appends a payload to the binary\n")
	if imgs.base, err = testimage.Files(map[string]string{"etc/os-release": "NAME=\"buildguard demo static base\"\n"}); err != nil {
		return nil, err
	}
	return &imgs, nil
}

// bg runs buildguard in the example's copy, showing the command and its
// output, and checks its exit code.
func (d *demo) bg(ctx context.Context, want int, args ...string) error {
	_, err := d.run.Run(ctx, d.work, want, d.bin, args...)
	return err
}

// bgOut is bg that also returns the output.
func (d *demo) bgOut(ctx context.Context, want int, args ...string) (string, error) {
	return d.run.Run(ctx, d.work, want, d.bin, args...)
}

// checkVerified checks that every image (builder, diverse, base) was
// verified: signed by the key and logged in the transparency log.
func checkVerified(r *releasekit.Report) error {
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

// lineageRule is the policy rule the demo adds when the independent
// builder has a lineage: the diverse builder must carry verified
// provenance from the ddc chain. The example's buildguard.yaml ends with
// its policy.rules list, so the rule is appended to it.
var lineageRule = fmt.Sprintf(`    # Added by the demo (--independent-lineage): the diverse builder must
    # carry the verified provenance of the chain that bootstrapped its Go.
    - name: diverse-builder-bootstrapped
      expr: "images.exists(i, i.role == 'diverse' && has(i.provenance) && i.provenance.exists(p, p.builderID == '%s'))"
`, ddc.LineageBuilderID)

// requireLineage appends lineageRule to the example's configuration.
func requireLineage(config string) error {
	data, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	if !bytes.HasSuffix(bytes.TrimRight(data, "\n"), []byte("l.startsWith('GPL')))\"")) {
		return fmt.Errorf("%s no longer ends with its policy.rules list: the demo cannot add the rule %q", config, "diverse-builder-bootstrapped")
	}
	say("The example's policy gains a rule: the diverse builder must carry the chain's verified provenance")
	fmt.Print(lineageRule)
	return os.WriteFile(config, append(data, lineageRule...), 0o644) //nolint:gosec // the demo's copy of the example
}

// checkLineage checks that the guarded build verified the independent
// builder's lineage: a provenance by the chain's builder, whose source is
// the final release's source zip. r is the report checkPass read.
func checkLineage(r *releasekit.Report, independent string) error {
	final := ddc.Chain[len(ddc.Chain)-1]
	for _, im := range r.Images {
		if im.Role != "diverse" {
			continue
		}
		for _, p := range im.Provenance {
			if p.BuilderID == ddc.LineageBuilderID && p.SourceURI == ddc.ZipURL(final.Version) {
				fmt.Printf("  the independent builder's lineage verified: provenance by %s from %s\n", p.BuilderID, p.SourceURI)
				return nil
			}
		}
		return fmt.Errorf("report.json: the independent builder %s has no verified provenance by %s (its lineage); it has %+v", im.Ref, ddc.LineageBuilderID, im.Provenance)
	}
	return fmt.Errorf("report.json has no diverse image (%s)", independent)
}

// checkPass checks the first build's report: pass, no violation, the
// three runs agreeing. It returns the report it read.
func checkPass(dir, builder, diverse string) (*releasekit.Report, error) {
	r, err := releasekit.ReadReport(dir)
	if err != nil {
		return nil, err
	}
	if r.Decision != "pass" || len(r.Violations) != 0 {
		return nil, fmt.Errorf("report.json says %s with %d violation(s), want pass with none", r.Decision, len(r.Violations))
	}
	if err := checkVerified(r); err != nil {
		return nil, err
	}
	if err := r.CheckRuns(builder, diverse); err != nil {
		return nil, err
	}
	if err := r.CheckSameOutput(); err != nil {
		return nil, err
	}
	fmt.Printf("  report.json: decision pass; all three images verified (key and log entry); all three runs made %s\n", r.Runs[0].OutputDigest)
	return r, nil
}

// checkFail checks the second build: fail, and only because the
// independent builder disagrees, named with both digests in the report and
// in what buildguard printed; the compromised binary carries the payload
// and the independent builder's does not.
func checkFail(dir, out, compromised, independent string) error {
	r, err := releasekit.ReadReport(dir)
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
	if err := checkVerified(r); err != nil {
		return err
	}
	if err := r.CheckRuns(compromised, independent); err != nil {
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
