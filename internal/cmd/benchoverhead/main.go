// Command benchoverhead measures the guard's own cost: the wall time of
// `buildguard build` on the example program (examples/hello) minus the time
// spent inside its builds, as a fraction of one build's time, and the wall
// time of the guarded build against reprotest's two-build check of the
// same program, in the same run.
//
// It sets up as the demo does: a real distribution registry and a Rekor v2
// log on loopback, Go builder images made from this machine's toolchain
// (one, and an independent one for the diverse run) and a base image,
// signed with the real cosign CLI. The example's builder command is
// wrapped in `sh -c` to print /proc/uptime before and after `go build`,
// so that each run's log says when the compiler ran; timings.json gives
// the stages. Every build on both sides starts with an empty Go build
// cache (the guard's sandbox gives each run an empty tmpfs HOME; the
// reprotest command and the host build use a new GOCACHE). The guard's
// rootfs cache is warm: one untimed build per configuration comes first.
// Measurements are interleaved round by round and medians reported;
// scripts/bench-overhead.sh runs it and docs/performance.md records it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/releasekit"
	"github.com/buildguard/buildguard/internal/testimage"
)

// exampleCommand is the example's builder command, which the benchmark
// wraps to time the compiler inside the sandbox.
const exampleCommand = `command: ["go", "build", "-trimpath", "-ldflags=-buildid=", "-o", "/out/hello", "."]`

// timedCommand runs the same go build between two readings of
// /proc/uptime (the host's clock since boot: the sandbox has no time
// namespace), printed on one line of the run's log.
const timedCommand = `command: ["sh", "-c", "read s _ </proc/uptime; go build -trimpath -ldflags=-buildid= -o /out/hello . || exit; read e _ </proc/uptime; echo benchoverhead-run $s $e"]`

// reprotestVariations are the reprotest variations that match the guard's
// (path, environment, time zone, locale, umask, host and domain name) and
// need neither faketime, disorderfs, a second user nor fewer CPUs; home and
// exec_path come with them. num_cpus would pin the second build to fewer
// cores, so it is off.
const reprotestVariations = "-all,+environment,+build_path,+timezone,+locales,+umask,+domain_host,+home,+exec_path"

// goBuild is the example's build on the host and under reprotest, with
// the example's environment and an empty Go build cache.
const goBuild = `export GOCACHE="$(mktemp -d)" CGO_ENABLED=0 GOTOOLCHAIN=local GOPROXY=off; go build -trimpath -ldflags=-buildid= -o hello .; s=$?; rm -rf "$GOCACHE"; exit $s`

func main() {
	bin := flag.String("buildguard", "bin/buildguard", "the buildguard binary")
	example := flag.String("example", "examples/hello", "the example directory")
	rounds := flag.Int("rounds", 3, "timed rounds (medians are reported)")
	waived := flag.Bool("waived", false, "also time the builds with verification waived (policy.waive: [verified])")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *bin, *example, *rounds, *waived)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchoverhead:", err)
		os.Exit(1)
	}
}

// bench holds what the measurements share.
type bench struct {
	bin, reprotest string
	tmp, work, src string
	run            *releasekit.Runner // quiet
}

// config is one `buildguard build` set-up.
type config struct {
	name  string // e.g. "2 runs, signed"
	file  string // its buildguard.yaml
	args  []string
	order int
}

// sample is one timed guarded build.
type sample struct {
	wall   float64 // seconds, process start to exit
	build  float64 // the build stage, from timings.json
	stages map[string]float64
	runs   [][2]float64 // uptime at the start and end of each run's go build
}

func run(ctx context.Context, bin, example string, rounds int, waived bool) (err error) {
	b := &bench{}
	if b.bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	if err := releasekit.Preflight("benchoverhead"); err != nil {
		return err
	}
	cosign, err := harness.Lookup("cosign")
	if err != nil {
		return err
	}
	if b.reprotest, err = exec.LookPath("reprotest"); err != nil {
		return errors.New("reprotest not found: install it with apt-get install -y reprotest")
	}
	if b.tmp, err = os.MkdirTemp("", "benchoverhead-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.tmp)
	b.work, b.src = filepath.Join(b.tmp, "hello"), filepath.Join(b.tmp, "src")
	env, err := releasekit.ToolEnv(b.tmp)
	if err != nil {
		return err
	}
	b.run = &releasekit.Runner{Quiet: true, Env: env}

	reg, err := harness.StartRegistry(ctx, filepath.Join(b.tmp, "registry"))
	if err != nil {
		return err
	}
	defer reg.Stop()
	rekor, err := harness.StartRekor(ctx, filepath.Join(b.tmp, "rekor"))
	if err != nil {
		return err
	}
	defer rekor.Stop()
	refs, goVersion, err := pushImages(ctx, reg.Addr, filepath.Join(b.tmp, "images"))
	if err != nil {
		return err
	}
	sig, err := releasekit.NewSigstore(ctx, b.run, cosign, filepath.Join(b.tmp, "sigstore"), "benchoverhead", rekor)
	if err != nil {
		return err
	}
	if err := sig.Sign(ctx, refs...); err != nil {
		return err
	}
	if err := copyExample(example, b.work, b.src, reg.Addr); err != nil {
		return err
	}
	if _, err := b.run.Run(ctx, b.work, 0, b.bin, "pin", "--write", "buildguard.yaml", "Dockerfile"); err != nil {
		return err
	}
	configs, err := b.configs(sig, waived)
	if err != nil {
		return err
	}

	fmt.Printf("buildguard build on %s (%s builders, cold Go build cache in every build, warm rootfs cache), median of %d rounds\n", example, goVersion, rounds)
	// Untimed: fills the rootfs cache with both builders.
	if _, err := b.guarded(ctx, configs[len(configs)-1], "warm-up"); err != nil {
		return err
	}
	samples := map[string][]sample{}
	var host, repro []float64
	for r := range rounds {
		for _, c := range configs {
			s, err := b.guarded(ctx, c, fmt.Sprintf("round-%d", r))
			if err != nil {
				return err
			}
			samples[c.name] = append(samples[c.name], s)
		}
		t, err := b.timed(ctx, b.src, "sh", "-c", goBuild)
		if err != nil {
			return err
		}
		host = append(host, t)
		t, err = b.timed(ctx, b.src, b.reprotest, "--vary="+reprotestVariations, "-c", goBuild, ".", "hello")
		if err != nil {
			return err
		}
		repro = append(repro, t)
		fmt.Printf("  round %d: host go build %.2fs, reprotest %.2fs", r+1, host[r], repro[r])
		for _, c := range configs {
			s := samples[c.name][r]
			fmt.Printf("; %s: wall %.2fs, build stage %.2fs, go build union %.2fs", c.name, s.wall, s.build, unionOf(s.runs))
		}
		fmt.Println()
	}
	report(configs, samples, host, repro)
	return nil
}

// report prints the medians of the times and of the ratios, each ratio
// taken within a round (the machine's load changes between rounds).
func report(configs []config, samples map[string][]sample, host, repro []float64) {
	fmt.Printf("\none build (go build on the host, alone): %.2fs; reprotest, two builds + diffoscope (--vary=%s): %.2fs\n", median(host), reprotestVariations, median(repro))
	fmt.Printf("%-24s %7s %7s %7s %7s %7s | %-14s %-14s %-13s | %s\n", "configuration", "wall", "build", "union", "sum", "outside",
		"(wall-build)/1", "(wall-union)/1", "(wall-sum)/1", "wall/reprotest")
	for _, c := range configs {
		var wall, build, union, sum, outside, fBuild, fUnion, fSum, vsRepro []float64
		for r, s := range samples[c.name] {
			u, sm := unionOf(s.runs), sumOf(s.runs)
			var stages float64
			for _, v := range s.stages {
				stages += v
			}
			wall, build, union, sum = append(wall, s.wall), append(build, s.build), append(union, u), append(sum, sm)
			outside = append(outside, s.wall-stages)
			fBuild = append(fBuild, (s.wall-s.build)/host[r])
			fUnion = append(fUnion, (s.wall-u)/host[r])
			fSum = append(fSum, (s.wall-sm)/host[r])
			vsRepro = append(vsRepro, s.wall/repro[r])
		}
		fmt.Printf("%-24s %6.2fs %6.2fs %6.2fs %6.2fs %6.2fs | %-14.3f %-14.3f %-13.3f | %.2f\n", c.name, median(wall), median(build), median(union), median(sum), median(outside),
			median(fBuild), median(fUnion), median(fSum), median(vsRepro))
	}
	fmt.Println(`
wall: buildguard build, process start to exit. build: the build stage (timings.json): rootfs,
sandboxes and every run, side by side (--jobs: the core count). union: time during which at least
one run's go build was running (read from /proc/uptime inside the sandbox). sum: the runs' go
build times added up. outside: wall minus all the stages (process start, configuration, output).
The fractions are the guard's own cost over one build alone on the host in the same round, and
wall/reprotest is taken in the same round; medians over the rounds. wall-sum is negative when the
runs overlap (side by side on the cores).`)
	for _, c := range configs {
		stages := map[string][]float64{}
		var names []string
		for _, s := range samples[c.name] {
			for n, v := range s.stages {
				if _, ok := stages[n]; !ok {
					names = append(names, n)
				}
				stages[n] = append(stages[n], v)
			}
		}
		slices.Sort(names)
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %.3fs", n, median(stages[n])))
		}
		fmt.Printf("stages, %s: %s\n", c.name, strings.Join(parts, ", "))
	}
}

// pushImages makes and pushes the builder, the independent builder and
// the base image, and returns them as ref@digest (in that order) and the
// Go version.
func pushImages(ctx context.Context, addr, dir string) ([]string, string, error) {
	builders, err := releasekit.MakeGoBuilders(dir, "benchoverhead")
	if err != nil {
		return nil, "", err
	}
	base, err := testimage.Files(map[string]string{"etc/os-release": "NAME=\"benchoverhead static base\"\n"})
	if err != nil {
		return nil, "", err
	}
	var refs []string
	for _, p := range []struct {
		repo string
		img  v1.Image
	}{{"demo/go-builder:1.26", builders.Clean}, {"demo/go-builder-independent:1.26", builders.Independent}, {"demo/static:1", base}} {
		ref, err := releasekit.Push(ctx, addr+"/"+p.repo, p.img)
		if err != nil {
			return nil, "", err
		}
		refs = append(refs, ref)
	}
	return refs, builders.GoVersion, nil
}

// configs writes the configurations: two runs, and two runs plus the
// diverse builder; each with the images' signatures verified (the result
// cache off, so that verification runs every time) and, with waived, with
// verification waived too. The last one runs both builders.
func (b *bench) configs(sig *releasekit.Sigstore, waived bool) ([]config, error) {
	data, err := os.ReadFile(filepath.Join(b.work, "buildguard.yaml"))
	if err != nil {
		return nil, err
	}
	full := string(data)
	if !strings.Contains(full, exampleCommand) {
		return nil, fmt.Errorf("the example's builder command is not %s", exampleCommand)
	}
	full = strings.Replace(full, exampleCommand, timedCommand, 1)
	diverse := regexp.MustCompile(`(?m)^  diverse:\n    - image: .*\n`)
	if !diverse.MatchString(full) {
		return nil, errors.New("the example has no reproduce.diverse entry to remove")
	}
	twoRuns := diverse.ReplaceAllString(full, "")
	if !strings.Contains(full, "\npolicy:\n") {
		return nil, errors.New("the example has no policy section")
	}
	waive := func(s string) string { return strings.Replace(s, "\npolicy:\n", "\npolicy:\n  waive: [verified]\n", 1) }
	signed := []string{"--trusted-root", sig.TrustedRoot(), "--key", sig.PublicKey(), "--no-verify-cache"}
	type set struct {
		name, yaml string
		args       []string
	}
	sets := []set{{"2 runs, signed", twoRuns, signed}, {"2 runs+diverse, signed", full, signed}}
	if waived {
		sets = []set{sets[0], {"2 runs, waived", waive(twoRuns), nil}, sets[1], {"2 runs+diverse, waived", waive(full), nil}}
	}
	var out []config
	for i, c := range sets {
		file := filepath.Join(b.work, fmt.Sprintf("bench-%d.yaml", i))
		if err := os.WriteFile(file, []byte(c.yaml), 0o600); err != nil {
			return nil, err
		}
		out = append(out, config{name: c.name, file: file, args: c.args, order: i})
	}
	return out, nil
}

// guarded runs one guarded build, which must pass, and reads its timings.
func (b *bench) guarded(ctx context.Context, c config, label string) (sample, error) {
	out := filepath.Join(b.tmp, "evidence", fmt.Sprintf("%s-%d", label, c.order))
	args := append([]string{"build", "-f", c.file, "--out", out, "--quiet"}, c.args...)
	wall, err := b.timed(ctx, b.work, b.bin, args...)
	if err != nil {
		return sample{}, err
	}
	s := sample{wall: wall, stages: map[string]float64{}}
	data, err := os.ReadFile(filepath.Join(out, "timings.json"))
	if err != nil {
		return s, err
	}
	var t struct {
		Stages []struct {
			Name    string  `json:"name"`
			Seconds float64 `json:"seconds"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return s, fmt.Errorf("reading %s: %w", filepath.Join(out, "timings.json"), err)
	}
	for _, st := range t.Stages {
		s.stages[st.Name] += st.Seconds
	}
	s.build = s.stages["build"]
	logs, err := filepath.Glob(filepath.Join(out, "logs", "run-*.log"))
	if err != nil {
		return s, err
	}
	for _, l := range logs {
		iv, err := runInterval(l)
		if err != nil {
			return s, err
		}
		s.runs = append(s.runs, iv)
	}
	if len(s.runs) < 2 {
		return s, fmt.Errorf("%s: %d run logs, want at least 2", out, len(s.runs))
	}
	if err := os.RemoveAll(out); err != nil { // keep the disk use flat
		return s, err
	}
	return s, nil
}

// runInterval reads the uptime readings timedCommand printed in a run log.
func runInterval(log string) ([2]float64, error) {
	data, err := os.ReadFile(log)
	if err != nil {
		return [2]float64{}, err
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "benchoverhead-run" {
			continue
		}
		s, err1 := strconv.ParseFloat(f[1], 64)
		e, err2 := strconv.ParseFloat(f[2], 64)
		if err := errors.Join(err1, err2); err != nil {
			return [2]float64{}, fmt.Errorf("%s: %w", log, err)
		}
		return [2]float64{s, e}, nil
	}
	return [2]float64{}, fmt.Errorf("%s has no benchoverhead-run line", log)
}

// unionOf is the time covered by at least one interval.
func unionOf(ivs [][2]float64) float64 {
	ivs = slices.Clone(ivs)
	slices.SortFunc(ivs, func(a, b [2]float64) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	var total, end float64
	for i, iv := range ivs {
		switch {
		case i == 0 || iv[0] >= end:
			total += iv[1] - iv[0]
			end = iv[1]
		case iv[1] > end:
			total += iv[1] - end
			end = iv[1]
		}
	}
	return total
}

func sumOf(ivs [][2]float64) float64 {
	var t float64
	for _, iv := range ivs {
		t += iv[1] - iv[0]
	}
	return t
}

// timed runs bin in dir, which must exit 0, and returns its wall time in
// seconds.
func (b *bench) timed(ctx context.Context, dir, bin string, args ...string) (float64, error) {
	began := time.Now()
	if _, err := b.run.Run(ctx, dir, 0, bin, args...); err != nil {
		return 0, err
	}
	return time.Since(began).Seconds(), nil
}

// copyExample copies the example's files into work, pointing them at the
// registry, and its Go files (go.mod, *.go) into src for the host and
// reprotest builds.
func copyExample(example, work, src, addr string) error {
	names, err := releasekit.CopyExample(example, work, addr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(src, 0o700); err != nil {
		return err
	}
	for _, name := range names {
		if name != "go.mod" && !strings.HasSuffix(name, ".go") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(example, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil { //nolint:gosec // names come from ReadDir of the example directory
			return err
		}
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
