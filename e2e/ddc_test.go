//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buildguard/buildguard/internal/ddc"
	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/releasekit"
)

// TestDDCFirstStage builds the first stage of the diverse double-compiling
// chain (make demo-ddc) as CI can afford it, and as an unprivileged user
// with a subordinate id range, the way an unprivileged CI job would:
// Debian's gccgo-12, in a builder image mmdebstrap makes from the Debian
// archive (in its unshare mode), builds go1.20.14 from its toolchain
// module's sources as a rootless guarded build. The full chain (about an
// hour cold) is `make demo-ddc`, as root, whose result the notes report.
// The test checks what a reader of the evidence would: the stage passed,
// ran rootless, its provenance pins the builder image and the source zip
// the chain names, and the toolchain it made is go1.20.14 and compiles a
// program that runs; and that the chain left nothing it could not remove.
func TestDDCFirstStage(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("-short: the chain's first stage takes about ten minutes cold (CI always runs it)")
	}
	for _, tool := range []string{"mmdebstrap", "docker-registry", "crun", "newuidmap"} {
		harness.Require(t, tool)
	}
	harness.RequireRoot(t, "the test creates an unprivileged user and runs the chain as it")
	u := rootlessUser(t, "bgrootless-ranged", true)
	home := passableTempDir(t, "bg-ddc-")
	bin := filepath.Join(home, "bin")
	copyExecutable(t, bgBin, filepath.Join(bin, "buildguard"))
	if b, err := exec.Command("go", "build", "-o", filepath.Join(bin, "ddc"), "github.com/buildguard/buildguard/internal/cmd/ddc").CombinedOutput(); err != nil {
		t.Fatalf("building ddc: %v\n%s", err, b)
	}
	tmp := filepath.Join(home, "work")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "evidence")
	cache := filepath.Join(tmp, "cache")
	first := ddc.Chain[0]
	began := time.Now()
	cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "ddc"), "--buildguard", filepath.Join(bin, "buildguard"),
		"--cache", cache, "--out", out, "--stages", "1")
	cmd.Dir = tmp
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME=" + tmp, "TMPDIR=" + tmp}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	log, err := cmd.CombinedOutput()
	t.Logf("ddc --stages 1 as %s took %s", u.name, time.Since(began).Round(time.Second))
	if err != nil {
		t.Fatalf("ddc --stages 1 as %s: %v\n%s", u.name, err, log)
	}
	// Only the cache's kept parts are left: the builds' rootfs cache, of
	// the user's subordinate ids, was removed by buildguard clean.
	if left, _ := filepath.Glob(filepath.Join(cache, "tmp-*")); len(left) != 0 {
		t.Errorf("ddc left %v", left)
	}
	if !strings.Contains(string(log), "stages 1 to 1 (gccgo-12 → "+first.Version+") are built") {
		t.Errorf("ddc's summary does not say stage 1 is built:\n%s", log)
	}

	var chain struct {
		Root   string `json:"root"`
		Stages []struct {
			Version, Bootstrap, Builder, SourceSHA256, Decision, Evidence string
		} `json:"stages"`
	}
	data, err := os.ReadFile(filepath.Join(out, "chain.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &chain); err != nil {
		t.Fatalf("chain.json: %v", err)
	}
	if chain.Root != ddc.Gccgo || len(chain.Stages) != 1 {
		t.Fatalf("chain.json: root %q with %d stages, want %s with 1:\n%s", chain.Root, len(chain.Stages), ddc.Gccgo, data)
	}
	s := chain.Stages[0]
	if s.Version != first.Version || s.Bootstrap != ddc.Gccgo || s.Decision != "pass" || s.SourceSHA256 != first.SHA256 {
		t.Errorf("chain.json's stage: %+v, want %s built by %s from sha256 %s, pass", s, first.Version, ddc.Gccgo, first.SHA256)
	}
	r, err := releasekit.ReadReport(filepath.Join(out, s.Evidence))
	if err != nil {
		t.Fatal(err)
	}
	if r.Decision != "pass" {
		t.Errorf("the stage's report.json says %s, want pass", r.Decision)
	}
	var sandboxes struct {
		Runs []struct {
			Sandbox *struct {
				Rootless  bool   `json:"rootless"`
				IDMapping string `json:"idMapping"`
			} `json:"sandbox"`
		} `json:"runs"`
	}
	if data, err := os.ReadFile(filepath.Join(out, s.Evidence, "report.json")); err != nil || json.Unmarshal(data, &sandboxes) != nil {
		t.Fatalf("report.json: %v", err)
	}
	if rs := sandboxes.Runs; len(rs) != 1 || rs[0].Sandbox == nil || !rs[0].Sandbox.Rootless || rs[0].Sandbox.IDMapping != "ranged" {
		t.Errorf("the stage's run did not record a rootless, ranged sandbox: %+v", rs)
	}

	// The provenance names the builder image by the digest chain.json
	// records and the source zip by the digest the chain pins.
	prov, err := os.ReadFile(filepath.Join(out, s.Evidence, "provenance.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Predicate struct {
			BuildDefinition struct {
				ResolvedDependencies []struct {
					Name, URI string
					Digest    map[string]string
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal(prov, &st); err != nil {
		t.Fatalf("provenance.json: %v", err)
	}
	var zipSeen, builderSeen bool
	for _, d := range st.Predicate.BuildDefinition.ResolvedDependencies {
		zipSeen = zipSeen || (d.URI == ddc.ZipURL(first.Version) && d.Digest["sha256"] == first.SHA256)
		builderSeen = builderSeen || "sha256:"+d.Digest["sha256"] == s.Builder
	}
	if !zipSeen || !builderSeen {
		t.Errorf("provenance.json: source zip recorded %v, builder %s recorded %v:\n%s", zipSeen, s.Builder, builderSeen, prov)
	}

	// The toolchain it made: go1.20.14 (a static binary: it runs here),
	// which builds and runs a program.
	goBin := filepath.Join(out, "go", "bin", "go")
	v, err := exec.CommandContext(t.Context(), goBin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(v), "go version "+first.Version+" ") {
		t.Fatalf("%s version: %v: %s", goBin, err, v)
	}
	prog := filepath.Join(tmp, "hello")
	if err := os.MkdirAll(prog, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prog, "main.go"), []byte("package main\n\nfunc main() { println(\"hello from the chain\") }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.CommandContext(t.Context(), goBin, "build", "-o", "hello", "main.go")
	build.Dir = prog
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOCACHE="+filepath.Join(tmp, "gocache"), "GOFLAGS=", "GO111MODULE=off", "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building a program with the chain's %s: %v\n%s", first.Version, err, b)
	}
	if h, err := exec.CommandContext(t.Context(), filepath.Join(prog, "hello")).CombinedOutput(); err != nil || string(h) != "hello from the chain\n" {
		t.Errorf("the program %s built: %v: %q", first.Version, err, h)
	}
}
