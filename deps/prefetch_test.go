package deps

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fileSpec(srv *testServer, path string, data []byte, dest string) Spec {
	srv.set(path, data)
	return Spec{Type: TypeFile, URL: srv.URL + path, SHA256: sha256Hex(data), Dest: dest}
}

func TestFilePrefetch(t *testing.T) {
	srv := newTestServer(t)
	data := []byte("a tool\n")
	spec := fileSpec(srv, "/tool", data, "bin/tool")
	res, err := Prefetch(context.Background(), []Spec{spec}, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	want := Dependency{Type: TypeFile, Name: "bin/tool", PURL: spec.URL, Digest: map[string]string{"sha256": spec.SHA256}, Pinned: true, Source: "bin/tool"}
	if len(res.Dependencies) != 1 || !reflect.DeepEqual(res.Dependencies[0], want) {
		t.Errorf("got %+v, want %+v", res.Dependencies, want)
	}
	if len(res.Mounts) != 1 || res.Mounts[0].Destination != "bin/tool" || res.Mounts[0].CopyOnWrite {
		t.Fatalf("mounts %+v", res.Mounts)
	}
	got, err := os.ReadFile(res.Mounts[0].Source)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("the mounted file holds %q (%v)", got, err)
	}
	if len(res.Env) != 0 {
		t.Errorf("a file sets no environment: %v", res.Env)
	}
}

func TestFileRefused(t *testing.T) {
	good := strings.Repeat("a", 64)
	for name, s := range map[string]Spec{
		"upper hex":      {URL: "https://x.example/f", SHA256: strings.Repeat("A", 64), Dest: "f"},
		"short hash":     {URL: "https://x.example/f", SHA256: "abc", Dest: "f"},
		"no hash":        {URL: "https://x.example/f", Dest: "f"},
		"dest escapes":   {URL: "https://x.example/f", SHA256: good, Dest: "../f"},
		"dest deep":      {URL: "https://x.example/f", SHA256: good, Dest: "a/../../f"},
		"dest absolute":  {URL: "https://x.example/f", SHA256: good, Dest: "/etc/passwd"},
		"dest empty":     {URL: "https://x.example/f", SHA256: good},
		"dest dot":       {URL: "https://x.example/f", SHA256: good, Dest: "."},
		"not http":       {URL: "file:///etc/passwd", SHA256: good, Dest: "f"},
		"no host":        {URL: "https:///f", SHA256: good, Dest: "f"},
		"dest backslash": {URL: "https://x.example/f", SHA256: good, Dest: `..\f`},
	} {
		t.Run(name, func(t *testing.T) {
			s.Type = TypeFile
			res, err := Prefetch(context.Background(), []Spec{s}, testOptions(t))
			if !errors.Is(err, ErrConfig) || res != nil {
				t.Errorf("got %v, %v; want an ErrConfig error", res, err)
			}
		})
	}
}

func TestFileMismatch(t *testing.T) {
	srv := newTestServer(t)
	spec := fileSpec(srv, "/f", []byte("pinned"), "f")
	srv.set("/f", []byte("served"))
	_, err := Prefetch(context.Background(), []Spec{spec}, testOptions(t))
	var me *MismatchError
	if !errors.As(err, &me) || me.Want != spec.SHA256 || me.Got != sha256Hex([]byte("served")) || me.Dep.Name != "f" {
		t.Fatalf("got %v, want a mismatch naming both sha256s", err)
	}
}

func TestCacheReuse(t *testing.T) {
	g := newGoFixture(t)
	n := newNPMFixture(t, 3)
	fsrv := newTestServer(t)
	specs := []Spec{g.spec, n.spec, fileSpec(fsrv, "/f", []byte("file"), "f")}
	o := testOptions(t, "GOPROXY="+g.srv.URL, "npm_config_registry="+n.srv.URL)
	first, err := Prefetch(context.Background(), specs, o)
	if err != nil {
		t.Fatal(err)
	}
	if first.Fetched != 5+4+1 || first.Cached != 0 {
		t.Fatalf("first: fetched %d cached %d", first.Fetched, first.Cached)
	}
	g.srv.arm()
	n.srv.arm()
	fsrv.arm()
	second, err := Prefetch(context.Background(), specs, o)
	if err != nil {
		t.Fatal(err)
	}
	if second.Fetched != 0 || second.Cached != len(first.Dependencies) {
		t.Errorf("second: fetched %d cached %d, want 0 and %d", second.Fetched, second.Cached, len(first.Dependencies))
	}
	if !reflect.DeepEqual(first.Dependencies, second.Dependencies) || !reflect.DeepEqual(first.Mounts, second.Mounts) || !reflect.DeepEqual(first.Env, second.Env) {
		t.Errorf("the second result differs from the first")
	}
	var dests []string
	for _, m := range second.Mounts {
		dests = append(dests, m.Destination)
	}
	if want := []string{GoProxyDir, NPMCacheDir, "f"}; !reflect.DeepEqual(dests, want) {
		t.Errorf("mount order %v, want %v", dests, want)
	}
	if len(second.Env) != 7 {
		t.Errorf("env %v: want GOPROXY and npm's six", second.Env)
	}
}

func TestCorruptCacheRefetched(t *testing.T) {
	g := newGoFixture(t)
	o := g.options(t)
	first, err := Prefetch(context.Background(), []Spec{g.spec}, o)
	if err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(o.CacheDir, "blobs", "sha256", sha256Hex(g.greet.zip))
	if err := os.Chmod(blob, 0o644); err != nil {
		t.Fatal(err)
	}
	// Changed in place: the view's hard link changes with it.
	if err := os.WriteFile(blob, []byte("corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := g.srv.count()
	second, err := Prefetch(context.Background(), []Spec{g.spec}, o)
	if err != nil {
		t.Fatal(err)
	}
	if second.Fetched != 1 || second.Cached != 2 || g.srv.count()-n != 1 {
		t.Errorf("fetched %d cached %d, want 1 and 2", second.Fetched, second.Cached)
	}
	got, err := os.ReadFile(filepath.Join(second.Mounts[0].Source, "example.com/greet/@v/v1.0.0.zip"))
	if err != nil || !bytes.Equal(got, g.greet.zip) {
		t.Errorf("the view's zip is not the pinned one (%v)", err)
	}
	if first.Mounts[0].Source != second.Mounts[0].Source {
		t.Errorf("the same lockfile gave another view: %s, %s", first.Mounts[0].Source, second.Mounts[0].Source)
	}

	// A file added to a view makes it be laid out again.
	extra := filepath.Join(second.Mounts[0].Source, "example.com/evil/@v/v1.0.0.zip")
	writeFile(t, extra, "x")
	if _, err := Prefetch(context.Background(), []Spec{g.spec}, o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(extra); err == nil {
		t.Errorf("a view with an extra file was used as it is")
	}
}

func TestFetchFailures(t *testing.T) {
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + refused.Addr().String()
	if err := refused.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		set    func(s *testServer)
		base   func(s *testServer) string
		status int
		isErr  error
	}{
		{name: "404", set: func(s *testServer) { s.fail("/f", 404) }, status: 404},
		{name: "500", set: func(s *testServer) { s.fail("/f", 500) }, status: 500},
		{name: "hangs", set: func(s *testServer) { s.hangOn("/f") }, isErr: context.DeadlineExceeded},
		{name: "refused", base: func(*testServer) string { return refusedURL }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t)
			spec := fileSpec(s, "/f", []byte("x"), "f")
			if tc.set != nil {
				tc.set(s)
			}
			if tc.base != nil {
				spec.URL = tc.base(s) + "/f"
			}
			o := testOptions(t)
			if tc.isErr != nil {
				// Only the hanging server needs a short timeout: given to
				// the others, a loaded machine could run out of it before
				// their status or refusal arrived.
				o.Timeout = 200 * time.Millisecond
			}
			res, err := Prefetch(context.Background(), []Spec{spec}, o)
			var fe *FetchError
			if !errors.As(err, &fe) || res != nil {
				t.Fatalf("got %v, want a *FetchError", err)
			}
			if fe.URL != spec.URL || !errors.Is(err, ErrFetch) {
				t.Errorf("URL %q, want %q; %v", fe.URL, spec.URL, err)
			}
			var se *statusError
			if tc.status != 0 && (!errors.As(err, &se) || se.code != tc.status) {
				t.Errorf("%v does not carry status %d", err, tc.status)
			}
			if tc.isErr != nil && !errors.Is(err, tc.isErr) {
				t.Errorf("%v is not %v", err, tc.isErr)
			}
		})
	}
}

// TestGoProxyFallThrough checks the list syntax against real servers: ","
// falls through on 404 and 410 only, "|" on any error.
func TestGoProxyFallThrough(t *testing.T) {
	for _, tc := range []struct {
		name, sep string
		status    int
		ok        bool
	}{
		{"comma 404", ",", http.StatusNotFound, true},
		{"comma 410", ",", http.StatusGone, true},
		{"comma 500", ",", http.StatusInternalServerError, false},
		{"pipe 500", "|", http.StatusInternalServerError, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGoFixture(t)
			down := newTestServer(t)
			for _, p := range []string{"greet/@v/v1.0.0.zip", "greet/@v/v1.0.0.mod", "words/@v/v1.1.0.mod", "words/@v/v1.2.0.zip", "words/@v/v1.2.0.mod"} {
				down.fail("/example.com/"+p, tc.status)
			}
			o := testOptions(t, "GOPROXY="+down.URL+tc.sep+g.srv.URL)
			_, err := Prefetch(context.Background(), []Spec{g.spec}, o)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			var fe *FetchError
			if !tc.ok && (!errors.As(err, &fe) || !strings.HasPrefix(fe.URL, down.URL)) {
				t.Fatalf("got %v, want the first proxy's *FetchError", err)
			}
			if tc.ok && g.srv.count() != 5 {
				t.Errorf("the second proxy got %d requests, want 5", g.srv.count())
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		s := newTestServer(t)
		spec := fileSpec(s, "/big", bytes.Repeat([]byte("x"), 2048), "big")
		o := testOptions(t)
		o.MaxBytes = 1024
		_, err := Prefetch(context.Background(), []Spec{spec}, o)
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != "dependencyBytes" || le.Flag != "--max-dependency-bytes" || le.Max != 1024 || !errors.Is(err, ErrLimit) {
			t.Fatalf("got %v, want the dependencyBytes *LimitError", err)
		}
	})
	t.Run("count", func(t *testing.T) {
		g := newGoFixture(t)
		o := g.options(t)
		o.MaxCount = 2
		_, err := Prefetch(context.Background(), []Spec{g.spec}, o)
		var le *LimitError
		if !errors.As(err, &le) || le.Limit != "dependencies" || le.Flag != "--max-dependencies" || le.Max != 2 {
			t.Fatalf("got %v, want the dependencies *LimitError", err)
		}
		if g.srv.count() != 0 {
			t.Errorf("%d requests made before refusing the count", g.srv.count())
		}
	})
	t.Run("negative", func(t *testing.T) {
		o := testOptions(t)
		o.MaxBytes = -1
		if _, err := Prefetch(context.Background(), nil, o); !errors.Is(err, ErrConfig) {
			t.Fatalf("got %v, want ErrConfig", err)
		}
	})
}

// TestHostileZip serves a module zip whose h1 go.sum pins (so that only
// CheckZip stands in the way) with a file that climbs out of the module.
func TestHostileZip(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"example.com/evil@v1.0.0/go.mod", "example.com/evil@v1.0.0/../../../escape.go"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("module example.com/evil\n")); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t)
	srv.set("/example.com/evil/@v/v1.0.0.zip", buf.Bytes())
	spec := writeGoSpec(t, "module example.com/app\n", "example.com/evil v1.0.0 "+hashZipBytes(t, buf.Bytes())+"\n")
	o := testOptions(t, "GOPROXY="+srv.URL)
	_, err := Prefetch(context.Background(), []Spec{spec}, o)
	var fe *FetchError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "invalid module zip") {
		t.Fatalf("got %v, want the zip refused", err)
	}
	blobs, err := os.ReadDir(filepath.Join(o.CacheDir, "blobs", "sha256"))
	if err != nil || len(blobs) != 0 {
		t.Errorf("a refused zip was cached: %v %v", blobs, err)
	}
}

func TestGoSumRefused(t *testing.T) {
	h := "h1:" + strings.Repeat("A", 43) + "="
	for name, sum := range map[string]string{
		"two fields":      "example.com/m v1.0.0\n",
		"not h1":          "example.com/m v1.0.0 h2:abc\n",
		"short h1":        "example.com/m v1.0.0 h1:AAAA\n",
		"escaping path":   "../../x v1.0.0 " + h + "\n",
		"dot path":        "example.com/../x v1.0.0 " + h + "\n",
		"bad version":     "example.com/m 1.0.0 " + h + "\n",
		"two hashes":      "example.com/m v1.0.0 " + h + "\nexample.com/m v1.0.0 h1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)) + "\n",
		"version escapes": "example.com/m v1.0.0/../../x " + h + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			spec := writeGoSpec(t, "module example.com/app\n", "\n"+sum)
			res, err := Prefetch(context.Background(), []Spec{spec}, testOptions(t, "GOPROXY=http://127.0.0.1:1"))
			if !errors.Is(err, ErrConfig) || res != nil {
				t.Fatalf("got %v, want ErrConfig", err)
			}
			line := ":2:"
			if name == "two hashes" {
				line = ":3:"
			}
			if !strings.Contains(err.Error(), filepath.Join(spec.Dir, "go.sum")+line) {
				t.Errorf("the error does not name the file and line: %v", err)
			}
		})
	}
}

func TestSpecsRefused(t *testing.T) {
	dir := t.TempDir()
	for name, s := range map[string]Spec{
		"unknown type":  {Type: "pip", Dir: dir},
		"relative dir":  {Type: TypeGoMod, Dir: "rel"},
		"no go.sum":     {Type: TypeGoMod, Dir: dir},
		"no lockfile":   {Type: TypeNPM, Dir: dir},
		"direct only":   {Type: TypeGoMod, Dir: dir},
		"no cache root": {Type: TypeFile},
	} {
		t.Run(name, func(t *testing.T) {
			o := testOptions(t)
			if name == "direct only" {
				o.Environ = []string{"GOPROXY=direct"}
			}
			if name == "no cache root" {
				o.CacheDir = "relative"
				s = fileSpec(newTestServer(t), "/f", []byte("x"), "f")
			}
			if _, err := Prefetch(context.Background(), []Spec{s}, o); !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
		})
	}
}

// TestDeterministic prefetches the same specs with different concurrency
// into different caches: the results and the views are byte-identical.
func TestDeterministic(t *testing.T) {
	g := newGoFixture(t)
	n := newNPMFixture(t, 3)
	specs := []Spec{n.spec, g.spec}
	var results []*Result
	for _, c := range []int{1, 8} {
		o := testOptions(t, "GOPROXY="+g.srv.URL, "npm_config_registry="+n.srv.URL)
		o.Concurrency = c
		res, err := Prefetch(context.Background(), specs, o)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	if !reflect.DeepEqual(results[0].Dependencies, results[1].Dependencies) {
		t.Errorf("dependencies differ")
	}
	for i := range results[0].Mounts {
		a, b := results[0].Mounts[i].Source, results[1].Mounts[i].Source
		if filepath.Base(a) != filepath.Base(b) {
			t.Errorf("view names differ: %s %s", a, b)
		}
		if da, db := dirDigest(t, a), dirDigest(t, b); da != db {
			t.Errorf("views differ:\n%s\n%s", da, db)
		}
	}
	types := ""
	for _, d := range results[0].Dependencies {
		types += d.Type[:1]
	}
	if types != "gggnnnn" {
		t.Errorf("dependencies not sorted by type: %s", types)
	}
}

func dirDigest(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		b.WriteString(rel + " " + sha256Hex(data) + "\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestEmptyLockfiles: a spec whose lockfile pins nothing still gets its
// view and environment, so that the build's go or npm does not fall back
// to the network.
func TestEmptyLockfiles(t *testing.T) {
	g := writeGoSpec(t, "module example.com/app\n", "")
	n := Spec{Type: TypeNPM, Dir: t.TempDir(), Path: "web"}
	writeFile(t, filepath.Join(n.Dir, "package.json"), `{"name":"app"}`)
	writeFile(t, filepath.Join(n.Dir, "package-lock.json"), `{"lockfileVersion":3,"packages":{"":{"name":"app"}}}`)
	res, err := Prefetch(context.Background(), []Spec{g, n}, testOptions(t, "GOPROXY=http://127.0.0.1:1", "npm_config_registry=http://127.0.0.1:1/"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Dependencies) != 0 || len(res.Mounts) != 2 || len(res.Env) != 7 || res.Fetched != 0 {
		t.Errorf("got %+v", res)
	}
}
