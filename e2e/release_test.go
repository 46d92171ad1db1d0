//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/buildguard/buildguard/internal/harness"
)

// releaseTarget is the small main package the test releases: the path of
// `make release` (git archive, vendored and verified dependencies, pinned
// and signed builders, buildguard build) without the half hour a cold
// build of buildguard itself takes in the sandbox.
const releaseTarget = "./internal/cmd/benchdiff"

// TestReleaseTwice runs internal/cmd/release --twice on the small target
// through the real parts (docker-registry, the Rekor v2 server, cosign,
// busybox, crun or runc, the real buildguard binary): both guarded builds
// pass, they made byte-identical binaries, and the provenance records the
// vendored dependencies.
func TestReleaseTwice(t *testing.T) {
	for _, tool := range []string{"docker-registry", "posix", "cosign", "busybox", "crun", "git"} {
		harness.Require(t, tool)
	}
	harness.RequireRoot(t, "the release's builds need root for crun and runc")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	release := filepath.Join(tmp, "release")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", release, "./internal/cmd/release")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building internal/cmd/release: %v\n%s", err, out)
	}
	dist := filepath.Join(tmp, "dist")
	// --allow-dirty: the release is of HEAD whatever the work tree holds;
	// CI's checkout is clean anyway.
	began := time.Now()
	cmd := exec.CommandContext(t.Context(), release, "--repo", repo, "--target", releaseTarget, "--twice", "--allow-dirty",
		"--dist", dist, "--buildguard", bgBin)
	cmd.Dir = repo
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	out, err := cmd.CombinedOutput()
	t.Logf("release --twice took %s", time.Since(began).Round(time.Second))
	if err != nil {
		t.Fatalf("release --twice: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("release: PASS")) {
		t.Errorf("release --twice did not say PASS:\n%s", out)
	}

	// The commit the release names: HEAD when it started (HEAD may
	// have moved since).
	commit := strings.TrimSpace(string(out[bytes.LastIndex(out, []byte(" of commit "))+len(" of commit "):]))
	commit, _, _ = strings.Cut(commit, ",")
	if gitOutput(t, repo, "rev-parse", "--verify", commit+"^{commit}") != commit {
		t.Fatalf("release --twice names commit %q, which is not a commit of %s", commit, repo)
	}
	epoch := gitOutput(t, repo, "log", "-1", "--format=%ct", commit)
	reqs := requirements(t, []byte(gitOutput(t, repo, "show", commit+":go.mod")))
	var bins [2][]byte
	var sources [2]string
	for i, d := range []string{dist, filepath.Join(dist, "second")} {
		ev := filepath.Join(d, "evidence")
		var rep struct {
			Decision   string            `json:"decision"`
			Violations []json.RawMessage `json:"violations"`
			Runs       []struct {
				Diverse      bool   `json:"diverse"`
				OutputDigest string `json:"outputDigest"`
			} `json:"runs"`
		}
		readJSONFile(t, filepath.Join(ev, "report.json"), &rep)
		if rep.Decision != "pass" || len(rep.Violations) != 0 || len(rep.Runs) != 3 || !rep.Runs[2].Diverse {
			t.Fatalf("%s: decision %s, %d violation(s), %d runs (want pass, none, 3 with the last diverse)", ev, rep.Decision, len(rep.Violations), len(rep.Runs))
		}
		if bins[i], err = os.ReadFile(filepath.Join(d, "benchdiff")); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(bins[i])
		want := hex.EncodeToString(sum[:]) + "  benchdiff\n"
		if got, err := os.ReadFile(filepath.Join(d, "benchdiff.sha256")); err != nil || string(got) != want {
			t.Errorf("%s: benchdiff.sha256 = %q (%v), want %q", d, got, err, want)
		}

		var prov struct {
			Predicate struct {
				BuildDefinition struct {
					ExternalParameters struct {
						Command         []string          `json:"command"`
						Env             map[string]string `json:"env"`
						SourceDateEpoch int64             `json:"sourceDateEpoch"`
					} `json:"externalParameters"`
					ResolvedDependencies []struct {
						Name   string            `json:"name"`
						Digest map[string]string `json:"digest"`
					} `json:"resolvedDependencies"`
				} `json:"buildDefinition"`
			} `json:"predicate"`
		}
		readJSONFile(t, filepath.Join(ev, "provenance.json"), &prov)
		bd := prov.Predicate.BuildDefinition
		ext := bd.ExternalParameters
		if strconv.FormatInt(ext.SourceDateEpoch, 10) != epoch {
			t.Errorf("%s: provenance sourceDateEpoch %d, want the commit time %s", ev, ext.SourceDateEpoch, epoch)
		}
		if ext.Env["BUILDGUARD_RELEASE_COMMIT"] != commit {
			t.Errorf("%s: provenance names commit %q, want %s", ev, ext.Env["BUILDGUARD_RELEASE_COMMIT"], commit)
		}
		cmdline := strings.Join(ext.Command, " ")
		for _, flag := range []string{"-mod=vendor", "-trimpath", "-ldflags=-buildid=", releaseTarget} {
			if !strings.Contains(cmdline, flag) {
				t.Errorf("%s: provenance command %q lacks %s", ev, cmdline, flag)
			}
		}
		if ext.Env["CGO_ENABLED"] != "0" || ext.Env["GOPROXY"] != "off" {
			t.Errorf("%s: provenance env CGO_ENABLED=%q GOPROXY=%q, want 0 and off", ev, ext.Env["CGO_ENABLED"], ext.Env["GOPROXY"])
		}
		// The vendored dependencies: modules.txt's digest is recorded,
		// and the modules.txt it names lists every requirement of go.mod.
		modules, err := os.ReadFile(filepath.Join(d, "vendor-modules.txt"))
		if err != nil {
			t.Fatal(err)
		}
		msum := sha256.Sum256(modules)
		if got, want := ext.Env["BUILDGUARD_RELEASE_VENDOR_MODULES_TXT"], "sha256:"+hex.EncodeToString(msum[:]); got != want {
			t.Errorf("%s: provenance records vendor/modules.txt %q, want %s", ev, got, want)
		}
		for _, req := range reqs {
			if !bytes.Contains(modules, []byte("\n# "+req+"\n")) && !bytes.HasPrefix(modules, []byte("# "+req+"\n")) {
				t.Errorf("%s: vendor/modules.txt does not list %s from go.mod", d, req)
			}
		}
		listed := map[string]bool{}
		for _, dep := range bd.ResolvedDependencies {
			if dep.Name == "source" {
				sources[i] = dep.Digest["sha256"]
			}
			switch {
			case dep.Name == "vendor/modules.txt":
				listed[dep.Name] = dep.Digest["sha256"] == hex.EncodeToString(msum[:])
			case strings.HasPrefix(dep.Digest["dirHash"], "h1:"):
				listed[dep.Name] = true
			}
		}
		// Each vendored module is a resolved dependency with go.sum's hash.
		if !listed["vendor/modules.txt"] {
			t.Errorf("%s: the provenance does not list vendor/modules.txt by its digest", ev)
		}
		for _, m := range vendored(modules) {
			if !listed[m] {
				t.Errorf("%s: the provenance does not list the vendored module %s with its h1: hash", ev, m)
			}
		}
		if sources[i] == "" {
			t.Errorf("%s: the provenance has no source dependency (the tree with vendor/)", ev)
		}
	}
	if !bytes.Equal(bins[0], bins[1]) || len(bins[0]) == 0 {
		t.Errorf("the two releases made different binaries (%d and %d bytes)", len(bins[0]), len(bins[1]))
	}
	if sources[0] != sources[1] {
		t.Errorf("the two releases built different source trees: %s and %s", sources[0], sources[1])
	}
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func gitOutput(t *testing.T, dir string, args ...string) string {
	t.Helper()
	c := exec.CommandContext(t.Context(), "git", args...)
	c.Dir = dir
	out, err := c.Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// requirements are the "path version" of a go.mod's requirements, each of
// which vendor/modules.txt lists.
func requirements(t *testing.T, data []byte) []string {
	t.Helper()
	var reqs []string
	in := false
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "require (":
			in = true
		case line == ")":
			in = false
		case in:
			if f := strings.Fields(line); len(f) >= 2 {
				reqs = append(reqs, f[0]+" "+f[1])
			}
		}
	}
	if len(reqs) == 0 {
		t.Fatal("go.mod: no requirements found")
	}
	return reqs
}

// vendored are the modules of a vendor/modules.txt with packages in
// vendor/, as path@version.
func vendored(modulesTxt []byte) []string {
	var mods []string
	cur := ""
	for line := range strings.Lines(string(modulesTxt)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "#" && f[2] != "=>":
			cur = f[1] + "@" + f[2]
		case len(f) == 1 && !strings.HasPrefix(line, "#") && cur != "":
			mods = append(mods, cur)
			cur = ""
		}
	}
	return mods
}
