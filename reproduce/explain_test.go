package reproduce

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func has(e *Explanation, substr string) bool {
	for _, s := range e.Summary {
		if strings.Contains(s, substr) {
			return true
		}
	}
	return false
}

func TestExplainText(t *testing.T) {
	a := []byte("line 1\nline 2\nbuilt at /tmp/build-1234\nline 4\n")
	b := []byte("line 1\nline 2\nbuilt at /tmp/build-9876\nline 4\n")
	e := Explain("version.txt", a, b, Limits{})
	if e.Kind != KindText || e.FirstDiff != int64(bytes.Index(a, []byte("1234"))) {
		t.Fatalf("kind %s first diff %d", e.Kind, e.FirstDiff)
	}
	if !strings.Contains(e.Diff, "-built at /tmp/build-1234") || !strings.Contains(e.Diff, "+built at /tmp/build-9876") || !has(e, "from line 3") {
		t.Errorf("diff:\n%s\nsummary %v", e.Diff, e.Summary)
	}
}

func TestExplainTextDiffIsCapped(t *testing.T) {
	var a, b strings.Builder
	for i := range 1000 {
		a.WriteString("a line\n")
		b.WriteString("b line " + string(rune('0'+i%10)) + "\n")
	}
	e := Explain("big.txt", []byte(a.String()), []byte(b.String()), Limits{MaxDiffLines: 20})
	if n := strings.Count(e.Diff, "\n"); n > 21 || !strings.Contains(e.Diff, "diff cut at 20 lines") {
		t.Errorf("diff has %d lines:\n%s", n, e.Diff)
	}
}

func TestExplainJSON(t *testing.T) {
	a := []byte(`{"name": "app", "built": "2026-01-01", "deps": ["a", "b"], "only": 1}`)
	b := []byte(`{"deps": ["a", "c"], "name": "app", "built": "2026-11-26"}`)
	e := Explain("meta.json", a, b, Limits{})
	if e.Kind != KindJSON || !has(e, `.built: "2026-01-01" in A, "2026-11-26" in B`) || !has(e, `.deps[1]: "b" in A, "c" in B`) || !has(e, ".only: only in A") || has(e, ".name") {
		t.Errorf("summary %v", e.Summary)
	}
	same := Explain("x.json", []byte(`{"a":1,"b":2}`), []byte(`{"b": 2, "a": 1}`), Limits{})
	if !has(same, "written differently") {
		t.Errorf("reordered keys: %v", same.Summary)
	}
}

func tarOf(t *testing.T, mtime time.Time, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t *testing.T, data []byte, mtime time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.ModTime = mtime
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExplainTar(t *testing.T) {
	t1, t2 := time.Unix(0, 0), time.Unix(1700000000, 0)
	a := tarOf(t, t1, "bin/app", "same", "etc/conf.json", `{"v": 1}`, "only-a", "x")
	b := tarOf(t, t2, "bin/app", "same", "etc/conf.json", `{"v": 2}`, "only-b", "y")
	e := Explain("out.tar", a, b, Limits{})
	if e.Kind != KindTar || !has(e, "member only-a only in A") || !has(e, "member only-b only in B") || !has(e, "member bin/app: ") || !has(e, "mtime 1970-01-01T00:00:00Z") {
		t.Fatalf("summary %v", e.Summary)
	}
	if len(e.Members) != 1 || e.Members[0].Path != "out.tar!etc/conf.json" || e.Members[0].Kind != KindJSON || !has(e.Members[0], ".v: 1 in A, 2 in B") {
		t.Errorf("members %+v", e.Members)
	}
	reordered := Explain("o.tar", tarOf(t, t1, "a", "1", "b", "2"), tarOf(t, t1, "b", "2", "a", "1"), Limits{})
	if !has(reordered, "different order") {
		t.Errorf("reordered tar: %v", reordered.Summary)
	}
}

func TestExplainGzip(t *testing.T) {
	data := tarOf(t, time.Unix(0, 0), "a", "1")
	e := Explain("out.tar.gz", gz(t, data, time.Unix(0, 0)), gz(t, data, time.Unix(1700000000, 0)), Limits{})
	if e.Kind != KindGzip || !has(e, "gzip header time") || len(e.Members) != 0 {
		t.Errorf("header-only difference: %v, members %d", e.Summary, len(e.Members))
	}
	e = Explain("out.tar.gz", gz(t, data, time.Unix(0, 0)), gz(t, tarOf(t, time.Unix(0, 0), "a", "2"), time.Unix(0, 0)), Limits{})
	if len(e.Members) != 1 || e.Members[0].Kind != KindTar || len(e.Members[0].Members) != 1 || e.Members[0].Members[0].Path != "out.tar.gz!!a" {
		t.Errorf("nested: %+v", e.Members)
	}
}

func TestExplainZip(t *testing.T) {
	mk := func(content string, mod time.Time) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "META-INF/MANIFEST.MF", Method: zip.Deflate, Modified: mod})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := Explain("app.jar", mk("Built-By: alice\n", day), mk("Built-By: bob\n", day.Add(time.Hour)), Limits{})
	if e.Kind != KindZip || !has(e, "member META-INF/MANIFEST.MF: ") || len(e.Members) != 1 || !strings.Contains(e.Members[0].Diff, "+Built-By: bob") {
		t.Errorf("summary %v members %+v", e.Summary, e.Members)
	}
}

// TestExplainGoBinaries builds one Go program twice with different flags
// and checks the explanation names the build setting and the sections.
func TestExplainGoBinaries(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nvar v = \"dev\"\n\nfunc main() { println(v) }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(out string, args ...string) []byte {
		cmd := exec.Command(gobin, append(append([]string{"build", "-o", out}, args...), ".")...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, out))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Go records -ldflags in the build info only without -trimpath.
	a := build("a", "-ldflags=-X main.v=1.0.0")
	b := build("b", "-ldflags=-X main.v=1.0.1")
	e := Explain("app", a, b, Limits{})
	if e.Kind != KindELF {
		t.Fatalf("kind %s", e.Kind)
	}
	if !has(e, `build setting -ldflags: "-X main.v=1.0.0" in A, "-X main.v=1.0.1" in B`) {
		t.Errorf("the differing -ldflags is not named: %v", e.Summary)
	}
	if !has(e, "section .") {
		t.Errorf("no differing section named: %v", e.Summary)
	}
	c := build("c", "-trimpath", "-ldflags=-X main.v=1.0.0")
	if e := Explain("app", a, c, Limits{}); !has(e, `build setting -trimpath: only in B ("true")`) {
		t.Errorf("the -trimpath difference is not named: %v", e.Summary)
	}
}

func TestExplainBinaryAndMixedKinds(t *testing.T) {
	e := Explain("blob", []byte{0, 1, 2, 3, 4}, []byte{0, 1, 9, 3}, Limits{})
	if e.Kind != KindBinary || e.FirstDiff != 2 || !has(e, "first difference at byte 2") || !has(e, "size 5 in A, 4 in B") {
		t.Errorf("%+v", e)
	}
	m := Explain("f", []byte("text\n"), gz(t, []byte("x"), time.Unix(0, 0)), Limits{})
	if !has(m, "text in A and gzip in B") {
		t.Errorf("%v", m.Summary)
	}
}

func TestExplainLimits(t *testing.T) {
	// gzip inside gzip inside gzip ...: opened no deeper than MaxDepth.
	data := []byte("a")
	other := []byte("b")
	for range 6 {
		data, other = gz(t, data, time.Unix(0, 0)), gz(t, other, time.Unix(0, 0))
	}
	e := Explain("deep.gz", data, other, Limits{MaxDepth: 3})
	depth := 0
	for cur := e; len(cur.Members) > 0; cur = cur.Members[0] {
		depth++
	}
	if depth != 3 {
		t.Errorf("opened %d levels, want 3", depth)
	}
	// Many differing keys: the summary is capped and says so.
	var ja, jb strings.Builder
	ja.WriteString("{")
	jb.WriteString("{")
	for i := range 200 {
		if i > 0 {
			ja.WriteString(",")
			jb.WriteString(",")
		}
		ja.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `": 1`)
		jb.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `": 2`)
	}
	ja.WriteString("}")
	jb.WriteString("}")
	c := Explain("many.json", []byte(ja.String()), []byte(jb.String()), Limits{MaxItems: 10})
	if len(c.Summary) != 11 || !strings.Contains(c.Summary[10], "more differences not listed") {
		t.Errorf("summary has %d lines: %v", len(c.Summary), c.Summary)
	}
}

func TestExplainFilesBounded(t *testing.T) {
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(pa, bytes.Repeat([]byte("a"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pb, append(bytes.Repeat([]byte("a"), 4000), bytes.Repeat([]byte("b"), 96)...), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := ExplainFiles("x", pa, pb, Limits{MaxFileBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if e.SizeA != 4096 || !has(e, "only the first 1024 bytes") {
		t.Errorf("%+v", e)
	}
}
