package reproduce

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/builder"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(p, "bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(c), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDiffTrees(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 200000) // 3.2 MB: several read chunks
	a := writeTree(t, map[string]string{"bin/app": big, "same.txt": "same\n", "doc/a.txt": "one\n", "gone": "x"})
	b := writeTree(t, map[string]string{"bin/app": big[:len(big)-1] + "X", "same.txt": "same\n", "doc/a.txt": "two\n", "new": "y"})
	d, err := Diff(context.Background(), a, b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.Changed, ",") != "bin/app,doc/a.txt" || strings.Join(d.Removed, ",") != "gone" || strings.Join(d.Added, ",") != "new" {
		t.Fatalf("changed %v removed %v added %v", d.Changed, d.Removed, d.Added)
	}
	if len(d.Explanations) != 2 || d.Explanations[0].FirstDiff != int64(len(big)-1) || !strings.Contains(d.Explanations[1].Diff, "+two") {
		t.Errorf("explanations: %+v", d.Explanations)
	}
	// Mode: an executable bit is a difference; a umask's group bit is not.
	if err := os.Chmod(filepath.Join(b, "same.txt"), 0o664); err != nil {
		t.Fatal(err)
	}
	same, err := Diff(context.Background(), a, a, Limits{})
	if err != nil || !same.Same() {
		t.Fatalf("a tree differs from itself: %+v %v", same, err)
	}
	if err := os.Chmod(filepath.Join(b, "same.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err = Diff(context.Background(), a, b, Limits{})
	if err != nil || !strings.Contains(strings.Join(d.Changed, ","), "same.txt") {
		t.Errorf("an executable bit went unnoticed: %v %v", d.Changed, err)
	}
}

func TestDiffAgreesWithHashing(t *testing.T) {
	// The byte comparison and the hash comparison find the same files.
	a := writeTree(t, map[string]string{"x": "1", "y": "22", "z/w": "333"})
	b := writeTree(t, map[string]string{"x": "1", "y": "2x", "z/w": "334"})
	d, err := Diff(context.Background(), a, b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ha, hb := hashOf(t, a), hashOf(t, b)
	if got, want := strings.Join(d.Changed, ","), strings.Join(Compare(ha, hb).Changed, ","); got != want {
		t.Errorf("byte comparison %q, hash comparison %q", got, want)
	}
}
func hashOf(t *testing.T, dir string) *builder.Manifest {
	t.Helper()
	m, err := builder.HashTree(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
