package deps

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goFixture is a main module that needs two modules of a test proxy:
// greet v1.0.0, which requires words v1.1.0, and words v1.2.0 (the
// version the build selects), so that go.sum pins words v1.1.0 by its
// go.mod only.
type goFixture struct {
	srv                  *testServer
	greet, words, words1 *testModule
	spec                 Spec
}

const mainGoMod = `module example.com/app

go 1.21

require (
	example.com/greet v1.0.0
	example.com/words v1.2.0
)
`

func newGoFixture(t *testing.T) *goFixture {
	t.Helper()
	f := &goFixture{srv: newTestServer(t)}
	// words v1.1.0's go.mod differs from v1.2.0's: the cache is keyed by
	// content, so two equal go.mod files would share one entry, and which
	// of them is fetched and which found cached would depend on the order
	// the concurrent fetches finish in.
	f.words1 = newTestModule(t, "example.com/words", "v1.1.0", "module example.com/words\n\ngo 1.20\n",
		map[string]string{"words.go": "package words\n\nfunc Hello() string { return \"hi\" }\n"})
	f.words = newTestModule(t, "example.com/words", "v1.2.0", "module example.com/words\n\ngo 1.21\n",
		map[string]string{"words.go": "package words\n\nfunc Hello() string { return \"hello\" }\n"})
	f.greet = newTestModule(t, "example.com/greet", "v1.0.0", "module example.com/greet\n\ngo 1.21\n\nrequire example.com/words v1.1.0\n",
		map[string]string{"greet.go": "package greet\n\nimport \"example.com/words\"\n\nfunc Greet() string { return words.Hello() + \", world\" }\n"})
	for _, m := range []*testModule{f.greet, f.words, f.words1} {
		m.serve(t, f.srv)
	}
	f.spec = writeGoSpec(t, mainGoMod, f.greet.sumLines()+f.words1.modLine()+f.words.sumLines())
	writeFile(t, filepath.Join(f.spec.Dir, "main.go"), "package main\n\nimport \"example.com/greet\"\n\nfunc main() { println(greet.Greet()) }\n")
	return f
}

func (f *goFixture) options(t *testing.T) Options {
	return testOptions(t, "GOPROXY="+f.srv.URL)
}

func TestGoModPrefetch(t *testing.T) {
	f := newGoFixture(t)
	res, err := Prefetch(context.Background(), []Spec{f.spec}, f.options(t))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, d := range res.Dependencies {
		got = append(got, d.Name+"@"+d.Version)
	}
	want := "example.com/greet@v1.0.0 example.com/words@v1.1.0 example.com/words@v1.2.0"
	if strings.Join(got, " ") != want {
		t.Fatalf("dependencies %v, want %s", got, want)
	}
	greet := res.Dependencies[0]
	if greet.Digest["dirHash"] != f.greet.zipH1 || greet.Digest["goModDirHash"] != f.greet.modH1 || greet.Digest["sha256"] != sha256Hex(f.greet.zip) {
		t.Errorf("greet digest %v", greet.Digest)
	}
	if greet.PURL != "pkg:golang/example.com/greet@v1.0.0" || !greet.Pinned || greet.Source != "." || greet.Type != TypeGoMod {
		t.Errorf("greet %+v", greet)
	}
	modOnly := res.Dependencies[1]
	if _, ok := modOnly.Digest["dirHash"]; ok || modOnly.Digest["goModDirHash"] != f.words1.modH1 || modOnly.Digest["sha256"] != sha256Hex([]byte(f.words1.goMod)) {
		t.Errorf("go.mod-only digest %v", modOnly.Digest)
	}
	for _, r := range f.srv.requests {
		if strings.Contains(r, "words/@v/v1.1.0.zip") {
			t.Errorf("fetched %s: go.sum pins only its go.mod", r)
		}
	}
	if res.Fetched != 5 || res.Cached != 0 {
		t.Errorf("fetched %d cached %d, want 5 and 0", res.Fetched, res.Cached)
	}
	if len(res.Mounts) != 1 || res.Mounts[0].Destination != GoProxyDir || res.Mounts[0].CopyOnWrite {
		t.Fatalf("mounts %+v", res.Mounts)
	}
	if res.Env["GOPROXY"] != "file://"+GoProxyDir || len(res.Env) != 1 {
		t.Errorf("env %v", res.Env)
	}
	view := res.Mounts[0].Source
	for _, p := range []string{
		"example.com/greet/@v/v1.0.0.zip", "example.com/greet/@v/v1.0.0.mod", "example.com/greet/@v/v1.0.0.info", "example.com/greet/@v/list",
		"example.com/words/@v/v1.1.0.mod", "example.com/words/@v/v1.1.0.info", "example.com/words/@v/v1.2.0.zip",
	} {
		if _, err := os.Stat(filepath.Join(view, p)); err != nil {
			t.Errorf("view lacks %s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(view, "example.com/words/@v/v1.1.0.zip")); err == nil {
		t.Errorf("view holds a zip go.sum does not pin")
	}
	list, err := os.ReadFile(filepath.Join(view, "example.com/words/@v/list"))
	if err != nil || string(list) != "v1.1.0\nv1.2.0\n" {
		t.Errorf("list %q, %v", list, err)
	}
	info, err := os.ReadFile(filepath.Join(view, "example.com/greet/@v/v1.0.0.info"))
	if err != nil || string(info) != `{"Version":"v1.0.0"}`+"\n" {
		t.Errorf("info %q, %v", info, err)
	}
}

// TestGoBuildOffline builds a program with the real go command from the
// prepared proxy directory alone: empty HOME, GOPATH and GOMODCACHE, a
// proxy that is only the file URL, every network request sent to a closed
// port. It then removes one go.sum line and checks that go refuses the
// build: the environment did not turn go.sum checking off.
func TestGoBuildOffline(t *testing.T) {
	goBin := findTool(t, "go", "/usr/local/go/bin/go")
	f := newGoFixture(t)
	res, err := Prefetch(context.Background(), []Spec{f.spec}, f.options(t))
	if err != nil {
		t.Fatal(err)
	}
	f.srv.arm()
	gocache := os.Getenv("GOCACHE")
	if gocache == "" {
		out, err := exec.Command(goBin, "env", "GOCACHE").Output()
		if err != nil {
			t.Fatal(err)
		}
		gocache = strings.TrimSpace(string(out))
	}
	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GOPATH=" + filepath.Join(home, "gopath"),
		"GOMODCACHE=" + filepath.Join(home, "modcache"), "GOCACHE=" + gocache, "GOTOOLCHAIN=local",
		"HTTP_PROXY=http://127.0.0.1:1", "HTTPS_PROXY=http://127.0.0.1:1", "NO_PROXY=",
	}
	for k, v := range res.Env {
		env = append(env, k+"="+strings.ReplaceAll(v, GoProxyDir, res.Mounts[0].Source))
	}
	run := func() (string, error) {
		cmd := exec.Command(goBin, "build", "-o", filepath.Join(home, "app"), ".")
		cmd.Dir, cmd.Env = f.spec.Dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(home, "app")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello, world" {
		t.Fatalf("the program printed %q (%v)", out, err)
	}

	// Without go.sum's line for words v1.2.0's zip, go must refuse.
	sum := f.greet.sumLines() + f.words1.modLine() + f.words.modLine()
	writeFile(t, filepath.Join(f.spec.Dir, "go.sum"), sum)
	if err := os.RemoveAll(filepath.Join(home, "modcache")); err != nil {
		t.Fatal(err)
	}
	out2, err := run()
	if err == nil {
		t.Fatalf("go build succeeded with a go.sum that does not pin example.com/words v1.2.0")
	}
	if !strings.Contains(out2, "missing go.sum entry") {
		t.Errorf("go build failed, but not for the missing go.sum entry:\n%s", out2)
	}
}

// findTool returns the path of a tool the test needs; it skips when the
// tool is missing, except on CI, where it must be there.
func findTool(t *testing.T, name string, fallbacks ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range fallbacks {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI=true", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

func TestGoModMismatch(t *testing.T) {
	f := newGoFixture(t)
	other := newTestModule(t, "example.com/words", "v1.2.0", "module example.com/words\n\ngo 1.21\n",
		map[string]string{"words.go": "package words\n\nfunc Hello() string { return \"pwned\" }\n"})
	f.srv.set(f.words.urlPath(t, ".zip"), other.zip)
	f.srv.set(f.greet.urlPath(t, ".mod"), []byte(f.greet.goMod+"// changed\n"))
	res, err := Prefetch(context.Background(), []Spec{f.spec}, f.options(t))
	if err == nil {
		t.Fatal("no error for a proxy that serves other bytes")
	}
	if res == nil || len(res.Dependencies) != 3 {
		t.Fatalf("a mismatch must still return every dependency: %+v", res)
	}
	if res.Mounts != nil || res.Env != nil {
		t.Errorf("a mismatch must prepare nothing to build from: %+v %v", res.Mounts, res.Env)
	}
	var got []*MismatchError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var me *MismatchError
		if !errors.As(e, &me) {
			t.Fatalf("%v is not a *MismatchError", e)
		}
		got = append(got, me)
	}
	if len(got) != 2 {
		t.Fatalf("want both mismatches, got %v", err)
	}
	if got[0].Dep.Name != "example.com/greet" || got[0].What != "go.mod" || got[0].Want != f.greet.modH1 || got[0].Got != hashGoMod(t, []byte(f.greet.goMod+"// changed\n")) {
		t.Errorf("first mismatch %+v", got[0])
	}
	if got[1].Dep.Name != "example.com/words" || got[1].Dep.Version != "v1.2.0" || got[1].What != "module zip" || got[1].Want != f.words.zipH1 || got[1].Got != other.zipH1 || got[1].Algorithm != "h1" {
		t.Errorf("second mismatch %+v", got[1])
	}
	if !errors.Is(err, ErrMismatch) {
		t.Error("errors.Is(err, ErrMismatch) is false")
	}
	if !strings.Contains(err.Error(), f.words.zipH1) || !strings.Contains(err.Error(), other.zipH1) {
		t.Errorf("message does not name both hashes: %v", err)
	}
}

// TestEqualGoModsShareACacheEntry pins two versions whose go.mod files are
// the same bytes. The cache is keyed by content, so the second is found in
// the cache the first filled: one request, and both still laid out in the
// view. One fetch at a time makes the order, and so the counts, certain.
func TestEqualGoModsShareACacheEntry(t *testing.T) {
	srv := newTestServer(t)
	goMod := "module example.com/words\n\ngo 1.21\n"
	old := newTestModule(t, "example.com/words", "v1.1.0", goMod, map[string]string{"words.go": "package words\n"})
	cur := newTestModule(t, "example.com/words", "v1.2.0", goMod, map[string]string{"words.go": "package words\n"})
	old.serve(t, srv)
	cur.serve(t, srv)
	spec := writeGoSpec(t, "module example.com/app\n\ngo 1.21\n\nrequire example.com/words v1.2.0\n", old.modLine()+cur.modLine())
	o := testOptions(t, "GOPROXY="+srv.URL)
	o.Concurrency = 1
	res, err := Prefetch(context.Background(), []Spec{spec}, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched != 1 || res.Cached != 1 {
		t.Errorf("fetched %d cached %d, want 1 and 1", res.Fetched, res.Cached)
	}
	for _, v := range []string{"v1.1.0", "v1.2.0"} {
		data, err := os.ReadFile(filepath.Join(res.Mounts[0].Source, "example.com/words/@v", v+".mod"))
		if err != nil || string(data) != goMod {
			t.Errorf("view's %s.mod: %q, %v", v, data, err)
		}
	}
}
