package source

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Clone checks out the recorded commit (not the branch tip) of a local
// repository, with the origin's tree digest; a commit the repository lacks,
// a malformed commit, an option-like URL and git's ext:: transport are
// refused with an error that names them.
func TestClone(t *testing.T) {
	origin, commit := newRepo(t)
	want := read(t, origin, Options{}).Manifest.Digest()
	write(t, filepath.Join(origin, "main.go"), "package main // later\n", 0o644)
	gitCmd(t, origin, "commit", "-q", "-am", "two")

	dir := filepath.Join(t.TempDir(), "clone")
	if err := Clone(context.Background(), "file://"+origin, commit, dir); err != nil {
		t.Fatal(err)
	}
	tr := read(t, dir, Options{})
	if tr.Git == nil || tr.Git.Commit != commit || tr.Manifest.Digest() != want {
		t.Fatalf("clone at %+v digest %s, want commit %s digest %s", tr.Git, tr.Manifest.Digest(), commit, want)
	}
	if _, err := os.Stat(filepath.Join(dir, ".git", "hooks", "post-checkout")); err == nil {
		t.Error("the clone has a post-checkout hook")
	}

	for _, c := range []struct{ url, commit, want string }{
		{origin, strings.Repeat("0", 40), "checking out commit"},
		{origin, "main", "want 40 or 64"},
		{"--upload-pack=touch /tmp/x", commit, "want a git URL"},
		{"ext::sh -c touch% /tmp/pwned", commit, "ext:: transport"},
	} {
		err := Clone(context.Background(), c.url, c.commit, filepath.Join(t.TempDir(), "c"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Clone(%q, %q): %v, want an error with %q", c.url, c.commit, err, c.want)
		}
	}
}
