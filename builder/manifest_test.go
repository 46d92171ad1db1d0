package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeTree creates a small output tree under dir, creating entries in the
// given order so that two trees can differ in creation order only.
func writeTree(t *testing.T, dir string, reverse bool) {
	t.Helper()
	steps := []func() error{
		func() error { return os.MkdirAll(filepath.Join(dir, "bin"), 0o755) },
		func() error { return os.WriteFile(filepath.Join(dir, "bin", "app"), []byte("binary"), 0o755) },
		func() error { return os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644) },
		func() error { return os.Symlink("bin/app", filepath.Join(dir, "app")) },
		func() error { return os.Symlink("/etc/passwd", filepath.Join(dir, "escape")) },
		func() error { return os.WriteFile(filepath.Join(dir, "big"), randomBytes(7, 3<<20), 0o600) },
	}
	if reverse {
		// bin must exist before bin/app
		steps = []func() error{steps[5], steps[4], steps[3], steps[2], steps[0], steps[1]}
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHashTree(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, false)
	writeTree(t, b, true)
	// Times and creation order say nothing about the bits.
	if err := os.Chtimes(filepath.Join(b, "a.txt"), time.Unix(1, 0), time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	ma, err := hashTree(context.Background(), a, 1)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := hashTree(context.Background(), b, 4)
	if err != nil {
		t.Fatal(err)
	}
	if ma.Digest() != mb.Digest() {
		t.Fatalf("same tree, different digests:\n%s\n%s", ma.Canonical(), mb.Canonical())
	}
	var paths []string
	for _, e := range ma.Entries {
		paths = append(paths, e.Path)
	}
	if want := []string{"a.txt", "app", "big", "bin", "bin/app", "escape"}; !slices.Equal(paths, want) {
		t.Errorf("paths = %q, want %q", paths, want)
	}
	sum := sha256.Sum256(randomBytes(7, 3<<20))
	wantEnt := map[string]ManifestEntry{
		"app":     {Path: "app", Type: TypeSymlink, Mode: "0777", Target: "bin/app"},
		"escape":  {Path: "escape", Type: TypeSymlink, Mode: "0777", Target: "/etc/passwd"},
		"bin":     {Path: "bin", Type: TypeDir, Mode: "0755"},
		"big":     {Path: "big", Type: TypeFile, Mode: "0644", Size: 3 << 20, SHA256: hex.EncodeToString(sum[:])}, // 0600 on disk: normalised
		"bin/app": {Path: "bin/app", Type: TypeFile, Mode: "0755", Size: 6, SHA256: "9a3a45d01531a20e89ac6ae10b0b0beb0492acd7216a368aa062d1a5fecaf9cd"},
	}
	for _, e := range ma.Entries {
		if w, ok := wantEnt[e.Path]; ok && e != w {
			t.Errorf("entry %+v, want %+v", e, w)
		}
	}
	if sp := ma.Special(); len(sp) != 0 {
		t.Errorf("Special() = %q, want none", sp)
	}
	if !strings.HasPrefix(string(ma.Canonical()), `[{"path":"a.txt","type":"file","mode":"0644","size":1,"sha256":"ca978112`) {
		t.Errorf("canonical encoding changed: %s", ma.Canonical()[:80])
	}

	// Every change of content, executability, type or link target changes
	// the digest; a change of read/write bits alone (a umask) does not.
	edits := map[string]func(dir string) error{
		"content":    func(d string) error { return os.WriteFile(filepath.Join(d, "a.txt"), []byte("b"), 0o644) },
		"executable": func(d string) error { return os.Chmod(filepath.Join(d, "a.txt"), 0o744) },
		"target": func(d string) error {
			_ = os.Remove(filepath.Join(d, "app"))
			return os.Symlink("bin/other", filepath.Join(d, "app"))
		},
		"new empty dir": func(d string) error { return os.Mkdir(filepath.Join(d, "empty"), 0o755) },
	}
	for name, edit := range edits {
		c := t.TempDir()
		writeTree(t, c, false)
		if err := edit(c); err != nil {
			t.Fatal(err)
		}
		mc, err := HashTree(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if mc.Digest() == ma.Digest() {
			t.Errorf("%s changed, digest did not", name)
		}
	}
	c := t.TempDir()
	writeTree(t, c, false)
	if err := os.Chmod(filepath.Join(c, "a.txt"), 0o664); err != nil {
		t.Fatal(err)
	}
	if mc, err := HashTree(context.Background(), c); err != nil || mc.Digest() != ma.Digest() {
		t.Errorf("a group-write bit (umask 002) changed the digest: %v", err)
	}
}

// Special files are listed (so the digest covers them) and flagged.
func TestHashTreeSpecial(t *testing.T) {
	d := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(d, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "suid"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(d, "suid"), 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(d, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(d, "shared"), 0o755|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	m, err := HashTree(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fifo (fifo)", "suid (setuid or setgid, mode 4755)"}
	if got := m.Special(); !slices.Equal(got, want) {
		t.Errorf("Special() = %q, want %q", got, want)
	}
}

// An empty tree has a stable digest: that of "[]\n".
func TestHashTreeEmpty(t *testing.T) {
	m, err := HashTree(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("[]\n"))
	if got, want := m.Digest(), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Digest() = %s, want %s", got, want)
	}
}
