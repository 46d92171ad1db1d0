package deps

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkPrefetchVsPeers measures Prefetch on examples/godeps and
// examples/npm against what the ecosystems' own tools do with the same
// lockfiles and the same server, alternating within each iteration so
// that every side sees the same machine:
//
//   - ours-cold: Prefetch into an empty CacheDir (a new HTTP transport, so
//     no connection is reused from the iteration before);
//   - ours-warm: Prefetch into a CacheDir filled once before the loop;
//   - peer (cold): `go mod download` in a copy of examples/godeps with an
//     empty GOPATH, GOMODCACHE, GOCACHE and HOME, or `npm ci
//     --ignore-scripts --no-audit --no-fund` in a copy of examples/npm with
//     an empty --cache and HOME;
//   - peer-warm: the same command with its cache filled once before the
//     loop (npm ci still revalidates each packument with the registry and
//     installs node_modules; go mod download finds everything in place).
//
// Each side's metric is the median over the iterations; cold-ratio and
// warm-ratio are the medians of the per-iteration ratios ours-cold/peer and
// ours-warm/peer (below 1: ours is faster), warm-warm-ratio is
// ours-warm/peer-warm. ns/op is one iteration of all four sides. Ours runs
// in this process; the peers are processes, so their time includes
// starting go or node.
//
// The server is an in-process loopback one serving the fixtures of
// scripts/e2e-fixtures.sh (the host's module download cache, and npm
// tarballs with packuments made from them, which npm ci asks for and
// buildguard does not); BENCH_UPSTREAM=1 uses proxy.golang.org and
// registry.npmjs.org instead. scripts/bench-deps.sh runs it:
//
//	go test -run '^$' -bench PrefetchVsPeers -benchtime 5x ./deps
func BenchmarkPrefetchVsPeers(b *testing.B) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		b.Skip("go is not on PATH: install Go, then run scripts/bench-deps.sh")
	}
	npmBin, err := exec.LookPath("npm")
	if err != nil {
		b.Skip("npm is not on PATH: install node and npm (apt-get install nodejs npm), then run scripts/bench-deps.sh")
	}
	source := "loopback"
	goProxy, npmReg := "https://proxy.golang.org", DefaultNPMRegistry
	if os.Getenv("BENCH_UPSTREAM") == "1" {
		source = "upstream"
	} else {
		modDir, npmDir := benchFixtures(b, goBin)
		gp := httptest.NewServer(http.FileServer(http.Dir(modDir)))
		b.Cleanup(gp.Close)
		reg, err := newBenchNPMRegistry(npmDir)
		if err != nil {
			b.Fatalf("npm fixtures in %s: %v (run scripts/e2e-fixtures.sh)", npmDir, err)
		}
		npm := httptest.NewServer(reg)
		b.Cleanup(npm.Close)
		reg.base = npm.URL + "/"
		goProxy, npmReg = gp.URL, npm.URL+"/"
	}
	examples, err := filepath.Abs(filepath.Join("..", "examples"))
	if err != nil {
		b.Fatal(err)
	}

	b.Run(source+"/go", func(b *testing.B) {
		dir := filepath.Join(examples, "godeps")
		spec := Spec{Type: TypeGoMod, Dir: dir, Path: "."}
		env := []string{"GOPROXY=" + goProxy}
		files := []string{"go.mod", "go.sum", "main.go"}
		peer := func(work, state string) error {
			return runPeer(work, []string{
				"PATH=" + os.Getenv("PATH"),
				"HOME=" + filepath.Join(state, "home"),
				"GOPATH=" + filepath.Join(state, "gopath"),
				"GOMODCACHE=" + filepath.Join(state, "gopath", "pkg", "mod"),
				"GOCACHE=" + filepath.Join(state, "gocache"),
				"GOENV=off",
				"GOFLAGS=-modcacherw",
				"GOPROXY=" + goProxy,
				// go.sum pins every module: the checksum database is
				// never needed, and must not be asked on loopback.
				"GOSUMDB=off",
				"GOTOOLCHAIN=local",
			}, goBin, "mod", "download")
		}
		check := func(work, state string) error {
			_, err := os.Stat(filepath.Join(state, "gopath", "pkg", "mod", "github.com", "google", "uuid@v1.6.0", "uuid.go"))
			return err
		}
		benchVsPeer(b, dir, files, spec, env, 2, peer, check)
	})

	b.Run(source+"/npm", func(b *testing.B) {
		dir := filepath.Join(examples, "npm")
		spec := Spec{Type: TypeNPM, Dir: dir, Path: "."}
		env := []string{"npm_config_registry=" + npmReg}
		files := []string{"package.json", "package-lock.json"}
		peer := func(work, state string) error {
			return runPeer(work, []string{
				"PATH=" + os.Getenv("PATH"),
				"HOME=" + filepath.Join(state, "home"),
			}, npmBin, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier",
				"--loglevel=error", "--cache="+filepath.Join(state, "npm-cache"), "--registry="+npmReg)
		}
		check := func(work, state string) error {
			_, err := os.Stat(filepath.Join(work, "node_modules", "left-pad", "package.json"))
			return err
		}
		benchVsPeer(b, dir, files, spec, env, 2, peer, check)
	})
}

// benchVsPeer runs the four sides of BenchmarkPrefetchVsPeers for one
// example: ours is Prefetch of spec with environ env (which must find
// ndeps dependencies); peer runs the ecosystem's tool in work (a fresh
// copy of files from dir) with its caches under state; check says whether
// the peer did its job.
func benchVsPeer(b *testing.B, dir string, files []string, spec Spec, env []string, ndeps int,
	peer func(work, state string) error, check func(work, state string) error) {
	ctx := b.Context()
	ours := func(cache string) (*Result, error) {
		// A transport of its own: a cold run opens its connections (and,
		// upstream, does its TLS handshakes) as a new process would.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		return Prefetch(ctx, []Spec{spec}, Options{CacheDir: cache, Environ: env, Client: &http.Client{Transport: tr}})
	}
	copyExample := func() string {
		work := filepath.Join(b.TempDir(), "src")
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				b.Fatal(err)
			}
			if err := os.MkdirAll(work, 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(work, f), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		return work
	}
	newState := func() string {
		// A new HOME, with Go's telemetry off (go telemetry off): in its
		// default mode, go in a new HOME starts a child that writes there
		// after go exits, while the directory is being removed. Off costs
		// go less than the default, so it can only favour the peer.
		state := b.TempDir()
		mode := filepath.Join(state, "home", ".config", "go", "telemetry", "mode")
		if err := os.MkdirAll(filepath.Dir(mode), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(mode, []byte("off"), 0o644); err != nil {
			b.Fatal(err)
		}
		return state
	}
	runOurs := func(cache string, warm bool) time.Duration {
		start := time.Now()
		res, err := ours(cache)
		d := time.Since(start)
		if err != nil {
			b.Fatalf("Prefetch: %v", err)
		}
		if len(res.Dependencies) != ndeps || len(res.Mounts) != 1 {
			b.Fatalf("Prefetch: %d dependencies and %d mounts, want %d and 1", len(res.Dependencies), len(res.Mounts), ndeps)
		}
		if warm && (res.Fetched != 0 || res.Cached != ndeps) {
			b.Fatalf("a warm Prefetch made %d requests and found %d of %d in the cache", res.Fetched, res.Cached, ndeps)
		}
		if !warm && res.Fetched == 0 {
			b.Fatal("a cold Prefetch made no request")
		}
		return d
	}
	runPeerOnce := func(work, state string) time.Duration {
		start := time.Now()
		err := peer(work, state)
		d := time.Since(start)
		if err == nil {
			err = check(work, state)
		}
		if err != nil {
			b.Fatal(err)
		}
		return d
	}

	// Fill the warm caches once, untimed.
	warmCache := b.TempDir()
	runOurs(warmCache, false)
	warmState := newState()
	runPeerOnce(copyExample(), warmState)

	var oursCold, oursWarm, peerCold, peerWarm, coldRatio, warmRatio, warmWarm []float64
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		cold := filepath.Join(b.TempDir(), "cache")
		work, state := copyExample(), newState()
		warmWork := copyExample()
		b.StartTimer()

		oc := runOurs(cold, false)
		pc := runPeerOnce(work, state)
		ow := runOurs(warmCache, true)
		pw := runPeerOnce(warmWork, warmState)

		b.StopTimer()
		oursCold = append(oursCold, ms(oc))
		oursWarm = append(oursWarm, ms(ow))
		peerCold = append(peerCold, ms(pc))
		peerWarm = append(peerWarm, ms(pw))
		coldRatio = append(coldRatio, ms(oc)/ms(pc))
		warmRatio = append(warmRatio, ms(ow)/ms(pc))
		warmWarm = append(warmWarm, ms(ow)/ms(pw))
		for _, d := range []string{cold, filepath.Dir(work), state, filepath.Dir(warmWork)} {
			if err := os.RemoveAll(d); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(median(oursCold), "ours-cold-ms")
	b.ReportMetric(median(oursWarm), "ours-warm-ms")
	b.ReportMetric(median(peerCold), "peer-ms")
	b.ReportMetric(median(peerWarm), "peer-warm-ms")
	b.ReportMetric(median(coldRatio), "cold-ratio")
	b.ReportMetric(median(warmRatio), "warm-ratio")
	b.ReportMetric(median(warmWarm), "warm-warm-ratio")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// runPeer runs name with args in dir with exactly the environment env,
// and returns its output in the error when it fails.
func runPeer(dir string, env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return nil
}

// benchFixtures returns the host's module download cache (a GOPROXY
// directory) and the directory of npm tarballs, as scripts/e2e-fixtures.sh
// fills them, skipping when they are missing.
func benchFixtures(b *testing.B, goBin string) (string, string) {
	out, err := exec.Command(goBin, "env", "GOMODCACHE").Output()
	if err != nil {
		b.Fatalf("go env GOMODCACHE: %v", err)
	}
	modDir := filepath.Join(strings.TrimSpace(string(out)), "cache", "download")
	npmDir := os.Getenv("BUILDGUARD_E2E_NPM")
	if npmDir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			b.Fatal(err)
		}
		npmDir = filepath.Join(cache, "buildguard-e2e", "npm")
	}
	var missing []string
	for _, p := range []string{
		filepath.Join(modDir, "github.com/google/uuid/@v/v1.6.0.zip"),
		filepath.Join(modDir, "github.com/pkg/errors/@v/v0.9.1.zip"),
		filepath.Join(npmDir, "is-number-7.0.0.tgz"),
		filepath.Join(npmDir, "left-pad-1.3.0.tgz"),
	} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		b.Skipf("the dependency fixtures are missing (%s): run scripts/e2e-fixtures.sh", strings.Join(missing, ", "))
	}
	return modDir, npmDir
}

// benchNPMRegistry serves the npm tarballs of a directory at their
// registry URLs (NAME/-/BASENAME-VERSION.tgz) and, for npm ci, which asks
// for them, each package's packument: the package.json of each tarball
// with dist.tarball, dist.integrity and dist.shasum added, and dist-tags
// latest the highest version by name order.
type benchNPMRegistry struct {
	base     string                       // the server's URL, with a trailing slash
	tarballs map[string]string            // NAME/-/FILE -> path
	versions map[string]map[string][]byte // name -> version -> package.json
	sums     map[string][2]string         // NAME/-/FILE -> sha512 SRI, sha1 hex
}

func newBenchNPMRegistry(dir string) (*benchNPMRegistry, error) {
	r := &benchNPMRegistry{tarballs: map[string]string{}, versions: map[string]map[string][]byte{}, sums: map[string][2]string{}}
	tgzs, err := filepath.Glob(filepath.Join(dir, "*.tgz"))
	if err != nil {
		return nil, err
	}
	if len(tgzs) == 0 {
		return nil, errors.New("no .tgz")
	}
	for _, p := range tgzs {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		pj, err := tarballPackageJSON(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		var id struct{ Name, Version string }
		if err := json.Unmarshal(pj, &id); err != nil {
			return nil, fmt.Errorf("%s: package.json: %w", p, err)
		}
		if id.Name == "" || id.Version == "" {
			return nil, fmt.Errorf("%s: package.json names no name and version", p)
		}
		key := id.Name + "/-/" + id.Name[strings.LastIndex(id.Name, "/")+1:] + "-" + id.Version + ".tgz"
		s512, s1 := sha512.Sum512(data), sha1.Sum(data)
		r.tarballs[key] = p
		r.sums[key] = [2]string{"sha512-" + base64.StdEncoding.EncodeToString(s512[:]), hex.EncodeToString(s1[:])}
		if r.versions[id.Name] == nil {
			r.versions[id.Name] = map[string][]byte{}
		}
		r.versions[id.Name][id.Version] = pj
	}
	return r, nil
}

// tarballPackageJSON returns package/package.json from an npm tarball.
func tarballPackageJSON(data []byte) ([]byte, error) {
	gz, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("no package/package.json: %w", err)
		}
		if h.Name == "package/package.json" {
			return io.ReadAll(io.LimitReader(tr, 1<<20))
		}
	}
}

func (r *benchNPMRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p, err := url.PathUnescape(strings.TrimPrefix(req.URL.EscapedPath(), "/"))
	if err != nil {
		http.NotFound(w, req)
		return
	}
	if file, ok := r.tarballs[p]; ok {
		http.ServeFile(w, req, file)
		return
	}
	vs, ok := r.versions[p]
	if !ok {
		http.NotFound(w, req)
		return
	}
	versions := map[string]map[string]any{}
	var latest string
	for v, pj := range vs {
		var m map[string]any
		if err := json.Unmarshal(pj, &m); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		key := p + "/-/" + p[strings.LastIndex(p, "/")+1:] + "-" + v + ".tgz"
		m["dist"] = map[string]string{"tarball": r.base + key, "integrity": r.sums[key][0], "shasum": r.sums[key][1]}
		versions[v] = m
		if v > latest {
			latest = v
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"name": p, "dist-tags": map[string]string{"latest": latest}, "versions": versions})
}
