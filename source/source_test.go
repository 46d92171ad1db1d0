package source

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/buildguard/buildguard/builder"
)

func TestRepositoryURI(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://github.com/org/repo.git", "git+https://github.com/org/repo.git"},
		{"https://github.com/org/repo", "git+https://github.com/org/repo"},
		{"https://x-access-token:ghs_SECRET@github.com/org/repo.git", "git+https://github.com/org/repo.git"},
		{"https://ghp_SECRET@github.com/org/repo/", "git+https://github.com/org/repo"},
		{"https://user:pa%40ss@GitHub.COM:443/org/repo.git?private_token=SECRET#frag", "git+https://github.com/org/repo.git"},
		{"http://gitea.local:3000/org/repo.git", "git+http://gitea.local:3000/org/repo.git"},
		{"git@github.com:org/repo.git", "git+ssh://github.com/org/repo.git"},
		{"github.com:org/repo.git", "git+ssh://github.com/org/repo.git"},
		{"deploy@git.example.org:/srv/git/repo.git", "git+ssh://git.example.org/srv/git/repo.git"},
		{"ssh://git@github.com/org/repo.git", "git+ssh://github.com/org/repo.git"},
		{"ssh://git:SECRET@git.example.org:2222/org/repo.git", "git+ssh://git.example.org:2222/org/repo.git"},
		{"ssh://git@git.example.org:22/org/repo.git", "git+ssh://git.example.org/org/repo.git"},
		{"git+ssh://git@github.com/org/repo.git", "git+ssh://github.com/org/repo.git"},
		{"git+https://github.com/org/repo", "git+https://github.com/org/repo"},
		{"git://git.kernel.org/pub/scm/git/git.git", "git+git://git.kernel.org/pub/scm/git/git.git"},
		{"git@[::1]:org/repo.git", "git+ssh://[::1]/org/repo.git"},
		{"https://gitlab.example/group%2Fsub/repo.git/", "git+https://gitlab.example/group%2Fsub/repo.git"},
		// not network locations: nothing recorded
		{"", ""},
		{"/srv/git/repo.git", ""},
		{"../repo", ""},
		{"./foo:bar", ""},
		{"file:///srv/git/repo.git", ""},
		{"C:/repo", "git+ssh://c/repo"}, // git reads this as scp-like too (on Unix)
		{"https://github.com", ""},
		{"https://", ""},
		{"ext::sh -c evil", ""},
		{"https://github.com/org/repo\nevil", ""},
	} {
		if got := RepositoryURI(c.in); got != c.want {
			t.Errorf("RepositoryURI(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.Contains(RepositoryURI(c.in), "SECRET") {
			t.Errorf("RepositoryURI(%q) keeps a credential", c.in)
		}
	}
	if got := SourceURL("git@github.com:org/repo.git"); got != "ssh://github.com/org/repo.git" {
		t.Errorf("SourceURL = %q", got)
	}
}

// gitCmd runs the real git in dir with a clean, fixed identity.
func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return shell(t, dir, "", append([]string{"git"}, args...)...)
}

// shell runs argv in dir under umask (when not empty).
func shell(t *testing.T, dir, umask string, argv ...string) string {
	t.Helper()
	if umask != "" {
		argv = append([]string{"sh", "-c", "umask " + umask + ` && exec "$@"`, "sh"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.org", "GIT_AUTHOR_DATE=1700000000 +0000", "GIT_COMMITTER_DATE=1700000000 +0000",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	return strings.TrimSpace(string(out))
}

func write(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// newRepo makes a repository with a file, an executable, a symlink and a
// nested directory, commits them, and returns its path and commit.
func newRepo(t *testing.T) (string, string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := filepath.Join(t.TempDir(), "origin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, dir, "init", "-q", "-b", "main")
	write(t, filepath.Join(dir, "main.go"), "package main\n", 0o644)
	write(t, filepath.Join(dir, "run.sh"), "#!/bin/sh\necho hi\n", 0o755)
	write(t, filepath.Join(dir, "pkg", "deep", "x.txt"), "x\n", 0o644)
	write(t, filepath.Join(dir, ".gitignore"), ".buildguard/\n*.o\n", 0o644)
	if err := os.Symlink("main.go", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, dir, "add", "-A")
	gitCmd(t, dir, "commit", "-q", "-m", "one")
	return dir, gitCmd(t, dir, "rev-parse", "HEAD")
}

func read(t *testing.T, dir string, o Options) *Tree {
	t.Helper()
	tr, err := Read(context.Background(), dir, o)
	if err != nil {
		t.Fatalf("Read(%s): %v", dir, err)
	}
	return tr
}

// Two clones of one commit, in different directories, under different
// umasks, one with core.fileMode off and its executable's bit lost, with
// different mtimes, an ignored build product and an evidence directory,
// have one digest: the origin's, and that of the commit's `git archive`
// hashed by builder.HashTree.
func TestGitDigestIsPortable(t *testing.T) {
	origin, commit := newRepo(t)
	gitCmd(t, origin, "remote", "add", "origin", "https://ci:SECRET@github.com/org/repo.git")
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "elsewhere", "b")
	shell(t, base, "022", "git", "clone", "-q", origin, a)
	if err := os.MkdirAll(filepath.Dir(b), 0o755); err != nil {
		t.Fatal(err)
	}
	shell(t, base, "077", "git", "-c", "core.fileMode=false", "clone", "-q", origin, b)
	gitCmd(t, b, "config", "core.fileMode", "false")
	if err := os.Chmod(filepath.Join(b, "run.sh"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1, 0)
	if err := os.Chtimes(filepath.Join(b, "main.go"), old, old); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(b, "out.o"), "ignored\n", 0o644)
	write(t, filepath.Join(b, ".buildguard", "report.json"), "{}\n", 0o644)

	ta := read(t, a, Options{Exclude: ".buildguard"})
	tb := read(t, b, Options{Exclude: ".buildguard"})
	to := read(t, origin, Options{Exclude: ".buildguard"})
	if ta.Manifest.Digest() != tb.Manifest.Digest() || ta.Manifest.Digest() != to.Manifest.Digest() {
		t.Fatalf("digests differ:\n a %s\n%s\n b %s\n%s\n origin %s", ta.Manifest.Digest(), ta.Manifest.Canonical(),
			tb.Manifest.Digest(), tb.Manifest.Canonical(), to.Manifest.Digest())
	}
	for _, tr := range []*Tree{ta, tb} {
		if tr.Git == nil || tr.Git.Commit != commit {
			t.Fatalf("git = %+v, want commit %s", tr.Git, commit)
		}
		if tr.Git.Dirty() || strings.Contains(strings.Join(tr.Notes, ""), "uncommitted") {
			t.Errorf("a clean clone is called dirty: %+v %q", tr.Git, tr.Notes)
		}
		if tr.Git.CommitTime != 1700000000 {
			t.Errorf("commit time %d", tr.Git.CommitTime)
		}
	}
	if to.Git.URI != "git+https://github.com/org/repo.git" || to.Git.URL != "https://github.com/org/repo.git" {
		t.Errorf("origin's URI = %q, URL = %q", to.Git.URI, to.Git.URL)
	}
	// a clone's origin is a local path: not recorded, and said so
	if ta.Git.URI != "" || len(ta.Notes) != 1 || !strings.Contains(ta.Notes[0], "not a network URL") {
		t.Errorf("clone of a local path: URI %q, notes %q", ta.Git.URI, ta.Notes)
	}
	for _, p := range []string{".git", ".gitignore"} {
		found := false
		for _, e := range ta.Manifest.Entries {
			if e.Path == p || strings.HasPrefix(e.Path, ".git/") {
				found = true
			}
		}
		if p == ".git" && found {
			t.Errorf(".git/ is in the manifest")
		}
		if p == ".gitignore" && !found {
			t.Errorf(".gitignore is tracked but not in the manifest")
		}
	}
	for _, e := range tb.Manifest.Entries {
		if e.Path == "run.sh" && e.Mode != "0755" {
			t.Errorf("run.sh mode %s, want git's 0755", e.Mode)
		}
	}

	// The commit's archive, unpacked, hashed the old way.
	arch := filepath.Join(base, "archive")
	if err := os.Mkdir(arch, 0o755); err != nil {
		t.Fatal(err)
	}
	shell(t, origin, "", "sh", "-c", `git archive HEAD | tar -x -C "$1"`, "sh", arch)
	m, err := builder.HashTree(context.Background(), arch)
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest() != ta.Manifest.Digest() {
		t.Errorf("archive digest %s, checkout digest %s", m.Digest(), ta.Manifest.Digest())
	}
}

func TestGitDirtyNote(t *testing.T) {
	for _, c := range []struct {
		name, want string
		change     func(t *testing.T, dir string)
	}{
		{"modified", `1 changed tracked path(s): "main.go"`, func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "main.go"), "package main // changed\n", 0o644)
		}},
		{"deleted", `"pkg/deep/x.txt"`, func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "pkg", "deep", "x.txt")); err != nil {
				t.Fatal(err)
			}
		}},
		{"staged", `"new.txt"`, func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "new.txt"), "new\n", 0o644)
			gitCmd(t, dir, "add", "new.txt")
		}},
		{"relinked", `"link"`, func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("run.sh", filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
		}},
		{"untracked", `1 untracked path(s), visible to the build but not in the source digest: "notes.txt"`, func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "notes.txt"), "hm\n", 0o644)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, commit := newRepo(t)
			clean := read(t, dir, Options{}).Manifest.Digest()
			c.change(t, dir)
			tr := read(t, dir, Options{})
			if !tr.Git.Dirty() {
				t.Fatalf("not dirty: %+v", tr.Git)
			}
			note := strings.Join(tr.Notes, "\n")
			if !strings.Contains(note, "uncommitted changes") || !strings.Contains(note, c.want) || !strings.Contains(note, commit) {
				t.Errorf("note %q does not say %q", note, c.want)
			}
			if c.name != "untracked" && tr.Manifest.Digest() == clean {
				t.Errorf("the digest did not change")
			}
			if c.name == "untracked" && tr.Manifest.Digest() != clean {
				t.Errorf("an untracked file changed the digest")
			}
		})
	}
}

// The evidence directory is neither dirt nor part of the digest, even
// when it is not ignored.
func TestGitEvidenceDirExcluded(t *testing.T) {
	dir, _ := newRepo(t)
	before := read(t, dir, Options{Exclude: "out/evidence"}).Manifest.Digest()
	write(t, filepath.Join(dir, "out", "evidence", "report.json"), "{}\n", 0o644)
	tr := read(t, dir, Options{Exclude: "out/evidence"})
	if tr.Git.Dirty() || tr.Manifest.Digest() != before {
		t.Errorf("evidence directory counted: %+v, %s vs %s", tr.Git, tr.Manifest.Digest(), before)
	}
	if tr := read(t, dir, Options{}); !tr.Git.Dirty() {
		t.Errorf("without Exclude the new directory is untracked, got clean")
	}
}

// A source in a subdirectory of a checkout covers that subdirectory.
func TestGitSubdirectory(t *testing.T) {
	dir, commit := newRepo(t)
	tr := read(t, filepath.Join(dir, "pkg"), Options{})
	if tr.Git == nil || tr.Git.Commit != commit || tr.Git.Subdir != "pkg" {
		t.Fatalf("git = %+v", tr.Git)
	}
	var paths []string
	for _, e := range tr.Manifest.Entries {
		paths = append(paths, e.Path)
	}
	if got := strings.Join(paths, ","); got != "deep,deep/x.txt" {
		t.Errorf("entries %s", got)
	}
}

// A directory that is no checkout is hashed whole, as before.
func TestNotGit(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.txt"), "a\n", 0o644)
	write(t, filepath.Join(dir, ".git-not", "b"), "b\n", 0o644)
	tr := read(t, dir, Options{})
	m, err := builder.HashTree(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Git != nil || tr.Manifest.Digest() != m.Digest() {
		t.Errorf("git %+v, digest %s want %s", tr.Git, tr.Manifest.Digest(), m.Digest())
	}
	// an initialised repository without a commit is not a checkout of one
	dir2 := t.TempDir()
	write(t, filepath.Join(dir2, "a.txt"), "a\n", 0o644)
	if _, err := exec.LookPath("git"); err == nil {
		gitCmd(t, dir2, "init", "-q")
		if tr := read(t, dir2, Options{}); tr.Git != nil {
			t.Errorf("a repository without commits: %+v", tr.Git)
		}
	}
}

// Reading a checkout runs nothing its config names: neither an fsmonitor
// hook nor a clean filter, and the host's GIT_DIR does not redirect git.
func TestGitRunsNoCheckoutCode(t *testing.T) {
	dir, _ := newRepo(t)
	marker := filepath.Join(t.TempDir(), "ran")
	hook := filepath.Join(t.TempDir(), "hook.sh")
	write(t, hook, "#!/bin/sh\ntouch "+marker+"\ncat\n", 0o755)
	gitCmd(t, dir, "config", "core.fsmonitor", hook)
	gitCmd(t, dir, "config", "filter.evil.clean", hook)
	gitCmd(t, dir, "config", "core.pager", hook)
	write(t, filepath.Join(dir, ".gitattributes"), "* filter=evil\n", 0o644)
	write(t, filepath.Join(dir, "main.go"), "package main // touched\n", 0o644)
	t.Setenv("GIT_DIR", t.TempDir())
	tr := read(t, dir, Options{})
	if tr.Git == nil || !tr.Git.Dirty() {
		t.Fatalf("git = %+v", tr.Git)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("reading the checkout ran a command its config names")
	}
}

// A checkout owned by another user is read (safe.directory), as root.
func TestGitOtherOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give the checkout to another user")
	}
	dir, commit := newRepo(t)
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 54321, 54321)
	}); err != nil {
		t.Fatal(err)
	}
	tr := read(t, dir, Options{})
	if tr.Git == nil || tr.Git.Commit != commit || tr.Git.Dirty() {
		t.Fatalf("git = %+v", tr.Git)
	}
}

// A checked-out submodule's files are covered, under its path, as its own
// checkout's digest covers them: two recursive clones agree, and a change
// inside the submodule is a change of the source.
func TestGitSubmodule(t *testing.T) {
	sub, _ := newRepo(t)
	super, _ := newRepo(t)
	gitCmd(t, super, "-c", "protocol.file.allow=always", "submodule", "add", "-q", sub, "third_party/sub")
	gitCmd(t, super, "commit", "-q", "-m", "add a submodule")
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	shell(t, base, "022", "git", "-c", "protocol.file.allow=always", "clone", "-q", "--recurse-submodules", super, a)
	shell(t, base, "077", "git", "-c", "protocol.file.allow=always", "clone", "-q", "--recurse-submodules", super, b)
	ta, tb := read(t, a, Options{}), read(t, b, Options{})
	if ta.Manifest.Digest() != tb.Manifest.Digest() {
		t.Fatalf("recursive clones differ:\n%s\n%s", ta.Manifest.Canonical(), tb.Manifest.Canonical())
	}
	if ta.Git.Dirty() {
		t.Errorf("a clean recursive clone is dirty: %+v", ta.Git)
	}
	found := false
	for _, e := range ta.Manifest.Entries {
		if e.Path == "third_party/sub/pkg/deep/x.txt" && e.SHA256 != "" {
			found = true
		}
		if strings.Contains(e.Path, ".git/") || strings.HasSuffix(e.Path, "/.git") {
			t.Errorf("git's own file in the manifest: %s", e.Path)
		}
	}
	if !found {
		t.Errorf("the submodule's files are not covered:\n%s", ta.Manifest.Canonical())
	}
	// Not checked out: an empty directory, another digest.
	c := filepath.Join(base, "c")
	shell(t, base, "", "git", "clone", "-q", super, c)
	if tc := read(t, c, Options{}); tc.Manifest.Digest() == ta.Manifest.Digest() {
		t.Error("a clone without the submodule's files has the same digest")
	}
	write(t, filepath.Join(a, "third_party", "sub", "main.go"), "package main // changed\n", 0o644)
	ta = read(t, a, Options{})
	if !ta.Git.Dirty() || !strings.Contains(strings.Join(ta.Notes, ""), `"third_party/sub/main.go"`) || ta.Manifest.Digest() == tb.Manifest.Digest() {
		t.Errorf("a change inside the submodule: %+v %q", ta.Git, ta.Notes)
	}
}
