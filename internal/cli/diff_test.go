package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/reproduce"
)

func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDiff(t *testing.T) {
	a := tree(t, map[string]string{"app.txt": "v1\n", "meta/info.json": `{"built":"monday"}`, "gone": "x"})
	b := tree(t, map[string]string{"app.txt": "v2\n", "meta/info.json": `{"built":"tuesday"}`, "new": "y"})

	out, stderr, code := run(t, "diff", a, b)
	if code != exitcode.Fail {
		t.Fatalf("differing trees: exit %d", code)
	}
	for _, want := range []string{"only in A: gone", "only in B: new", "changed: app.txt", "-v1", "+v2", "changed: meta/info.json", `.built: "monday" in A, "tuesday" in B`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "2 changed, 1 only in") {
		t.Errorf("stderr %q", stderr)
	}

	out, _, code = run(t, "diff", "--json", a, b)
	var d reproduce.Difference
	if code != exitcode.Fail || json.Unmarshal([]byte(out), &d) != nil || len(d.Changed) != 2 || len(d.Explanations) != 2 {
		t.Fatalf("--json: exit %d\n%s", code, out)
	}

	_, stderr, code = run(t, "diff", a, a)
	if code != 0 || !strings.Contains(stderr, "identical") {
		t.Errorf("identical trees: exit %d, %q", code, stderr)
	}
}

func TestDiffUsage(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"diff", dir}, {"diff", dir, file}, {"diff", dir, filepath.Join(dir, "missing")}, {"diff", "--max-files", "0", dir, dir}} {
		if _, _, code := run(t, args...); code != exitcode.Usage {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

func TestDiffWithDiffoscope(t *testing.T) {
	if _, err := exec.LookPath("diffoscope"); err != nil {
		t.Skip("diffoscope is not installed (apt-get install --no-install-recommends diffoscope)")
	}
	a := tree(t, map[string]string{"notes.txt": "alpha\n"})
	b := tree(t, map[string]string{"notes.txt": "beta\n"})
	out, _, code := run(t, "diff", "--diffoscope", a, b)
	if code != exitcode.Fail || !strings.Contains(out, "diffoscope:") || !strings.Contains(out, "notes.txt") {
		t.Errorf("exit %d\n%s", code, out)
	}
}
