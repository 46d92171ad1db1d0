package sbom

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
)

const epoch = 1700000000 // 2023-11-14T22:13:20Z

// TestDeterministic proves that the documents depend on the tree's content
// and SourceDateEpoch only: two runs are byte-identical, and so is a run on
// a copy of the tree elsewhere (another parent, another base name, fresh
// modification times); no path or host name is in them.
func TestDeterministic(t *testing.T) {
	tree := fixtureTree(t, t.TempDir(), "out")
	opts := Options{SourceDateEpoch: epoch}
	first, err := Generate(t.Context(), tree, opts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Generate(t.Context(), tree, opts)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "elsewhere", "other-name")
	copyTree(t, tree, elsewhere)
	copied, err := Generate(t.Context(), elsewhere, opts)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for _, f := range Formats {
		doc := first.Documents[f]
		if len(doc) == 0 {
			t.Fatalf("%s: no document", f)
		}
		if !bytes.Equal(doc, second.Documents[f]) {
			t.Errorf("%s: two runs differ:\n%s", f, firstDiff(doc, second.Documents[f]))
		}
		if !bytes.Equal(doc, copied.Documents[f]) {
			t.Errorf("%s: the copy's document differs:\n%s", f, firstDiff(doc, copied.Documents[f]))
		}
		for _, leak := range []string{tree, elsewhere, filepath.Dir(tree), os.TempDir() + "/", "other-name", host} {
			if leak != "" && bytes.Contains(doc, []byte(leak)) {
				t.Errorf("%s: document contains %q", f, leak)
			}
		}
	}
	spdx, cdx := first.Documents[SPDXJSON], first.Documents[CycloneDXJSON]
	if got := field(t, spdx, "creationInfo.created"); got != "2023-11-14T22:13:20Z" {
		t.Errorf("SPDX created %q", got)
	}
	if got := field(t, cdx, "metadata.timestamp"); got != "2023-11-14T22:13:20Z" {
		t.Errorf("CycloneDX timestamp %q", got)
	}
	if got := field(t, spdx, "spdxVersion"); got != "SPDX-2.3" {
		t.Errorf("spdxVersion %q", got)
	}
	if got := field(t, cdx, "specVersion"); got != "1.6" {
		t.Errorf("specVersion %q", got)
	}
	ns := field(t, spdx, "documentNamespace")
	if m := regexp.MustCompile(`^https://anchore\.com/syft/dir/([0-9a-f-]{36})$`).FindStringSubmatch(ns); m == nil || uuid.MustParse(m[1]).Version() != 5 {
		t.Errorf("documentNamespace %q: want syft's shape with a version 5 UUID", ns)
	}
	serial := field(t, cdx, "serialNumber")
	if u, err := uuid.Parse(strings.TrimPrefix(serial, "urn:uuid:")); err != nil || u.Version() != 5 || !strings.HasPrefix(serial, "urn:uuid:") {
		t.Errorf("serialNumber %q: want urn:uuid: and a version 5 UUID", serial)
	}
	if got := field(t, spdx, "name"); got != "." {
		t.Errorf("document name %q, want %q", got, ".")
	}
	if !bytes.Contains(spdx, []byte(`"Tool: syft-`+SyftVersion+`"`)) {
		t.Errorf("SPDX creators do not name syft %s", SyftVersion)
	}
}

// TestIdentifiersFollowContent proves the namespace and serial number are
// derived from the document: another date or another tree changes them,
// and Name names the document.
func TestIdentifiersFollowContent(t *testing.T) {
	tree := fixtureTree(t, t.TempDir(), "out")
	base, err := Generate(t.Context(), tree, Options{SourceDateEpoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	later, err := Generate(t.Context(), tree, Options{SourceDateEpoch: epoch + 1})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, tree, "requirements.txt", "requests==2.32.0\nidna==3.7\n")
	changed, err := Generate(t.Context(), tree, Options{SourceDateEpoch: epoch, Name: "app-output", Formats: []Format{SPDXJSON}})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(r *Result) (string, string) {
		return field(t, r.Documents[SPDXJSON], "documentNamespace"), field(t, r.Documents[CycloneDXJSON], "serialNumber")
	}
	ns0, sn0 := ids(base)
	ns1, sn1 := ids(later)
	if ns0 == ns1 || sn0 == sn1 {
		t.Errorf("another SourceDateEpoch kept the identifiers: %s %s", ns1, sn1)
	}
	if got := field(t, later.Documents[SPDXJSON], "creationInfo.created"); got != "2023-11-14T22:13:21Z" {
		t.Errorf("created %q", got)
	}
	if _, ok := changed.Documents[CycloneDXJSON]; ok || len(changed.Documents) != 1 {
		t.Errorf("asked for SPDX only, got %d documents", len(changed.Documents))
	}
	ns2 := field(t, changed.Documents[SPDXJSON], "documentNamespace")
	if ns2 == ns0 || !strings.HasPrefix(ns2, "https://anchore.com/syft/dir/app-output-") {
		t.Errorf("namespace of the changed, renamed tree: %q", ns2)
	}
	if got := field(t, changed.Documents[SPDXJSON], "name"); got != "app-output" {
		t.Errorf("document name %q", got)
	}
	if !hasPackage(changed.Packages, "requests", "2.32.0") || hasPackage(changed.Packages, "requests", "2.31.0") {
		t.Errorf("the changed requirement is not what was found: %v", changed.Packages)
	}
}

// TestGoBinaryModules proves that every module of a real Go binary, as
// debug/buildinfo reads it, is found with its version and a pkg:golang
// purl, in the package list and in both documents: crane (a dozen modules)
// and testdata/fatbin (syft and its 260-odd modules).
func TestGoBinaryModules(t *testing.T) {
	for _, bin := range []string{"crane", "fatbin"} {
		t.Run(bin, func(t *testing.T) {
			src := goBinary(t)
			if bin == "fatbin" {
				if testing.Short() {
					t.Skip("skipping the 97 MB binary in -short mode")
				}
				src = fatBinary(t)
			}
			dir := t.TempDir()
			copyFile(t, src, filepath.Join(dir, bin))
			checkModules(t, dir, filepath.Join(dir, bin))
		})
	}
}

func checkModules(t *testing.T, dir, bin string) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Generate(t.Context(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	type module struct{ path, version string }
	want := []module{{bi.Main.Path, bi.Main.Version}, {"stdlib", bi.GoVersion}}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		want = append(want, module{d.Path, d.Version})
	}
	if len(bi.Deps) < 5 {
		t.Fatalf("the test binary has only %d modules", len(bi.Deps))
	}
	for _, m := range want {
		var found *Package
		for i, p := range res.Packages {
			// a main module built from a checkout is "(devel)" to Go; syft
			// says UNKNOWN (with a purl without version) or derives a
			// pseudo-version from the VCS build settings, as its CLI does
			devel := m.version == "(devel)" && (p.Version == "UNKNOWN" || strings.HasPrefix(p.Version, "v0.0.0-"))
			if p.Name == m.path && (p.Version == m.version || devel || m.path == "stdlib" && "go"+p.Version == m.version) {
				found = &res.Packages[i]
			}
		}
		if found == nil {
			t.Errorf("module %s %s not found", m.path, m.version)
			continue
		}
		purl, err := url.PathUnescape(found.PURL)
		versioned := strings.HasPrefix(purl, "pkg:golang/"+m.path+"@")
		unversioned := m.version == "(devel)" && purl == "pkg:golang/"+m.path
		if err != nil || !versioned && !unversioned {
			t.Errorf("module %s: purl %q", m.path, found.PURL)
		}
		for _, f := range Formats {
			if !bytes.Contains(res.Documents[f], []byte(`"`+found.PURL+`"`)) {
				t.Errorf("%s: purl %s missing", f, found.PURL)
			}
		}
	}
	if len(res.Packages) != len(want) {
		t.Errorf("%d packages for %d modules: %v", len(res.Packages), len(want), res.Packages)
	}
	if s := res.Summary(SPDXJSON.FileName()); s.Packages != len(res.Packages) || s.Files[0] != "sbom.spdx.json" {
		t.Errorf("summary %+v", s)
	}
	t.Logf("%s: %d modules, all found", filepath.Base(bin), len(want))
}

// TestLicensesAndOrder proves the package list carries each package's
// licenses (as SPDX expressions) and is sorted by name.
func TestLicensesAndOrder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "package-lock.json", `{"name":"app","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{
"":{"name":"app","version":"1.0.0","dependencies":{"left-pad":"^1.3.0","a-lib":"^2.0.0"}},
"node_modules/left-pad":{"version":"1.3.0","resolved":"https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz","license":"WTFPL"},
"node_modules/a-lib":{"version":"2.0.0","resolved":"https://registry.npmjs.org/a-lib/-/a-lib-2.0.0.tgz","license":"MIT OR Apache-2.0"}}}`)
	// a Python package whose license only its license file's text tells:
	// syft's license scanner (built once per process) must read it
	writeFile(t, dir, "lib/python3.12/site-packages/foo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: foo\nVersion: 1.0\nLicense-File: LICENSE\n")
	writeFile(t, dir, "lib/python3.12/site-packages/foo-1.0.dist-info/LICENSE", mitLicense)
	res, err := Generate(t.Context(), dir, Options{Formats: []Format{CycloneDXJSON}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Name: "a-lib", Version: "2.0.0", PURL: "pkg:npm/a-lib@2.0.0", Licenses: []string{"MIT OR Apache-2.0"}},
		{Name: "app", Version: "1.0.0", PURL: "pkg:npm/app@1.0.0", Licenses: []string{}},
		{Name: "foo", Version: "1.0", PURL: "pkg:pypi/foo@1.0", Licenses: []string{"MIT"}},
		{Name: "left-pad", Version: "1.3.0", PURL: "pkg:npm/left-pad@1.3.0", Licenses: []string{"WTFPL"}},
	}
	if len(res.Packages) != len(want) {
		t.Fatalf("packages %+v, want %+v", res.Packages, want)
	}
	for i := range want {
		if p := res.Packages[i]; p.Name != want[i].Name || p.Version != want[i].Version || p.PURL != want[i].PURL || strings.Join(p.Licenses, "|") != strings.Join(want[i].Licenses, "|") {
			t.Errorf("package %d: %+v, want %+v", i, p, want[i])
		}
	}
}

// TestCancelled proves the caller's context still governs the scan.
func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Generate(ctx, fixtureTree(t, t.TempDir(), "out"), Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestEmptyTree(t *testing.T) {
	res, err := Generate(t.Context(), t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Packages == nil || len(res.Packages) != 0 || len(res.Documents) != 2 {
		t.Errorf("empty tree: %+v", res)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{{SourceDateEpoch: -1}, {Formats: []Format{"spdx-tag-value"}}, {MaxImageBytes: -1}} {
		_, err := Generate(t.Context(), t.TempDir(), o)
		var ue *UsageError
		if !errors.As(err, &ue) || ue.ExitCode() != 2 {
			t.Errorf("%+v: got %v, want a usage error", o, err)
		}
	}
}

func hasPackage(pkgs []Package, name, version string) bool {
	for _, p := range pkgs {
		if p.Name == name && p.Version == version {
			return true
		}
	}
	return false
}

// firstDiff shows where a and b start to differ.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-120)
	return "...\n" + string(a[lo:min(len(a), i+120)]) + "\n---\n" + string(b[lo:min(len(b), i+120)])
}
