package evidence

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	digBuilder = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	digDiverse = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	digBase    = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	outGood    = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	outEvil    = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	// evilName is a file name and diff line an attacker controls: if the
	// page ever runs it, the body gains a data-pwned attribute.
	evilName = `app<script>document.body.setAttribute("data-pwned","script")</script>`
	evilLine = `+<img src=x onerror="document.body.setAttribute('data-pwned','img')">`
)

func images() []Image {
	return []Image{
		{Role: "builder", Ref: "registry.example/go-builder:1.26@" + digBuilder, Digest: digBuilder, Pinned: true, Verified: true,
			Signers:    []Signer{{KeyID: "SHA256:builderkey"}},
			LogEntries: []LogEntry{{LogID: "rekor.example", Index: 42}},
			Provenance: []Provenance{{PredicateType: "https://slsa.dev/provenance/v1", BuilderID: "https://ci.example/builder", SourceURI: "git+https://src.example/go"}}},
		{Role: "diverse", Ref: "other.example/go-toolchain:1.26@" + digDiverse, Digest: digDiverse, Pinned: true, Verified: true,
			Signers: []Signer{{Issuer: "https://issuer.example", Subject: "release@other.example"}}},
		{Role: "base", Ref: "registry.example/static:1@" + digBase, Digest: digBase, Pinned: true,
			Problems: []string{"no signature matched the trusted keys"}},
	}
}

// passReport is a build whose three runs agree.
func passReport() *Report {
	r := New()
	r.Decision = Pass
	r.Source = &Source{Path: "examples/hello", Digest: "sha256:5050", GitCommit: "0123abcd", SourceDateEpoch: 1700000000}
	r.Images = images()
	r.Runs = []Run{
		{Index: 1, Builder: digBuilder, OutputDigest: outGood, Log: "logs/run-1.log"},
		{Index: 2, Builder: digBuilder, Variations: []string{"path", "timezone", "umask"}, OutputDigest: outGood, Log: "logs/run-2.log"},
		{Index: 3, Builder: digDiverse, Diverse: true, OutputDigest: outGood, Log: "logs/run-3.log"},
	}
	r.SBOM = &SBOMSummary{Packages: 17, Files: []string{"sbom.spdx.json", "sbom.cdx.json"}}
	r.Published = &Published{Image: "registry.example/app:v1", Digest: "sha256:9999"}
	return r
}

// failReport is a build whose diverse builder disagrees with the main one,
// with an attacker-chosen file name in the output.
func failReport() (*Report, map[string][]byte) {
	r := passReport()
	r.Decision = Fail
	r.Published = nil
	r.Runs[2].OutputDigest = outEvil
	r.Violations = []Violation{
		{Rule: "diverse-agree", Message: "run 3 (diverse builder " + digDiverse + ") built different bits than run 1"},
		{Rule: "no-gpl-in-output", Message: "rule is false: a GPL package is in the output"},
	}
	r.Notes = []string{"the base image is not verified"}
	r.Mismatches = []Mismatch{{RunA: 1, RunB: 3, Kind: "builder-disagreement", BuilderA: digBuilder, BuilderB: digDiverse,
		Files: []string{"bin/hello", evilName}, Diff: "diff/run-1-vs-run-3.json"}}
	diff := map[string]any{
		"runA": 1, "runB": 3, "kind": "builder-disagreement", "imageA": digBuilder, "imageB": digDiverse,
		"changed": []string{"bin/hello", evilName},
		"explanations": []map[string]any{
			{"path": "bin/hello", "kind": "elf", "sizeA": 1000, "sizeB": 1400, "firstDiff": 612,
				"summary": []string{"section .text: 812 bytes in A, 1212 bytes in B", "symbol main.mine only in B"}},
			{"path": evilName, "kind": "text", "sizeA": 10, "sizeB": 80, "firstDiff": 0,
				"diff": "--- a\n+++ b\n@@ -1 +1,2 @@\n hello\n" + evilLine + "\n"},
		},
	}
	data, err := json.Marshal(diff)
	if err != nil {
		panic(err)
	}
	return r, map[string][]byte{"diff/run-1-vs-run-3.json": data}
}

func timings(build float64) *Timings {
	return &Timings{Stages: []Stage{{Name: "verify", Seconds: 0.045}, {Name: "build", Seconds: build}, {Name: "sbom", Seconds: 1.2}}}
}

func render(t *testing.T, r *Report, tm *Timings, diffs map[string][]byte) string {
	t.Helper()
	page, err := RenderHTML(r, tm, diffs)
	if err != nil {
		t.Fatal(err)
	}
	return string(page)
}

func TestHTMLIsStableExceptDurations(t *testing.T) {
	r, diffs := failReport()
	a := render(t, r, timings(20), diffs)
	r2, _ := failReport()
	r2.Violations[0], r2.Violations[1] = r2.Violations[1], r2.Violations[0] // stage order must not matter
	b := render(t, r2, timings(20), diffs)
	if a != b {
		t.Fatalf("the same report rendered twice differs")
	}
	c := render(t, r, timings(33.3), diffs)
	cut := `<section id="timings">`
	i, j := strings.Index(a, cut), strings.Index(c, cut)
	if i < 0 || j < 0 {
		t.Fatalf("no timings section")
	}
	if a[:i] != c[:j] {
		t.Errorf("a change of durations changed the page outside the timings section")
	}
	if a == c || !strings.Contains(c, "33.3s") {
		t.Errorf("the timings section does not show the durations")
	}
}

func TestHTMLEscapesAttackerStrings(t *testing.T) {
	r, diffs := failReport()
	r.Images[0].Ref = `evil"><script>alert(1)</script>`
	r.Runs[0].Log = "javascript:alert(1)"
	page := render(t, r, nil, diffs)
	if strings.Contains(strings.ToLower(page), "<script") || strings.Contains(page, "<img") {
		t.Errorf("an attacker's markup reached the page unescaped")
	}
	for _, want := range []string{"&lt;script&gt;document.body", "&lt;img src=x onerror=", "evil&#34;&gt;&lt;script&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("page does not show %q as text", want)
		}
	}
	if strings.Contains(page, "javascript:") {
		t.Errorf("a javascript: link reached the page")
	}
	if !strings.Contains(page, `script-src`) && !strings.Contains(page, `default-src 'none'`) {
		t.Errorf("page has no Content-Security-Policy forbidding scripts")
	}
}

func TestHTMLSelfContained(t *testing.T) {
	r, diffs := failReport()
	page := render(t, r, timings(1), diffs)
	for _, bad := range []string{"http://", "https://", "<link", "@import", "url("} {
		// the only absolute URLs are the report's own data (provenance, issuer), shown as text
		if bad == "http://" || bad == "https://" {
			if strings.Contains(page, `href="`+bad) || strings.Contains(page, `src="`+bad) {
				t.Errorf("page links to the network: %s", bad)
			}
			continue
		}
		if strings.Contains(page, bad) {
			t.Errorf("page loads something from outside: %s", bad)
		}
	}
}

func TestHTMLExplanationProblems(t *testing.T) {
	r, _ := failReport()
	page := render(t, r, nil, map[string][]byte{"diff/run-1-vs-run-3.json": []byte("{not json")})
	if !strings.Contains(page, "the explanation could not be read") || !strings.Contains(page, "bin/hello") {
		t.Errorf("a broken explanation file is not reported, or hides the mismatch")
	}
	page = render(t, r, nil, map[string][]byte{"diff/run-1-vs-run-3.json": bytes.Repeat([]byte(" "), maxDiffFileBytes+1)})
	if !strings.Contains(page, "is not shown here") {
		t.Errorf("an oversized explanation file is not refused")
	}
	// Without explanations (evidence.Write) the mismatch still shows.
	page = render(t, r, nil, nil)
	if !strings.Contains(page, "builder-disagreement") || !strings.Contains(page, `href="diff/run-1-vs-run-3.json"`) {
		t.Errorf("mismatch without explanation missing")
	}
}

func TestWriteWritesHTML(t *testing.T) {
	dir := t.TempDir()
	r, diffs := failReport()
	if err := WriteWithDiffs(dir, r, timings(2), diffs); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "buildguard: FAIL") || !strings.Contains(string(page), "section .text") {
		t.Errorf("report.html misses the decision or the explanation")
	}
	if err := Write(dir, passReport(), nil); err != nil {
		t.Fatal(err)
	}
	page, err = os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "buildguard: PASS") || !strings.Contains(string(page), "no timings recorded") {
		t.Errorf("Write did not rewrite report.html")
	}
}

func TestLocalLink(t *testing.T) {
	for in, want := range map[string]string{
		"logs/run-1.log": "logs/run-1.log", "diff/./a.json": "diff/a.json",
		"/etc/passwd": "", "../x": "", "a/../../x": "", "javascript:alert(1)": "", "https://x": "", `a\b`: "", "": "",
	} {
		if got := localLink(in); got != want {
			t.Errorf("localLink(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHTMLError(t *testing.T) {
	r := New()
	r.Errors = []string{"registry down: dial tcp 127.0.0.1:5000: connection refused"}
	page := render(t, r, nil, nil)
	for _, want := range []string{"buildguard: ERROR", "nothing was published", "registry down", "no builds ran", "no SBOM was produced"} {
		if !strings.Contains(page, want) {
			t.Errorf("error page misses %q", want)
		}
	}
}

// FuzzRenderHTML: any report Parse accepts, with any explanation file,
// renders, and nothing in them becomes markup.
func FuzzRenderHTML(f *testing.F) {
	r, diffs := failReport()
	seed, err := r.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed, diffs["diff/run-1-vs-run-3.json"])
	f.Add([]byte(`{"apiVersion":"buildguard/v1","decision":"pass","violations":[],"images":[]}`), []byte(`{"explanations":[{"members":[{"members":[]}]}]}`))
	f.Fuzz(func(t *testing.T, report, diff []byte) {
		r, err := Parse(report)
		if err != nil {
			return
		}
		ds := map[string][]byte{}
		for _, m := range r.Mismatches {
			ds[m.Diff] = diff
		}
		page, err := RenderHTML(r, nil, ds)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(bytes.ToLower(page), []byte("<script")); n != 0 {
			t.Fatalf("a report made %d script element(s)", n)
		}
	})
}

// A varied run that failed only under a variation says which, not just
// that the build failed.
func TestRunRowsNameTheVariationAFailedRunCouldNotStand(t *testing.T) {
	r := New()
	r.Runs = []Run{{Index: 1, OutputDigest: "sha256:aa"}, {Index: 2, Variations: []string{"path"}, ExitCode: 1}}
	r.Mismatches = []Mismatch{{RunA: 1, RunB: 2, Kind: "varied-run-failed", Variation: "path", Files: []string{}}}
	rows, _ := runRows(r)
	if got := rows[1].Status; got != "failed only when varying path (exit 1)" {
		t.Errorf("run 2's status %q", got)
	}
}

// TestSourceNamesRepositoryAndCommit: report.json and report.html show a
// git source's repository and commit, and say when the checkout had
// uncommitted changes.
func TestSourceNamesRepositoryAndCommit(t *testing.T) {
	r := passReport()
	r.Source.Repository = "git+https://github.com/org/repo.git"
	r.Source.Uncommitted = true
	page := render(t, r, nil, nil)
	for _, want := range []string{"<th>repository</th>", "https://github.com/org/repo.git", "0123abcd", "with uncommitted changes"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	data, err := json.Marshal(r.Source)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"gitCommit":"0123abcd","repository":"git+https://github.com/org/repo.git","uncommitted":true`; !strings.Contains(string(data), want) {
		t.Errorf("report.json source %s lacks %s", data, want)
	}
	r.Source.Uncommitted = false
	if page := render(t, r, nil, nil); strings.Contains(page, "uncommitted") {
		t.Error("a clean checkout is called uncommitted")
	}
}
