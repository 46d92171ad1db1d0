package pin

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F, glob string) {
	paths, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds for %s: %v", glob, err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// checkScan asserts the properties every scan must keep on any input: each
// occurrence points at its own text and line, and pinning every reference
// in place gives a file in which the same references are found, pinned.
func checkScan(t *testing.T, kind Kind, data []byte) {
	file, err := Scan("fuzz", kind, data)
	if err != nil {
		return // refused input is fine; a panic is not
	}
	var pinnable int
	for _, o := range file.Occurrences {
		if o.Err != nil {
			continue
		}
		if o.Offset < 0 || o.Offset+len(o.Text) > len(data) || string(data[o.Offset:o.Offset+len(o.Text)]) != o.Text {
			t.Fatalf("occurrence %q does not point at its text (offset %d)", o.Text, o.Offset)
		}
		if o.Line != lineAt(data, o.Offset) {
			t.Fatalf("occurrence %q: line %d, offset is on line %d", o.Text, o.Line, lineAt(data, o.Offset))
		}
		if !o.Dynamic && !o.Ref.Pinned() {
			pinnable++
		}
	}
	if file.Errors() != nil || pinnable == 0 {
		return
	}
	res := &Result{Files: []*File{file}}
	for _, o := range file.Occurrences {
		c := &Change{Occurrence: o, Pinned: o.Text}
		if !o.Dynamic && !o.Ref.Pinned() {
			c.Pinned, c.Changed = o.Ref.WithDigest(testDigest), true
		}
		res.Changes = append(res.Changes, c)
	}
	out, err := res.Rewrite()
	if err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	again, err := Scan("fuzz", kind, out["fuzz"])
	if err != nil {
		t.Fatalf("the pinned file no longer scans: %v\n%q", err, out["fuzz"])
	}
	if len(again.Occurrences) != len(file.Occurrences) {
		t.Fatalf("pinning changed the references found: %d then %d\n%q", len(file.Occurrences), len(again.Occurrences), out["fuzz"])
	}
	for i, o := range again.Occurrences {
		before := file.Occurrences[i]
		if before.Dynamic || before.Err != nil {
			continue
		}
		if o.Err != nil || !o.Ref.Pinned() || o.Ref.Repo != before.Ref.Repo {
			t.Fatalf("reference %q became %q (err %v)", before.Text, o.Text, o.Err)
		}
	}
}

func FuzzScanDockerfile(f *testing.F) {
	addSeeds(f, "Dockerfile.*")
	f.Add([]byte("FROM a:1\nCOPY --from=b /x /y\n"))
	f.Add([]byte("# escape=`\nFROM `\n a\n"))
	f.Fuzz(func(t *testing.T, data []byte) { checkScan(t, KindDockerfile, data) })
}

func FuzzScanYAML(f *testing.F) {
	addSeeds(f, "*.yaml")
	f.Add([]byte("image: a\n"))
	f.Add([]byte("x: &a {image: b}\ny: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) { checkScan(t, KindYAML, data) })
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"golang:1.26", "localhost:5000/a/b", "alpine@" + testDigest, "ghcr.io/o/i:v1@" + testDigest} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := ParseRef(text)
		if err != nil {
			return
		}
		pinned := r.WithDigest(testDigest)
		p, err := ParseRef(pinned)
		if err != nil {
			t.Fatalf("%q pinned as %q does not parse: %v", text, pinned, err)
		}
		if p.Repo != r.Repo || p.Digest != testDigest || (r.Tag != "" && p.Tag != r.Tag) {
			t.Fatalf("%q pinned as %q: repo %q tag %q digest %q", text, pinned, p.Repo, p.Tag, p.Digest)
		}
	})
}

func FuzzParseLock(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"buildguard/v1","images":[{"ref":"docker.io/library/golang:1.26","index":"` + testDigest + `","platforms":{"linux/amd64":"` + testDigest + `"}}]}`))
	f.Add([]byte(`{"apiVersion":"buildguard/v1","images":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLock(data)
		if err != nil {
			return
		}
		out, err := l.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		l2, err := ParseLock(out)
		if err != nil {
			t.Fatalf("a lockfile we wrote does not parse: %v\n%s", err, out)
		}
		out2, _ := l2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("lockfile round trip is not stable:\n%s\n%s", out, out2)
		}
	})
}
