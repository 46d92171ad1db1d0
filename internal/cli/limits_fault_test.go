package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/buildguard/buildguard/config"
	"github.com/buildguard/buildguard/internal/exitcode"
)

// TestLimitConfigOverSize proves that `buildguard build` refuses a
// buildguard.yaml one byte over config.MaxSize with a usage error (exit 2)
// naming the limit, and writes no evidence directory.
func TestLimitConfigOverSize(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "buildguard.yaml")
	head := []byte("apiVersion: buildguard/v1\nsource: .\n")
	body := append(head, bytes.Repeat([]byte("#"), config.MaxSize+1-len(head))...)
	if err := os.WriteFile(f, body, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "evidence")
	_, stderr, code := run(t, "build", "-f", f, "--out", out, "--cache", t.TempDir())
	if code != exitcode.Usage || !strings.Contains(stderr, "file is larger than the 1 MiB limit") {
		t.Errorf("exit %d, want 2 naming the 1 MiB limit:\n%s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused configuration created the evidence directory")
	}
}

// TestLimitLockfileOverSize proves that `buildguard pin --check` refuses a
// lockfile over its size limit with a usage error (exit 2) naming the
// limit and the file, and changes no file.
func TestLimitLockfileOverSize(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "buildguard.lock")
	head := `{"apiVersion": "buildguard/v1", "images": []}`
	if err := os.WriteFile(lock, []byte(head+strings.Repeat(" ", 16<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "FROM registry.example/app:v1@sha256:" + strings.Repeat("a", 64) + "\n"
	df := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(df, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, "pin", "--check", "--lock", lock, df)
	if code != exitcode.Usage || !strings.Contains(stderr, "larger than 16777216 bytes") || !strings.Contains(stderr, lock) {
		t.Errorf("exit %d, want 2 naming the lockfile and its limit:\n%s", code, stderr)
	}
	if got, _ := os.ReadFile(df); string(got) != src {
		t.Errorf("Dockerfile changed:\n%s", got)
	}
}
