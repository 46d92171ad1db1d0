//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/buildguard/buildguard/builder"
	"github.com/buildguard/buildguard/internal/harness"
	"github.com/buildguard/buildguard/internal/testimage"
)

// npmFixtures are the npm packages examples/npm's lockfile names; the
// e2e registry serves their tarballs (scripts/e2e-fixtures.sh fetches them
// with npm pack at install time).
var npmFixtures = []string{"is-number-7.0.0.tgz", "left-pad-1.3.0.tgz"}

// TestDependencyScripts runs the testscript files in deps_scripts: real
// projects with dependencies (examples/godeps, examples/npm) built by the
// real buildguard binary through crun in builder images with a real Go
// toolchain and a real node and npm, pushed to a real distribution
// registry. Each script gets its own module proxy (the host's module
// download cache, filled by scripts/e2e-fixtures.sh) and npm registry
// (the packages' tarballs) on loopback, each logging the requests it
// answers to $WORK/requests.log, and an empty HOME and cache, so that
// nothing on the host can stand in for the prefetch.
func TestDependencyScripts(t *testing.T) {
	for _, tool := range []string{"docker-registry", "crun", "busybox", "node", "npm"} {
		harness.Require(t, tool)
	}
	harness.RequireRoot(t, "buildguard build needs root for crun and runc")
	goproxyDir, npmDir := depsFixtures(t)
	reg, err := harness.StartRegistry(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	goImg, nodeImg := pushDepsBuilders(t, reg.Addr)
	testscript.Run(t, testscript.Params{
		Dir: "deps_scripts",
		Setup: func(env *testscript.Env) error {
			buildguardEnv(env, reg.Addr)
			env.Setenv("GO_BUILDER", goImg)
			env.Setenv("NODE_BUILDER", nodeImg)
			env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
			log := filepath.Join(env.WorkDir, "requests.log")
			gp := httptest.NewServer(logRequests(log, "goproxy", http.FileServer(http.Dir(goproxyDir))))
			npm := httptest.NewServer(logRequests(log, "npm", http.StripPrefix("/", npmRegistry(npmDir))))
			env.Defer(gp.Close)
			env.Defer(npm.Close)
			env.Setenv("GOPROXY_URL", gp.URL)
			env.Setenv("NPM_URL", npm.URL+"/")
			return os.MkdirAll(filepath.Join(env.WorkDir, "home"), 0o755)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"envsubst":     envsubst,
			"exit-code":    exitCode,
			"copy-example": copyExample,
			"tree-digest":  treeDigest,
			"replace":      replaceInFile,
			"requests":     requests,
			"image-exists": imageExists,
			"gen-key":      genKey,
		},
	})
}

// depsFixtures returns the module download cache (a GOPROXY directory)
// and the directory of npm tarballs the scripts' servers serve, failing
// (in CI) or skipping when scripts/e2e-fixtures.sh has not filled them.
func depsFixtures(t *testing.T) (string, string) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	goproxy := filepath.Join(strings.TrimSpace(string(out)), "cache", "download")
	npmDir := os.Getenv("BUILDGUARD_E2E_NPM")
	if npmDir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		npmDir = filepath.Join(cache, "buildguard-e2e", "npm")
	}
	var missing []string
	for _, p := range []string{"github.com/google/uuid/@v/v1.6.0.zip", "github.com/pkg/errors/@v/v0.9.1.zip"} {
		if _, err := os.Stat(filepath.Join(goproxy, p)); err != nil {
			missing = append(missing, filepath.Join(goproxy, p))
		}
	}
	for _, f := range npmFixtures {
		if _, err := os.Stat(filepath.Join(npmDir, f)); err != nil {
			missing = append(missing, filepath.Join(npmDir, f))
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("the dependency fixtures are missing (%s): run scripts/e2e-fixtures.sh", strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return goproxy, npmDir
}

// npmRegistry serves an npm registry's tarball URLs (NAME/-/FILE.tgz) from
// dir; buildguard never asks for the metadata documents, which it makes
// from the lockfile, so any other request is a 404 that the log shows.
func npmRegistry(dir string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, file, ok := strings.Cut(r.URL.Path, "/-/")
		if !ok || strings.Contains(file, "/") || !slices.Contains(npmFixtures, file) {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(dir, file))
	})
}

// logRequests appends "SERVER METHOD PATH" for each request to the file
// log, then serves it with h.
func logRequests(log, server string, h http.Handler) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s %s %s\n", server, r.Method, r.URL.Path)
			_ = f.Close()
		}
		mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// pushDepsBuilders pushes a Go builder (this machine's toolchain and
// busybox) and a node builder (this machine's node and npm, and busybox)
// to the registry and returns their pinned references.
func pushDepsBuilders(t *testing.T, addr string) (goRef, nodeRef string) {
	t.Helper()
	bb, err := testimage.StaticBusybox(harness.Require(t, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	goroot, err := testimage.HostGoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tc, err := testimage.NewToolchain(goroot, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	goImg, err := testimage.GoBuilder{Toolchain: tc, Busybox: bb}.Image()
	if err != nil {
		t.Fatal(err)
	}
	nodeImg, err := testimage.NodeImage(bb, []string{"sh", "cat", "echo", "ls", "mkdir", "rm", "env", "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		ref string
		img v1.Image
		out *string
	}{{addr + "/deps/go-builder:1.26", goImg, &goRef}, {addr + "/deps/node-builder:20", nodeImg, &nodeRef}} {
		d, err := testimage.Push(t.Context(), p.ref, p.img)
		if err != nil {
			t.Fatalf("pushing %s: %v", p.ref, err)
		}
		*p.out = p.ref + "@" + d
	}
	return goRef, nodeRef
}

// copy-example NAME DIR: copy examples/NAME into $WORK/DIR.
func copyExample(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: copy-example NAME DIR")
	}
	src, err := filepath.Abs(filepath.Join("..", "examples", args[0]))
	ts.Check(err)
	ts.Check(os.CopyFS(ts.MkAbs(args[1]), os.DirFS(src)))
}

// tree-digest DIR VAR: set $VAR to the digest of the tree at DIR (every
// file's path, mode and content), to show that a build left it unchanged.
func treeDigest(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tree-digest DIR VAR")
	}
	m, err := builder.HashTree(context.Background(), ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Setenv(args[1], m.Digest())
}

// replace FILE OLD NEW: replace every OLD in FILE with NEW, failing when
// there is none.
func replaceInFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace FILE OLD NEW")
	}
	data := ts.ReadFile(args[0])
	if !strings.Contains(data, args[1]) {
		ts.Fatalf("%s does not contain %q", args[0], args[1])
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(strings.ReplaceAll(data, args[1], args[2])), 0o644))
}

// [!] requests N PATTERN: the request log holds exactly N requests whose
// line contains PATTERN (N may be "some": at least one).
func requests(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: requests N|some PATTERN")
	}
	data, err := os.ReadFile(ts.MkAbs("requests.log"))
	if err != nil && !os.IsNotExist(err) {
		ts.Fatalf("%v", err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line != "" && strings.Contains(line, args[1]) {
			n++
		}
	}
	switch {
	case args[0] == "some" && n == 0:
		ts.Fatalf("no request matches %q; the log:\n%s", args[1], data)
	case args[0] != "some" && fmt.Sprint(n) != args[0]:
		ts.Fatalf("%d requests match %q, want %s; the log:\n%s", n, args[1], args[0], data)
	}
}
