package builder

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// copySource copies files, directories (read-only ones too) and links as
// links (never following one out of the tree), keeps modes and times, and
// refuses a file type a source cannot hold.
func TestCopySource(t *testing.T) {
	src := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name, body string
		mode       os.FileMode
	}{{"a.txt", "a\n", 0o644}, {"bin/run.sh", "#!/bin/sh\n", 0o755}, {"ro/inner.txt", "inner\n", 0o444}} {
		p := filepath.Join(src, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(src, "ro"), 0o755) })
	if err := os.Symlink(outside, filepath.Join(src, "escape")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := copySource(src, dst, os.Getuid(), os.Getgid(), 0); err != nil {
		t.Fatalf("copySource: %v", err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "ro"), 0o755) })
	want, err := HashTree(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := HashTree(t.Context(), dst)
	if err != nil {
		t.Fatal(err)
	}
	if want.Digest() != got.Digest() {
		t.Errorf("the copy's tree digest %s differs from the source's %s", got.Digest(), want.Digest())
	}
	if target, err := os.Readlink(filepath.Join(dst, "escape")); err != nil || target != outside {
		t.Errorf("escape = %q, %v: want the link itself, not what it names", target, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "ro")); err != nil || fi.Mode().Perm() != 0o555 {
		t.Errorf("ro: %v %v, want mode 0555 kept", fi.Mode(), err)
	}

	if err := copySource(src, filepath.Join(t.TempDir(), "few"), os.Getuid(), os.Getgid(), 3); err == nil || !strings.Contains(err.Error(), "more than 3 entries") {
		t.Errorf("copySource with 3 entries allowed: %v", err)
	}
	fifo := filepath.Join(src, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := copySource(src, filepath.Join(t.TempDir(), "fifo"), os.Getuid(), os.Getgid(), 0); err == nil || !strings.Contains(err.Error(), "pipe is a named pipe") {
		t.Errorf("copySource of a tree with a fifo: %v, want it refused by name", err)
	}
}
