package deps

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

// FuzzParseGoSum: parseGoSum never panics; what it accepts names only
// paths inside a proxy directory, and writing it back gives the same
// lines.
func FuzzParseGoSum(f *testing.F) {
	h := "h1:" + strings.Repeat("A", 43) + "="
	f.Add([]byte("golang.org/x/text v0.43.0 " + h + "\ngolang.org/x/text v0.43.0/go.mod " + h + "\n"))
	f.Add([]byte("github.com/Azure/go v1.0.0+incompatible " + h + "\n\n   \n"))
	f.Add([]byte("example.com/m v0.0.0-20200101000000-abcdefabcdef/go.mod " + h + "\r\n"))
	f.Add([]byte("../../x v1.0.0 " + h + "\n"))
	f.Add([]byte("example.com/m v1.0.0 h1:AAAA\n"))
	f.Add([]byte("example.com/m v1.0.0 " + h + "\nexample.com/m v1.0.0 " + h + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := parseGoSum(data, "go.sum")
		if err != nil {
			return
		}
		for _, l := range lines {
			for _, ext := range []string{".zip", ".mod", ".info"} {
				rel, err := goProxyPath(module.Version{Path: l.path, Version: l.version}, ext)
				if err != nil {
					t.Fatalf("accepted %s %s, which has no proxy path: %v", l.path, l.version, err)
				}
				if !filepath.IsLocal(rel) || strings.Contains(rel, "\\") {
					t.Fatalf("accepted %s %s, whose proxy path %q leaves the view", l.path, l.version, rel)
				}
			}
		}
		again, err := parseGoSum(formatGoSum(lines), "go.sum")
		if err != nil {
			t.Fatalf("written back, it does not parse: %v", err)
		}
		if !reflect.DeepEqual(lines, again) {
			t.Fatalf("round trip:\n%v\n%v", lines, again)
		}
	})
}

// FuzzParsePackageLock: parsePackageLock never panics; every package it
// accepts has a name and version that stay inside the registry's URL
// space and the cache view, and the entries written back as a lockfile
// parse to the same entries.
func FuzzParsePackageLock(f *testing.F) {
	f.Add([]byte(`{"lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/a":{"version":"1.0.0","integrity":"` + sri512([]byte("a")) + `"}}}`))
	f.Add([]byte(`{"lockfileVersion":2,"packages":{"node_modules/@s/b":{"version":"2.0.0","resolved":"https://registry.npmjs.org/@s/b/-/b-2.0.0.tgz"},"node_modules/l":{"link":true},"node_modules/a/node_modules/c":{"version":"1.0.0","inBundle":true}}}`))
	f.Add([]byte(`{"lockfileVersion":3,"packages":{"node_modules/x":{"name":"../../x","version":"1.0.0"}}}`))
	f.Add([]byte(`{"lockfileVersion":1,"dependencies":{}}`))
	f.Add([]byte(`{"lockfileVersion":3,"packages":{"packages/w/node_modules/@a/b":{"version":"0.0.1-rc.1+b","integrity":"sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA= md5-x"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parsePackageLock(data, "package-lock.json")
		if err != nil {
			return
		}
		const reg = "https://r.example/"
		packages := map[string]lockEntry{}
		for _, e := range entries {
			if !validNPMName(e.name) || !npmVersion.MatchString(e.version) {
				t.Fatalf("accepted %q@%q", e.name, e.version)
			}
			u := npmTarballURL(reg, e.name, e.version)
			for _, seg := range strings.Split(u[len(reg):], "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("tarball URL %q has an empty or dot segment", u)
				}
			}
			if _, err := normalizeView([]viewFile{{rel: "_cacache/index-v5/" + e.name, sum: "x"}}); err != nil {
				t.Fatalf("name %q is not a local path: %v", e.name, err)
			}
			le := lockEntry{Version: e.version, Resolved: e.resolved, Integrity: e.integrity.text}
			if e.key[strings.LastIndex(e.key, "node_modules/")+len("node_modules/"):] != e.name {
				le.Name = e.name
			}
			packages[e.key] = le
		}
		out, err := json.Marshal(packageLock{LockfileVersion: 3, Packages: packages})
		if err != nil {
			t.Fatal(err)
		}
		again, err := parsePackageLock(out, "package-lock.json")
		if err != nil {
			t.Fatalf("written back, it does not parse: %v\n%s", err, out)
		}
		if len(again) != len(entries) {
			t.Fatalf("round trip: %d entries, then %d", len(entries), len(again))
		}
		for i := range entries {
			a, b := entries[i], again[i]
			if a.key != b.key || a.name != b.name || a.version != b.version || a.resolved != b.resolved ||
				a.integrity.algo != b.integrity.algo || !bytes.Equal(a.integrity.sum, b.integrity.sum) {
				t.Fatalf("round trip:\n%+v\n%+v", a, b)
			}
		}
	})
}
