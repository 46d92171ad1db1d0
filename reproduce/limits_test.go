package reproduce

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The limits a user can raise (limits.diffFileBytes, limits.diffLines,
// limits.diffFiles and the --max-diff-... flags of buildguard build, which
// guard.ExplainLimits turns into Limits): at the limit nothing is cut; one
// over, the explanation is cut and says how to raise the limit.

// TestLimitDiffFileBytes: two 1024-byte files differing in their last byte
// are compared whole under a limit of 1024; under 1023 the difference is
// not seen, and a note says only 1023 bytes were compared and how to raise
// that.
func TestLimitDiffFileBytes(t *testing.T) {
	dir := t.TempDir()
	pa, pb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	body := bytes.Repeat([]byte{0}, 1024)
	if err := os.WriteFile(pa, body, 0o644); err != nil {
		t.Fatal(err)
	}
	body[1023] = 1
	if err := os.WriteFile(pb, body, 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := ExplainFiles("f", pa, pb, Limits{MaxFileBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if e.FirstDiff != 1023 || has(e, "only the first") {
		t.Errorf("at the limit: first difference %d, summary %q; want 1023 and no cut", e.FirstDiff, e.Summary)
	}
	e, err = ExplainFiles("f", pa, pb, Limits{MaxFileBytes: 1023})
	if err != nil {
		t.Fatal(err)
	}
	want := "only the first 1023 bytes of each side were compared (raise with limits.diffFileBytes, --max-diff-file-bytes)"
	if e.FirstDiff != -1 || !has(e, want) || e.SizeA != 1024 {
		t.Errorf("one over the limit: first difference %d, size %d, summary %q; want -1, 1024 and %q", e.FirstDiff, e.SizeA, e.Summary, want)
	}
}

// TestLimitDiffLines: a unified diff of exactly N lines is kept whole under
// a limit of N and cut under N-1.
func TestLimitDiffLines(t *testing.T) {
	var a, b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&a, "a %d\n", i)
		fmt.Fprintf(&b, "b %d\n", i)
	}
	whole := Explain("t.txt", []byte(a.String()), []byte(b.String()), Limits{MaxDiffLines: 1000})
	n := strings.Count(whole.Diff, "\n")
	if n < 60 || strings.Contains(whole.Diff, "diff cut") {
		t.Fatalf("the whole diff has %d lines:\n%s", n, whole.Diff)
	}
	t.Run("at the limit", func(t *testing.T) {
		at := Explain("t.txt", []byte(a.String()), []byte(b.String()), Limits{MaxDiffLines: n})
		if at.Diff != whole.Diff {
			t.Errorf("a diff of %d lines under a limit of %d was changed:\n%s", n, n, at.Diff)
		}
	})
	over := Explain("t.txt", []byte(a.String()), []byte(b.String()), Limits{MaxDiffLines: n - 1})
	cut := fmt.Sprintf("... diff cut at %d lines", n-1)
	if got := strings.Count(over.Diff, "\n"); got != n || !strings.Contains(over.Diff, cut) {
		t.Errorf("a diff of %d lines under a limit of %d: %d lines, ending %q", n, n-1, got, over.Diff[max(0, len(over.Diff)-80):])
	}
	t.Run("the cut says how to raise the limit", func(t *testing.T) {
		if want := cut + " (raise with limits.diffLines, --max-diff-lines)\n"; !strings.HasSuffix(over.Diff, want) {
			t.Errorf("the diff ends %q, want %q", over.Diff[max(0, len(over.Diff)-80):], want)
		}
	})
}

// TestLimitDiffFiles: the summary of a JSON file with N differing keys
// lists all N under a limit of N; under N-1 it lists N-1 and a line that
// says more were not listed and how to raise the limit. Diff explains at
// most that many changed files.
func TestLimitDiffFiles(t *testing.T) {
	var ja, jb []string
	for i := range 12 {
		ja = append(ja, fmt.Sprintf(`"k%02d": 1`, i))
		jb = append(jb, fmt.Sprintf(`"k%02d": 2`, i))
	}
	a, b := []byte("{"+strings.Join(ja, ",")+"}"), []byte("{"+strings.Join(jb, ",")+"}")
	whole := Explain("x.json", a, b, Limits{MaxItems: 1000})
	n := len(whole.Summary)
	if n < 12 {
		t.Fatalf("summary of 12 differing keys has %d lines: %q", n, whole.Summary)
	}
	at := Explain("x.json", a, b, Limits{MaxItems: n})
	if len(at.Summary) != n || has(at, "not listed") {
		t.Errorf("%d lines under a limit of %d: %q", n, n, at.Summary)
	}
	over := Explain("x.json", a, b, Limits{MaxItems: n - 1})
	want := "... more differences not listed (raise with limits.diffFiles, --max-diff-files)"
	if len(over.Summary) != n || over.Summary[n-1] != want {
		t.Errorf("%d lines under a limit of %d: %q; want %d lines, the last %q", n, n-1, over.Summary, n, want)
	}

	files := map[string]string{}
	changed := map[string]string{}
	for i := range 5 {
		name := fmt.Sprintf("f%d.txt", i)
		files[name], changed[name] = "one\n", "two\n"
	}
	da, db := writeTree(t, files), writeTree(t, changed)
	for _, tc := range []struct{ limit, want int }{{5, 5}, {4, 4}} {
		d, err := Diff(context.Background(), da, db, Limits{MaxItems: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Changed) != 5 || len(d.Explanations) != tc.want {
			t.Errorf("limit %d: %d changed, %d explained; want 5 and %d", tc.limit, len(d.Changed), len(d.Explanations), tc.want)
		}
	}
}

// TestLimitDefaults pins the defaults docs/limits.md states.
func TestLimitDefaults(t *testing.T) {
	want := Limits{MaxFileBytes: 256 << 20, MaxDiffLines: 200, MaxDepth: 4, MaxMembers: 100000, MaxItems: 50}
	if got := (Limits{}).withDefaults(); got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
}
