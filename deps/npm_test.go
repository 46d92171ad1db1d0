package deps

import (
	"context"
	"crypto/sha1" //nolint:gosec // testing sha1-only lockfiles
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// npmFixture is a project whose lockfile pins, from a test registry:
// alpha 1.0.0 (with its own nested beta 1.0.0), beta 2.0.0 and the scoped
// @scope/gamma 1.2.3.
type npmFixture struct {
	srv      *testServer
	spec     Spec
	tarballs map[string][]byte // name@version -> tarball
	lock     map[string]any
}

var npmFixturePkgs = []struct{ key, name, version string }{
	{"node_modules/@scope/gamma", "@scope/gamma", "1.2.3"},
	{"node_modules/alpha", "alpha", "1.0.0"},
	{"node_modules/alpha/node_modules/beta", "beta", "1.0.0"},
	{"node_modules/beta", "beta", "2.0.0"},
}

const npmFixturePackageJSON = `{"name":"app","version":"1.0.0","dependencies":{"@scope/gamma":"1.2.3","alpha":"^1.0.0","beta":"^2.0.0"}}`

func newNPMFixture(t *testing.T, lockfileVersion int) *npmFixture {
	t.Helper()
	f := &npmFixture{srv: newTestServer(t), tarballs: map[string][]byte{}}
	packages := map[string]any{
		"": map[string]any{"name": "app", "version": "1.0.0", "dependencies": map[string]string{"@scope/gamma": "1.2.3", "alpha": "^1.0.0", "beta": "^2.0.0"}},
	}
	for _, p := range npmFixturePkgs {
		tgz := npmTarball(t, p.name, p.version)
		f.tarballs[p.name+"@"+p.version] = tgz
		f.srv.set(npmTarballPath(p.name, p.version), tgz)
		e := map[string]any{"version": p.version, "integrity": sri512(tgz), "license": "MIT"}
		if p.name == "alpha" {
			e["dependencies"] = map[string]string{"beta": "^1.0.0"}
		}
		packages[p.key] = e
	}
	f.lock = map[string]any{"name": "app", "version": "1.0.0", "lockfileVersion": lockfileVersion, "requires": true, "packages": packages}
	dir := t.TempDir()
	f.spec = Spec{Type: TypeNPM, Dir: dir, Path: "web"}
	writeFile(t, filepath.Join(dir, "package.json"), npmFixturePackageJSON)
	f.writeLock(t)
	return f
}

func (f *npmFixture) entry(key string) map[string]any {
	return f.lock["packages"].(map[string]any)[key].(map[string]any)
}

func (f *npmFixture) writeLock(t *testing.T) {
	t.Helper()
	data, err := json.MarshalIndent(f.lock, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(f.spec.Dir, "package-lock.json"), string(data)+"\n")
}

func (f *npmFixture) options(t *testing.T) Options {
	return testOptions(t, "npm_config_registry="+f.srv.URL+"/")
}

func TestNPMPrefetch(t *testing.T) {
	f := newNPMFixture(t, 3)
	res, err := Prefetch(context.Background(), []Spec{f.spec}, f.options(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range res.Dependencies {
		got = append(got, d.Name+"@"+d.Version)
		tgz := f.tarballs[d.Name+"@"+d.Version]
		if d.Digest["sha256"] != sha256Hex(tgz) || d.Digest["sha512"] == "" || !d.Pinned || d.Weak || d.Source != "web" || d.Type != TypeNPM {
			t.Errorf("%s: %+v", d.Name, d)
		}
	}
	if want := "@scope/gamma@1.2.3 alpha@1.0.0 beta@1.0.0 beta@2.0.0"; strings.Join(got, " ") != want {
		t.Errorf("dependencies %v, want %s", got, want)
	}
	if res.Dependencies[0].PURL != "pkg:npm/%40scope/gamma@1.2.3" || res.Dependencies[1].PURL != "pkg:npm/alpha@1.0.0" {
		t.Errorf("purls %s %s", res.Dependencies[0].PURL, res.Dependencies[1].PURL)
	}
	if len(res.Mounts) != 1 || res.Mounts[0].Destination != NPMCacheDir || !res.Mounts[0].CopyOnWrite {
		t.Errorf("mounts %+v", res.Mounts)
	}
	want := map[string]string{
		"npm_config_cache": NPMCacheDir, "npm_config_offline": "true", "npm_config_registry": f.srv.URL + "/",
		"npm_config_audit": "false", "npm_config_fund": "false", "npm_config_update_notifier": "false",
	}
	if len(res.Env) != len(want) {
		t.Errorf("env %v, want %v", res.Env, want)
	}
	for k, v := range want {
		if res.Env[k] != v {
			t.Errorf("env %s=%q, want %q", k, res.Env[k], v)
		}
	}
	if res.Fetched != 4 {
		t.Errorf("fetched %d, want 4", res.Fetched)
	}
}

// TestNPMCIOffline runs the real npm ci against the cache Prefetch laid
// out, for a lockfileVersion 3 project without resolved fields, with an
// empty HOME and the registry pointed at a server that fails the test on
// any request: npm installs everything from the cache alone.
//
// The second case is a lockfileVersion 2 project whose resolved fields
// name registry.npmjs.org (npm moves them to the configured registry) and
// one of whose packages is pinned by sha1 only.
func TestNPMCIOffline(t *testing.T) {
	npm := findTool(t, "npm")
	t.Run("v3 without resolved", func(t *testing.T) {
		npmCI(t, npm, newNPMFixture(t, 3))
	})
	t.Run("v2 resolved sha1", func(t *testing.T) {
		f := newNPMFixture(t, 2)
		for _, p := range npmFixturePkgs {
			f.entry(p.key)["resolved"] = "https://registry.npmjs.org" + npmTarballPath(p.name, p.version)
		}
		s1 := sha1.Sum(f.tarballs["alpha@1.0.0"]) //nolint:gosec // test
		f.entry("node_modules/alpha")["integrity"] = "sha1-" + base64.StdEncoding.EncodeToString(s1[:])
		f.writeLock(t)
		npmCI(t, npm, f)
	})
}

func npmCI(t *testing.T, npm string, f *npmFixture) {
	t.Helper()
	res, err := Prefetch(context.Background(), []Spec{f.spec}, f.options(t))
	if err != nil {
		t.Fatal(err)
	}
	f.srv.arm()
	// The build sees a copy-on-write view: npm writes into its copy.
	cacheCopy := filepath.Join(t.TempDir(), "npm-cache")
	if err := os.CopyFS(cacheCopy, os.DirFS(res.Mounts[0].Source)); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "npm_config_userconfig=" + filepath.Join(home, ".npmrc")}
	for k, v := range res.Env {
		env = append(env, k+"="+strings.ReplaceAll(v, NPMCacheDir, cacheCopy))
	}
	cmd := exec.Command(npm, "ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir, cmd.Env = f.spec.Dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	for _, p := range npmFixturePkgs {
		data, err := os.ReadFile(filepath.Join(f.spec.Dir, filepath.FromSlash(p.key), "package.json"))
		if err != nil {
			t.Errorf("npm did not install %s: %v", p.key, err)
			continue
		}
		var pj struct{ Name, Version string }
		if err := json.Unmarshal(data, &pj); err != nil || pj.Name != p.name || pj.Version != p.version {
			t.Errorf("%s holds %s@%s (%v)", p.key, pj.Name, pj.Version, err)
		}
	}
}

func TestParsePackageLock(t *testing.T) {
	lock := `{"lockfileVersion": 2, "packages": {
		"": {"name": "app", "version": "1.0.0"},
		"node_modules/a": {"version": "1.0.0", "integrity": "` + sri512([]byte("a")) + `"},
		"node_modules/@s/b": {"version": "2.0.0-beta.1", "resolved": "https://registry.npmjs.org/@s/b/-/b-2.0.0-beta.1.tgz", "integrity": "` + sri512([]byte("b")) + `"},
		"node_modules/a/node_modules/@s/b": {"version": "1.0.0"},
		"node_modules/ws": {"resolved": "packages/ws", "link": true},
		"packages/ws": {"name": "ws", "version": "0.0.1"},
		"packages/ws/node_modules/c": {"version": "3.0.0", "integrity": "` + sri512([]byte("c")) + `"},
		"node_modules/a/node_modules/bundled": {"version": "1.0.0", "inBundle": true},
		"node_modules/local": {"version": "1.0.0", "resolved": "file:../local.tgz"},
		"node_modules/alias": {"name": "real-name", "version": "4.0.0", "integrity": "` + sri512([]byte("d")) + `"}
	}}`
	got, err := parsePackageLock([]byte(lock), "package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range got {
		names = append(names, e.key+"="+e.name+"@"+e.version)
	}
	want := []string{
		"node_modules/@s/b=@s/b@2.0.0-beta.1",
		"node_modules/a=a@1.0.0",
		"node_modules/a/node_modules/@s/b=@s/b@1.0.0",
		"node_modules/alias=real-name@4.0.0",
		"packages/ws/node_modules/c=c@3.0.0",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("got\n%v\nwant\n%v", names, want)
	}
	if got[2].integrity.kind != pinNone || got[0].integrity.algo != "sha512" || got[0].resolved == "" {
		t.Errorf("pins: %+v", got)
	}
}

func TestParsePackageLockRefuses(t *testing.T) {
	for name, lock := range map[string]string{
		"v1":               `{"lockfileVersion": 1, "dependencies": {}}`,
		"no version":       `{"packages": {}}`,
		"v4":               `{"lockfileVersion": 4, "packages": {}}`,
		"not json":         `{"lockfileVersion": 3,`,
		"traversal key":    `{"lockfileVersion": 3, "packages": {"node_modules/../../x": {"version": "1.0.0"}}}`,
		"traversal name":   `{"lockfileVersion": 3, "packages": {"node_modules/x": {"name": "../../x", "version": "1.0.0"}}}`,
		"scope traversal":  `{"lockfileVersion": 3, "packages": {"node_modules/@s/..": {"version": "1.0.0"}}}`,
		"version escape":   `{"lockfileVersion": 3, "packages": {"node_modules/x": {"version": "1.0.0/../../y"}}}`,
		"git":              `{"lockfileVersion": 3, "packages": {"node_modules/x": {"version": "1.0.0", "resolved": "git+ssh://git@github.com/a/b.git#abc"}}}`,
		"bad integrity":    `{"lockfileVersion": 3, "packages": {"node_modules/x": {"version": "1.0.0", "integrity": "sha512-AAAA"}}}`,
		"unknown only":     `{"lockfileVersion": 3, "packages": {"node_modules/x": {"version": "1.0.0", "integrity": "md5-AAAAAAAAAAAAAAAAAAAAAA=="}}}`,
		"half node_module": `{"lockfileVersion": 3, "packages": {"xnode_modules/y": {"version": "1.0.0"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parsePackageLock([]byte(lock), "package-lock.json")
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want an ErrConfig error", err)
			}
			if name == "v1" && !strings.Contains(err.Error(), "npm 7") {
				t.Errorf("the message does not say how to upgrade: %v", err)
			}
		})
	}
}

func TestParseIntegrity(t *testing.T) {
	data := []byte("x")
	s1 := sha1.Sum(data) //nolint:gosec // test
	sha1SRI := "sha1-" + base64.StdEncoding.EncodeToString(s1[:])
	for _, tc := range []struct{ in, algo string }{
		{"", ""},
		{sri512(data), "sha512"},
		{sha1SRI, "sha1"},
		{sha1SRI + " " + sri512(data), "sha512"},
		{sri512(data) + "?opt " + sha1SRI, "sha512"},
		{"md5-abc " + sha1SRI, "sha1"},
	} {
		p, err := parseIntegrity(tc.in)
		if err != nil || p.algo != tc.algo {
			t.Errorf("parseIntegrity(%q) = %q, %v; want %q", tc.in, p.algo, err, tc.algo)
		}
	}
}

func TestNPMWeakAndUnpinned(t *testing.T) {
	f := newNPMFixture(t, 2)
	alpha := f.tarballs["alpha@1.0.0"]
	s1 := sha1.Sum(alpha) //nolint:gosec // test
	f.entry("node_modules/alpha")["integrity"] = "sha1-" + base64.StdEncoding.EncodeToString(s1[:])
	delete(f.entry("node_modules/beta"), "integrity")
	f.writeLock(t)
	o := f.options(t)
	res, err := Prefetch(context.Background(), []Spec{f.spec}, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Dependencies {
		switch d.Name + "@" + d.Version {
		case "alpha@1.0.0":
			if !d.Weak || !d.Pinned || d.Digest["sha1"] == "" {
				t.Errorf("sha1-only: %+v", d)
			}
		case "beta@2.0.0":
			if d.Pinned || d.Weak || d.Digest["sha256"] != sha256Hex(f.tarballs["beta@2.0.0"]) {
				t.Errorf("no integrity: %+v", d)
			}
		default:
			if !d.Pinned || d.Weak {
				t.Errorf("%s: %+v", d.Name, d)
			}
		}
	}
	// An unpinned package is fetched again every time: nothing says a
	// cached copy is the one the lockfile means.
	n := f.srv.count()
	if _, err := Prefetch(context.Background(), []Spec{f.spec}, o); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.count() - n; got != 1 {
		t.Errorf("second prefetch made %d requests, want 1 (the unpinned beta)", got)
	}
}

func TestNPMMismatch(t *testing.T) {
	f := newNPMFixture(t, 3)
	evil := npmTarball(t, "@scope/gamma", "6.6.6")
	f.srv.set(npmTarballPath("@scope/gamma", "1.2.3"), evil)
	res, err := Prefetch(context.Background(), []Spec{f.spec}, f.options(t))
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("got %v, want a *MismatchError", err)
	}
	if me.Dep.Name != "@scope/gamma" || me.Dep.Version != "1.2.3" || me.Algorithm != "sha512" || me.Want != sri512(f.tarballs["@scope/gamma@1.2.3"]) || me.Got != sri512(evil) || me.What != "tarball" {
		t.Errorf("mismatch %+v", me)
	}
	if res == nil || len(res.Dependencies) != 4 || res.Mounts != nil {
		t.Errorf("result %+v", res)
	}
}

func TestNPMResolvedElsewhere(t *testing.T) {
	f := newNPMFixture(t, 3)
	mirror := newTestServer(t)
	tgz := f.tarballs["alpha@1.0.0"]
	mirror.set("/files/alpha.tgz", tgz)
	f.entry("node_modules/alpha")["resolved"] = mirror.URL + "/files/alpha.tgz"
	// A resolved URL on registry.npmjs.org goes to the configured registry.
	f.entry("node_modules/beta")["resolved"] = "https://registry.npmjs.org/beta/-/beta-2.0.0.tgz"
	f.writeLock(t)
	if _, err := Prefetch(context.Background(), []Spec{f.spec}, f.options(t)); err != nil {
		t.Fatal(err)
	}
	if mirror.count() != 1 {
		t.Errorf("the resolved host got %d requests, want 1", mirror.count())
	}
	for _, r := range f.srv.requests {
		if strings.Contains(r, "alpha-1.0.0") {
			t.Errorf("fetched %s from the registry, not the resolved URL", r)
		}
	}
}

func TestNPMRegistry(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".npmrc"), "; comment\nregistry = https://npm.example.com/repo\n[section]\nregistry=https://ignored.example/\n")
	other := filepath.Join(t.TempDir(), "npmrc")
	writeFile(t, other, "registry=${REG}\n")
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, DefaultNPMRegistry},
		{[]string{"HOME=" + home}, "https://npm.example.com/repo/"},
		{[]string{"HOME=" + home, "npm_config_registry=http://127.0.0.1:9/"}, "http://127.0.0.1:9/"},
		{[]string{"HOME=" + home, "NPM_CONFIG_REGISTRY=https://r.example"}, "https://r.example/"},
		{[]string{"HOME=" + home, "NPM_CONFIG_USERCONFIG=" + other, "REG=https://env.example/x/"}, "https://env.example/x/"},
		{[]string{"HOME=" + t.TempDir()}, DefaultNPMRegistry},
	} {
		got, err := npmRegistry(parseEnviron(tc.env))
		if err != nil || got != tc.want {
			t.Errorf("npmRegistry(%v) = %q, %v; want %q", tc.env, got, err, tc.want)
		}
	}
	if _, err := npmRegistry(parseEnviron([]string{"npm_config_registry=ftp://x/"})); !errors.Is(err, ErrConfig) {
		t.Errorf("an ftp registry: got %v, want ErrConfig", err)
	}
}
